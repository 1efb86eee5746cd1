"""parse_prompt: synonyms, abbreviations, ages, findings, negations and helpful errors."""

from __future__ import annotations

import pytest

from radsynth.vocabulary import (
    STUDY_XRAY_REGIONS,
    Finding,
    Labels,
    UnknownTermError,
    normalise_prompt,
    parse_prompt,
    parse_prompt_lenient,
)


def _same_labels(prompts: list[str]) -> Labels:
    parsed = [parse_prompt(p) for p in prompts]
    for prompt, labels in zip(prompts, parsed, strict=True):
        assert labels == parsed[0], f"{prompt!r} -> {labels} differs from {prompts[0]!r}"
    return parsed[0]


@pytest.mark.parametrize("region", STUDY_XRAY_REGIONS)
def test_reference_study_prompts(region: str) -> None:
    assert parse_prompt(f"An X-ray of the {region}") == Labels(modality="xray", region=region)


@pytest.mark.parametrize(
    ("modality", "words"),
    [
        (
            "xray",
            [
                "X-ray",
                "radiograph",
                "radiography",
                "XR",
                "CR",
                "DX",
                "plain film",
                "roentgenogram",
                "x ray",
                "xray",
                "X-rays",
            ],
        ),
        ("ct", ["CT", "computed tomography", "CAT scan", "CT scan"]),
        ("mri", ["MRI", "MR", "magnetic resonance", "magnetic resonance imaging"]),
        ("us", ["ultrasound", "US", "sonography", "sonogram", "ultrasonography"]),
    ],
)
def test_modality_synonyms(modality: str, words: list[str]) -> None:
    region = "liver" if modality == "us" else "abdomen"
    labels = _same_labels([f"{w} of the {region}" for w in words])
    assert (labels.modality, labels.region) == (modality, region)


@pytest.mark.parametrize(
    ("modality", "region", "prompts"),
    [
        ("xray", "chest", ["chest X-ray", "thorax radiograph", "CXR", "X-ray of the lungs"]),
        ("ct", "head", ["CT head", "CT of the skull", "cranium CT", "brain CT"]),
        ("xray", "abdomen", ["abdominal X-ray", "belly radiograph", "KUB", "XR abdo"]),
        ("xray", "cervical_spine", ["C-spine X-ray", "cervical spine radiograph", "XR neck"]),
        ("xray", "lumbar_spine", ["L-spine XR", "lumbosacral spine X-ray", "low back X-ray"]),
        ("xray", "thoracic_spine", ["T-spine XR", "dorsal spine radiograph"]),
        ("xray", "full_body", ["whole body X-ray", "entire body radiograph", "full-length XR"]),
        ("xray", "pelvis", ["pelvic X-ray", "X-ray of the hips", "hip radiograph"]),
        ("us", "kidney", ["renal ultrasound", "kidney sonogram", "US of the kidneys"]),
        ("us", "fetus", ["fetal ultrasound", "obstetric US", "pregnancy sonogram", "foetus US"]),
        ("mri", "spine", ["lumbar spine MRI", "MRI of the C-spine", "spine MR"]),
    ],
)
def test_region_synonyms(modality: str, region: str, prompts: list[str]) -> None:
    labels = _same_labels(prompts)
    assert (labels.modality, labels.region) == (modality, region)


@pytest.mark.parametrize(
    ("prompt", "modality", "region"),
    [
        ("CXR", "xray", "chest"),
        ("KUB", "xray", "abdomen"),
        ("sonogram of the liver", "us", "liver"),
        ("fetus", "us", "fetus"),
        ("thyroid", "us", "thyroid"),
        ("gall bladder", "us", "gallbladder"),
        ("T2 knee", "mri", "knee"),
        ("knee in bone window", "ct", "knee"),
        ("sagittal spine", "mri", "spine"),
        ("lateral knee", "xray", "knee"),
        ("B-mode liver", "us", "liver"),
        ("knee", None, "knee"),
        ("axial head", None, "head"),
        ("brain", None, "head"),
    ],
)
def test_modality_inferred_only_when_unambiguous(
    prompt: str, modality: str | None, region: str
) -> None:
    labels = parse_prompt(prompt)
    assert (labels.modality, labels.region) == (modality, region)


def test_views_lateralities_sexes_sequences_windows() -> None:
    assert _same_labels(["AP knee X-ray", "anteroposterior knee X-ray"]).view == "ap"
    assert (
        _same_labels(
            ["CXR PA", "posteroanterior chest radiograph", "frontal chest radiograph"]
        ).view
        == "pa"
    )
    assert _same_labels(["lat knee XR", "lateral knee XR"]).view == "lateral"
    assert _same_labels(["transverse CT head", "axial CT head", "CT head ax"]).view == "axial"
    assert _same_labels(["left knee", "L knee", "lt knee", "left-sided knee"]).laterality == "left"
    assert _same_labels(["right wrist", "R wrist", "rt wrist"]).laterality == "right"
    assert parse_prompt("X-ray of both knees, bilateral").laterality is None
    assert {
        parse_prompt(f"knee X-ray of a {w}").sex for w in ["woman", "female", "girl", "lady", "F"]
    } == {"female"}
    assert {
        parse_prompt(f"knee X-ray of a {w}").sex for w in ["man", "male", "boy", "gentleman", "M"]
    } == {"male"}
    assert _same_labels(["T1 MRI knee", "T1-weighted MRI knee", "T1w MR knee"]).sequence == "t1"
    assert _same_labels(["T2 MRI knee", "T2-weighted MRI knee", "T2w MR knee"]).sequence == "t2"
    assert _same_labels(["PD MRI knee", "proton density MRI knee"]).sequence == "pd"
    soft = _same_labels(
        [
            "CT chest soft tissue window",
            "CT chest mediastinal window",
            "CT chest soft-tissue window",
            "CT chest abdominal window",
        ]
    )
    assert soft.window == "soft_tissue"
    assert parse_prompt("CT head in brain window").window == "brain"
    assert parse_prompt("CT chest, lung windows").window == "lung"


@pytest.mark.parametrize(
    "prompt",
    [
        "62-year-old woman",
        "62 year old woman",
        "62 yo woman",
        "62y woman",
        "62F",
        "62 F",
        "aged 62, female",
        "woman aged 62",
        "62 years old female",
        "62 y/o lady",
        "62yoF",
    ],
)
def test_age_forms(prompt: str) -> None:
    labels = parse_prompt(f"knee X-ray, {prompt}")
    assert (labels.age, labels.sex) == (62, "female")


def test_compact_male_age_and_months() -> None:
    assert (parse_prompt("CXR 47M").age, parse_prompt("CXR 47M").sex) == (47, "male")
    assert parse_prompt("chest X-ray of an 18-month-old boy").age == 1
    assert parse_prompt("CXR, 8y").age == 8


def test_bare_number_is_not_an_age() -> None:
    with pytest.raises(UnknownTermError, match="write ages as '62-year-old'"):
        parse_prompt("knee X-ray 62")


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [
        (
            [
                "displaced patellar fracture",
                "displaced fracture of the patella",
                "displaced patella fx",
                "broken patella, displaced",
                "displaced kneecap break",
            ],
            Finding("fracture", "patella", ("displaced",)),
        ),
        (
            [
                "undisplaced tibial fracture",
                "non-displaced fracture of the tibia",
                "nondisplaced tibia fx",
            ],
            Finding("fracture", "tibia", ("non_displaced",)),
        ),
        (
            [
                "hip fracture",
                "femoral neck fracture",
                "fracture of the neck of femur",
                "NOF fracture",
            ],
            Finding("fracture", "femoral_neck"),
        ),
        (
            ["Colles fracture", "Colles' fracture", "distal radius fracture", "distal radial fx"],
            Finding("fracture", "distal_radius"),
        ),
        (
            [
                "lateral malleolus fracture",
                "distal fibular fracture",
                "fracture of the distal fibula",
            ],
            Finding("fracture", "distal_fibula"),
        ),
        (
            ["medial malleolar fracture", "distal tibia fracture", "distal tibial fx"],
            Finding("fracture", "distal_tibia"),
        ),
        (
            ["lytic bone lesion", "osteolytic lesion", "lytic lesion", "lytic bone tumor"],
            Finding("bone_tumour", None, ("lytic",)),
        ),
        (
            ["sclerotic lesion", "osteoblastic bone tumour"],
            Finding("bone_tumour", None, ("sclerotic",)),
        ),
        (
            ["pulmonary nodule", "lung nodule", "nodule", "coin lesion"],
            Finding("lung_nodule", None, ("nodule",)),
        ),
        (["lung mass", "mass"], Finding("lung_nodule", None, ("mass",))),
        (
            ["RUL nodule", "right upper lobe nodule", "nodule in the right upper lobe"],
            Finding("lung_nodule", "right_upper_lobe", ("nodule",)),
        ),
        (
            [
                "intracranial haemorrhage",
                "intracranial hemorrhage",
                "ICH",
                "bleed",
                "haematoma",
                "hematoma",
            ],
            Finding("intracranial_haemorrhage"),
        ),
        (
            ["left subdural haematoma", "SDH in the left hemisphere", "left-sided subdural bleed"],
            Finding("intracranial_haemorrhage", "left_hemisphere", ("subdural",)),
        ),
        (
            ["EDH", "epidural hematoma", "extradural haemorrhage"],
            Finding("intracranial_haemorrhage", None, ("epidural",)),
        ),
        (
            [
                "pneumonia",
                "consolidation",
                "airspace opacity",
                "airspace disease",
                "lobar consolidation",
            ],
            Finding("consolidation"),
        ),
        (
            [
                "RLL pneumonia",
                "right lower lobe consolidation",
                "pneumonia in the right lower lobe",
            ],
            Finding("consolidation", "right_lower_lobe"),
        ),
        (
            ["pleural effusion", "hydrothorax", "blunted costophrenic angle", "effusion"],
            Finding("pleural_effusion"),
        ),
        (
            ["left pleural effusion", "left-sided effusion", "effusion in the left hemithorax"],
            Finding("pleural_effusion", "left_hemithorax"),
        ),
        (["pacemaker", "PPM", "ICD", "cardiac device", "pacemaker leads"], Finding("pacemaker")),
        (["ECG leads", "ECG electrodes", "EKG leads", "monitoring leads"], Finding("ecg_leads")),
        (["jewellery", "jewelry", "earrings"], Finding("jewellery")),
        (["necklace"], Finding("jewellery", None, ("necklace",))),
    ],
)
def test_chest_and_general_finding_synonyms(prompts: list[str], expected: Finding) -> None:
    region = {
        "fracture": "CT knee",
        "bone_tumour": "X-ray knee",
        "intracranial_haemorrhage": "CT head",
    }.get(expected.kind, "CXR")
    if expected.site == "femoral_neck":
        region = "pelvis X-ray"
    if expected.site == "distal_radius":
        region = "wrist X-ray"
    if expected.site in ("distal_tibia", "distal_fibula"):
        region = "ankle X-ray"
    if expected.kind == "lung_nodule" or expected.kind == "consolidation":
        region = "CT chest"
    for prompt in prompts:
        assert parse_prompt(f"{region} with {prompt}").findings == (expected,), prompt


@pytest.mark.parametrize(
    ("region", "prompts", "expected"),
    [
        (
            "knee X-ray",
            ["joint effusion", "knee effusion", "suprapatellar effusion", "effusion"],
            Finding("joint_effusion"),
        ),
        (
            "knee X-ray",
            [
                "knee prosthesis",
                "TKA",
                "TKR",
                "knee replacement",
                "total knee arthroplasty",
                "arthroplasty",
            ],
            Finding("knee_prosthesis"),
        ),
        (
            "pelvis X-ray",
            [
                "hip prosthesis",
                "hip replacement",
                "THA",
                "total hip arthroplasty",
                "hemiarthroplasty",
            ],
            Finding("hip_prosthesis"),
        ),
        (
            "pelvis X-ray",
            [
                "left hip prosthesis",
                "left THA",
                "prosthesis of the left hip",
                "left hip replacement",
            ],
            Finding("hip_prosthesis", "left_hip"),
        ),
        (
            "ankle X-ray",
            [
                "plate and screws in the fibula",
                "fibular ORIF",
                "fibular plate osteosynthesis",
                "internal fixation of the fibula",
            ],
            Finding("plate_and_screws", "fibula"),
        ),
        ("hand X-ray", ["ring", "a ring"], Finding("jewellery", None, ("ring",))),
    ],
)
def test_joint_and_device_synonyms(region: str, prompts: list[str], expected: Finding) -> None:
    for prompt in prompts:
        assert parse_prompt(f"{region} with {prompt}").findings == (expected,), prompt


def test_several_findings_keep_their_order_and_attributes() -> None:
    labels = parse_prompt(
        "Lateral radiograph of the left knee of a 62-year-old woman with a displaced "
        "patellar fracture, a tibial plate and screws and a joint effusion"
    )
    assert labels == Labels(
        modality="xray",
        region="knee",
        view="lateral",
        laterality="left",
        sex="female",
        age=62,
        findings=(
            Finding("fracture", "patella", ("displaced",)),
            Finding("plate_and_screws", "tibia"),
            Finding("joint_effusion"),
        ),
    )
    two = parse_prompt("knee X-ray, fracture of the tibia and fibula")
    assert two.findings == (Finding("fracture", "tibia"), Finding("fracture", "fibula"))
    lung = parse_prompt("CT chest with a left lung tumour and a right lung lesion")
    assert lung.findings == (
        Finding("lung_nodule", "left_lung"),
        Finding("lung_nodule", "right_lung"),
    )
    assert parse_prompt("knee X-ray with a tumour").findings == (Finding("bone_tumour"),)
    merged = parse_prompt("knee X-ray, displaced and angulated fracture of the tibia")
    assert merged.findings == (Finding("fracture", "tibia", ("displaced", "angulated")),)


@pytest.mark.parametrize(
    "prompt",
    [
        "knee X-ray without fracture",
        "knee X-ray, no fracture",
        "normal knee X-ray",
        "knee X-ray with no fracture or effusion",
        "unremarkable knee radiograph",
        "knee X-ray, negative for fracture",
        # A report's negated list: each item was read as present but the first.
        "knee X-ray: no fracture, joint effusion or bone tumour",
        "knee X-ray without fracture, joint effusion, or bone tumour",
        "knee X-ray, no fracture nor joint effusion",
        # A negation after the finding was read as the finding present.
        "knee X-ray: fracture is not seen",
        "knee X-ray, joint effusion not present",
        "knee X-ray: no evidence of fracture",
        "knee X-ray, joint effusion absent",
    ],
)
def test_negations_give_no_findings(prompt: str) -> None:
    assert parse_prompt(prompt) == Labels(modality="xray", region="knee")


def test_negation_scope_ends_at_the_next_positive_finding() -> None:
    labels = parse_prompt("Chest X-ray with no pleural effusion and a pacemaker")
    assert labels.findings == (Finding("pacemaker"),)
    labels = parse_prompt("Chest X-ray without effusion, with RUL consolidation")
    assert labels.findings == (Finding("consolidation", "right_upper_lobe"),)
    # A comma ends the negation unless an "or" or "and" closes a list before the clause ends.
    labels = parse_prompt("Chest X-ray, no effusion, right upper lobe consolidation")
    assert labels.findings == (Finding("consolidation", "right_upper_lobe"),)
    labels = parse_prompt("Chest X-ray: nodule not seen, left pleural effusion")
    assert labels.findings == (Finding("pleural_effusion", "left_hemithorax"),)
    labels = parse_prompt("Chest X-ray: no consolidation or nodule; left pleural effusion")
    assert labels.findings == (Finding("pleural_effusion", "left_hemithorax"),)


def test_a_side_abbreviated_with_a_full_stop_stays_with_its_finding() -> None:
    # "lt." split the prompt at its full stop: a side without a finding, or a second fracture.
    labels = parse_prompt("Chest radiograph with a fracture of the lt. clavicle")
    assert labels.findings == (Finding("fracture", "clavicle", side="left"),)
    assert parse_prompt("Chest X-ray with rt. pleural effusion").findings == (
        Finding("pleural_effusion", "right_hemithorax"),
    )
    assert parse_prompt("Lat. X-ray of the L. knee") == parse_prompt("Lateral X-ray, left knee")
    sentences = parse_prompt("X-ray of the chest. Left pleural effusion")
    assert sentences.findings == (Finding("pleural_effusion", "left_hemithorax"),)


def test_a_sided_hip_says_how_to_ask_for_it() -> None:
    with pytest.raises(ValueError, match="'AP pelvis X-ray with a right femoral neck fracture'"):
        parse_prompt("X-ray of the right hip")


def test_unknown_word_error_names_word_and_suggestion() -> None:
    with pytest.raises(UnknownTermError) as caught:
        parse_prompt("An X-ray of the kneee")
    assert str(caught.value) == (
        "unknown term 'kneee' in prompt 'An X-ray of the kneee'; did you mean 'knee'?"
    )
    assert isinstance(caught.value, ValueError)
    assert caught.value.words == ("kneee",)


def test_several_unknown_words_each_get_suggestions() -> None:
    with pytest.raises(UnknownTermError) as caught:
        parse_prompt("Lateral radiogrph of the Anklee with a fractre")
    error = caught.value
    assert error.words == ("radiogrph", "Anklee", "fractre")
    assert error.suggestions["radiogrph"][0] == "radiograph"
    assert error.suggestions["Anklee"][0] == "ankle"
    assert error.suggestions["fractre"][0] == "fracture"
    assert "'Anklee'" in str(error) and "did you mean 'ankle' for 'Anklee'?" in str(error)


def test_unrelated_word_gets_no_suggestion() -> None:
    with pytest.raises(UnknownTermError, match="no radiology term is close to 'zzqx'"):
        parse_prompt("CXR zzqx")


def test_lenient_parse_returns_unknown_words() -> None:
    labels, unknown = parse_prompt_lenient("A beautiful X-ray of the knee, trending on artstation")
    assert labels == Labels(modality="xray", region="knee")
    assert unknown == ["beautiful", "trending", "artstation"]
    assert parse_prompt_lenient("CXR PA") == (
        Labels(modality="xray", region="chest", view="pa"),
        [],
    )


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("MRI of the ankle", "'ankle' does not fit MRI; MRI regions are: head, knee, spine"),
        ("lateral ultrasound of the liver", "ultrasound views are: B-mode"),
        ("CT of the liver", "CT regions are: head, chest, abdomen, pelvis, knee"),
        ("X-ray of the brain", "'brain' does not fit X-ray"),
        ("T1 CT of the head", "'t1' is a sequence for MRI, not for CT"),
        ("T2 lung window", "no one modality fits them all"),
        ("CT MRI knee", "two different modalities"),
        ("knee X-ray of a woman, male", "two different sexes"),
        ("X-ray of the left hip", "which is midline"),
        ("CXR, left", "which is midline"),
        ("knee X-ray with a femoral neck fracture", "fracture of the femoral neck is not"),
        ("chest X-ray with a hip prosthesis", "hip prosthesis is not available in the chest"),
        ("hand X-ray with a necklace", "use: ring, bracelet"),
        ("CXR with a displaced nodule", "name different findings"),
        ("effusion", "say 'joint effusion' or 'pleural effusion'"),
        ("CT head with a brain tumour", "names no finding available in the head"),
        ("normal CXR with a nodule", "says 'normal' but also names findings"),
        ("patellar pneumonia", "is not a place for a consolidation"),
        ("CXR, left lung", "says where a finding is but not what it is"),
        ("X-ray of the left femur", "not an imaged region: the X-ray regions are head, chest"),
    ],
)
def test_unsupported_combinations_raise_clear_errors(prompt: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_prompt(prompt)
    assert not isinstance(caught.value, UnknownTermError)


def test_normalise_prompt_maps_synonyms_to_one_string() -> None:
    assert normalise_prompt("CXR PA") == normalise_prompt("posteroanterior chest radiograph")
    assert normalise_prompt("CXR PA") == "PA X-ray of the chest"
    texts = [
        "Lat XR L knee, 62F, displaced patella fx",
        "lateral radiograph of the left knee, 62 yo female, displaced patellar fracture",
        "62-year-old woman: left knee plain film, lateral view, displaced broken kneecap",
    ]
    assert {normalise_prompt(t) for t in texts} == {
        "Lateral X-ray of the left knee of a 62-year-old woman with a displaced patellar fracture"
    }


def test_a_shaft_fracture_asked_on_an_ankle_radiograph_names_the_ankle_sites() -> None:
    # an ankle radiograph shows the distal leg only; the shaft lies above its field
    with pytest.raises(ValueError, match="sites there: distal fibula, distal tibia"):
        parse_prompt("AP radiograph of the left ankle with a fracture of the tibia")


@pytest.mark.parametrize(
    ("prompt", "region", "finding"),
    [
        (
            "AP whole-body radiograph with a fracture of the left femur",
            "full_body",
            Finding("fracture", "femur", side="left"),
        ),
        (
            "CXR with a displaced right clavicle fracture",
            "chest",
            Finding("fracture", "clavicle", ("displaced",), side="right"),
        ),
        (
            "pelvis X-ray, rt femoral neck fx",
            "pelvis",
            Finding("fracture", "femoral_neck", side="right"),
        ),
        (
            "chest radiograph with a left-sided pacemaker",
            "chest",
            Finding("pacemaker", side="left"),
        ),
        (
            "whole body X-ray with a lytic tumour of the right tibia",
            "full_body",
            Finding("bone_tumour", "tibia", ("lytic",), side="right"),
        ),
    ],
)
def test_a_limb_finding_on_a_midline_region_carries_its_own_side(
    prompt: str, region: str, finding: Finding
) -> None:
    labels = parse_prompt(prompt)
    assert (labels.region, labels.laterality, labels.findings) == (region, None, (finding,))
    canonical = normalise_prompt(prompt)
    assert parse_prompt(canonical) == labels
    assert finding.side in canonical


def test_on_a_paired_region_the_side_stays_the_images() -> None:
    labels = parse_prompt("X-ray of the left knee with a femur fracture")
    assert labels.laterality == "left"
    assert labels.findings == (Finding("fracture", "femur"),)
    with pytest.raises(ValueError, match="takes the image's side"):
        femur = Finding("fracture", "femur", side="left")
        Labels(modality="xray", region="knee", findings=(femur,))
    # Without a region the side could land on a paired one: refused when the labels are made.
    with pytest.raises(ValueError, match="needs a midline region"):
        Labels(modality="xray", findings=(femur,))


def test_two_sides_on_one_midline_finding_or_a_side_on_a_sited_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="both left and right"):
        parse_prompt("whole-body radiograph with a left right femur fracture")
    with pytest.raises(ValueError, match="takes no side of its own"):
        Finding("lung_nodule", "right_upper_lobe", side="right")
    with pytest.raises(ValueError, match="finding side 'both' is not known"):
        Finding("fracture", "femur", side="both")


def test_a_finding_side_is_stored_only_when_given() -> None:
    sided = Finding("fracture", "clavicle", ("displaced",), side="left")
    assert sided.to_dict()["side"] == "left"
    assert Finding.from_dict(sided.to_dict()) == sided
    assert "side" not in Finding("fracture", "clavicle").to_dict()
    assert Finding.from_dict({"kind": "fracture", "site": "femur"}) == Finding("fracture", "femur")


@pytest.mark.parametrize(
    ("prompt", "findings"),
    [
        (
            "CXR with bilateral pleural effusions",
            (
                Finding("pleural_effusion", "left_hemithorax"),
                Finding("pleural_effusion", "right_hemithorax"),
            ),
        ),
        (
            "chest radiograph, consolidation in both lungs",
            (Finding("consolidation", "left_lung"), Finding("consolidation", "right_lung")),
        ),
        (
            "pelvis X-ray with bilateral hip prostheses",
            (Finding("hip_prosthesis", "left_hip"), Finding("hip_prosthesis", "right_hip")),
        ),
        (
            "whole-body radiograph with fractures of both femurs",
            (Finding("fracture", "femur", side="left"), Finding("fracture", "femur", side="right")),
        ),
        ("CXR without bilateral effusions", ()),
        (
            "chest radiograph with right and left pleural effusions",
            (
                Finding("pleural_effusion", "left_hemithorax"),
                Finding("pleural_effusion", "right_hemithorax"),
            ),
        ),
    ],
)
def test_a_bilateral_finding_is_a_left_and_a_right_one(
    prompt: str, findings: tuple[Finding, ...]
) -> None:
    labels = parse_prompt(prompt)
    assert labels.findings == findings and labels.laterality is None
    assert parse_prompt(normalise_prompt(prompt)) == labels


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("CXR with bilateral ECG leads", "'ECG leads' has no side"),
        ("AP knee X-ray with bilateral femur fractures", "an image of the knee shows one side"),
        ("bilateral fractures", "name the image for a bilateral fracture"),
        ("CXR with a bilateral left effusion", "both bilateral and left"),
    ],
)
def test_a_bilateral_finding_that_cannot_be_drawn_is_refused(prompt: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_prompt(prompt)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Portable supine AP chest", Labels(modality="xray", region="chest", view="ap")),
        ("Non-contrast CT head", Labels(modality="ct", region="head")),
        ("CT of the abdomen without contrast", Labels(modality="ct", region="abdomen")),
        ("unenhanced CT chest", Labels(modality="ct", region="chest")),
        (
            "Weight-bearing AP right knee, tibial plateau fracture",
            Labels(
                modality="xray",
                region="knee",
                view="ap",
                laterality="right",
                findings=(Finding("fracture", "tibia"),),
            ),
        ),
        (
            "Left ankle X-ray: Weber B fracture",
            Labels(
                modality="xray",
                region="ankle",
                laterality="left",
                findings=(Finding("fracture", "distal_fibula"),),
            ),
        ),
        (
            "AP right ankle X-ray, displaced bimalleolar fracture",
            Labels(
                modality="xray",
                region="ankle",
                view="ap",
                laterality="right",
                findings=(
                    Finding("fracture", "distal_fibula", ("displaced",)),
                    Finding("fracture", "distal_tibia"),
                ),
            ),
        ),
        (
            "PA hand radiograph, boxer's fracture",
            Labels(
                modality="xray",
                region="hand",
                view="pa",
                findings=(Finding("fracture", "metacarpal"),),
            ),
        ),
        (
            "CXR: left basal effusion",
            Labels(
                modality="xray",
                region="chest",
                findings=(Finding("pleural_effusion", "left_hemithorax"),),
            ),
        ),
    ],
)
def test_words_of_everyday_requests(prompt: str, expected: Labels) -> None:
    """Position and setting words are accepted and set nothing; named fractures give sites."""
    assert parse_prompt(prompt) == expected


@pytest.mark.parametrize(
    "prompt",
    ["CT abdomen with contrast", "contrast-enhanced MRI of the knee", "knee MRI, gadolinium"],
)
def test_contrast_is_refused_as_not_drawn(prompt: str) -> None:
    with pytest.raises(ValueError, match="unenhanced .*say 'non-contrast'") as caught:
        parse_prompt(prompt)
    assert not isinstance(caught.value, UnknownTermError)
    labels, unknown = parse_prompt_lenient(prompt)
    assert labels.modality in ("ct", "mri") and unknown


def test_an_age_group_word_goes_with_an_age_that_fits() -> None:
    assert parse_prompt("PA hand radiograph of a 10 year old child").age == 10
    assert parse_prompt("paediatric chest X-ray of a 6-month-old infant").age == 0
    labels = parse_prompt("chest X-ray of a 75-year-old elderly woman")
    assert (labels.age, labels.sex) == (75, "female")
    with pytest.raises(
        ValueError, match="'elderly' .* gives no age; write one, e.g. '75-year-old'"
    ):
        parse_prompt("chest X-ray of an elderly woman")
    with pytest.raises(ValueError, match="'80 year old' is no child"):
        parse_prompt("chest X-ray of an 80 year old child")
    # The lenient parse lists a group word without an age among the words it could not use.
    assert parse_prompt_lenient("paediatric chest X-ray")[1] == ["paediatric"]


def test_non_is_read_only_before_contrast() -> None:
    # "non-angulated" must not read as "angulated": "non" is known only in "non-contrast".
    with pytest.raises(UnknownTermError, match="'non'"):
        parse_prompt("knee X-ray with a non-angulated fracture")


def test_a_word_for_what_radsynth_does_not_model_says_so() -> None:
    from radsynth.vocabulary.terms import DESCRIPTIVE_WORDS, FILLER_WORDS, LEXICON, NOT_MODELLED

    # The words are unknown to the lexicon (else they would be parsed, not explained).
    assert not set(NOT_MODELLED) & ({k[0] for k in LEXICON if len(k) == 1} | FILLER_WORDS)
    assert not set(NOT_MODELLED) & DESCRIPTIVE_WORDS
    with pytest.raises(UnknownTermError, match="'FLAIR' is an MRI sequence .*T2-weighted"):
        parse_prompt("MRI brain T2 FLAIR")
    with pytest.raises(UnknownTermError) as caught:
        parse_prompt("CXR with cardiomegaly and a pneumothorax")
    message = str(caught.value)
    assert "'cardiomegaly' is a finding radsynth does not model; it has: fracture" in message
    assert message.endswith("'pneumothorax' is a finding radsynth does not model either")
    with pytest.raises(UnknownTermError, match="'elbow' is a region .* wrist"):
        parse_prompt("X-ray of the elbow")


def test_words_in_other_scripts_are_unknown_words_not_dropped() -> None:
    # "骨折" (fracture) was dropped, so the prompt drew no fracture and no error was raised;
    # "Röntgen" was cut at the accent into 'r' and 'ntgen'.
    with pytest.raises(UnknownTermError) as caught:
        parse_prompt("AP X-ray of the knee 骨折")
    assert caught.value.words == ("骨折",)
    with pytest.raises(UnknownTermError) as caught:
        parse_prompt("Röntgen of the knee")
    assert caught.value.words == ("Röntgen",) and "'roentgen'" in str(caught.value)
    # Full-width letters read as their ASCII twins.
    assert parse_prompt("ＡＰ X-ray of the knee") == parse_prompt("AP X-ray of the knee")
    # A fraction is not joined to the number before it ("5½" was read as 51).
    assert parse_prompt("Knee X-ray of a 5½ year old").age == 5
