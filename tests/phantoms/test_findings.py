"""Findings, implants and foreign bodies: placement, masks, attenuation, determinism, errors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

from radsynth.phantoms.body import draw_subject, make_body
from radsynth.phantoms.findings import add_finding
from radsynth.phantoms.raycast import Grid, project, section
from radsynth.vocabulary.labels import Finding

AP = np.array([0.0, -1.0, 0.0])
LATERAL = np.array([1.0, 0.0, 0.0])
DOWN = np.array([0.0, 0.0, -1.0])


@pytest.fixture(scope="module")
def body():
    rng = np.random.default_rng(3)
    return make_body(draw_subject(rng, sex="male", age=50), rng)


def _grid(body, centre, size_mm, view="ap", n=128):
    cols = np.array([1.0, 0.0, 0.0]) if view == "ap" else np.array([0.0, -1.0, 0.0])
    centre = np.asarray(centre, float) * body.scale
    return Grid.centred(centre, DOWN, cols, (n, n), (size_mm / n, size_mm / n))


def _project(body, centre, size_mm, view="ap"):
    grid = _grid(body, centre, size_mm, view)
    return project(body.scene(), grid, AP if view == "ap" else LATERAL)


def _add(body, kind, site=None, qualifiers=(), seed=0, side=None):
    return add_finding(
        body, Finding(kind, site, qualifiers), np.random.default_rng(seed), side=side
    )


def _centre_of(body, names):
    lows, highs = zip(*(body.structure(n).bounds() for n in names), strict=True)
    return (np.min(lows, axis=0) + np.max(highs, axis=0)) / 2.0


def _finding_mask(masks, names):
    return np.any([masks[n] for n in names if n in masks], axis=0)


def _centroid(mask):
    return np.array(np.nonzero(mask)).mean(axis=1)


# kind, site, qualifiers, side, view, field (mm), sign of the line-integral change, minimum |change|
CASES = [
    ("fracture", "tibia", ("non_displaced",), "left", "ap", 200.0, -1, 0.05),
    ("bone_tumour", "femur", ("lytic",), "left", "ap", 160.0, -1, 0.1),
    ("bone_tumour", "humerus", ("sclerotic",), "right", "ap", 160.0, 1, 0.02),
    ("lung_nodule", "right_upper_lobe", ("nodule",), None, "ap", 300.0, 1, 0.08),
    ("consolidation", "left_lower_lobe", (), None, "ap", 300.0, 1, 0.4),
    ("pleural_effusion", "right_hemithorax", (), None, "ap", 300.0, 1, 0.5),
    ("joint_effusion", "knee", (), "left", "lateral", 200.0, 1, 0.03),
    ("hip_prosthesis", "left_hip", (), None, "ap", 250.0, 1, 2.0),
    ("knee_prosthesis", "knee", (), "right", "ap", 200.0, 1, 2.0),
    ("plate_and_screws", "femur", (), "left", "ap", 300.0, 1, 1.0),
    ("pacemaker", None, (), "left", "ap", 400.0, 1, 0.5),
    ("ecg_leads", None, (), None, "ap", 500.0, 1, 0.3),
    ("jewellery", None, ("bracelet",), "left", "ap", 200.0, 1, 2.0),
]


@pytest.mark.parametrize("kind, site, qualifiers, side, view, field, sign, least", CASES)
def test_finding_changes_the_image_only_where_it_is(
    body, kind, site, qualifiers, side, view, field, sign, least
):
    new, names = _add(body, kind, site, qualifiers, seed=1, side=side)
    assert names and all(n.startswith(f"finding_{kind}") for n in names)
    centre = _centre_of(new, names) if kind != "ecg_leads" else np.array([0.0, 0.0, 1300.0])
    before, _ = _project(body, centre, field, view)
    after, masks = _project(new, centre, field, view)
    mask = _finding_mask(masks, names)
    assert mask.any()
    change = after - before
    signed = sign * change[mask]
    assert signed.max() > least
    assert np.quantile(signed, 0.9) > 0.0
    # A hip replacement also removes the femoral head and neck around the ball and stem.
    near = ndimage.binary_dilation(mask, iterations=14 if kind == "hip_prosthesis" else 4)
    assert np.abs(change[~near]).max() < 1e-9


def test_input_body_is_not_changed(body):
    structures = list(body.structures)
    before, _ = _project(body, (90.0, 0.0, 700.0), 300.0)
    for kind, site in (("fracture", "femur"), ("bone_tumour", "femur"), ("hip_prosthesis", None)):
        _add(body, kind, site, seed=2, side="left" if site else None)
    assert all(a is b for a, b in zip(body.structures, structures, strict=True))
    assert len(body.structures) == len(structures)
    body.__dict__.pop("_scenes", None)
    after, _ = _project(body, (90.0, 0.0, 700.0), 300.0)
    np.testing.assert_array_equal(before, after)


def test_same_seed_same_finding(body):
    first, names = _add(body, "consolidation", "right_lung", seed=5)
    second, _ = _add(body, "consolidation", "right_lung", seed=5)
    third, _ = _add(body, "consolidation", "right_lung", seed=6)
    centre = _centre_of(first, names)
    a, b, c = (_project(x, centre, 300.0)[0] for x in (first, second, third))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fracture_splits_the_bone_and_marks_the_break(body):
    new, names = _add(body, "fracture", "femur", ("non_displaced",), seed=4, side="right")
    assert names == ["finding_fracture"]
    assert {"right_femur", "right_femur_distal_fragment"} <= set(new.structure_names())
    assert new.structure_names().count("right_femur") == 1
    _, masks = _project(new, _centre_of(new, names), 120.0)
    bone = masks["right_femur"] | masks["right_femur_distal_fragment"]
    line = masks["finding_fracture"]
    # The line covers the fragments' ends and the lucent gap between them (a few pixels).
    assert (line & ~ndimage.binary_dilation(bone, iterations=4)).sum() <= 0.05 * line.sum()
    assert (line & bone).any()
    # The proximal fragment lies above the fracture line, the distal one below (image rows).
    assert _centroid(masks["right_femur"])[0] < _centroid(line)[0]
    assert _centroid(masks["right_femur_distal_fragment"])[0] > _centroid(line)[0]


def test_displaced_fracture_moves_the_distal_fragment_by_a_few_mm(body):
    shifts = []
    for seed in (11, 12, 13):
        kept, _ = _add(body, "fracture", "tibia", ("non_displaced",), seed=seed, side="left")
        moved, _ = _add(body, "fracture", "tibia", ("displaced",), seed=seed, side="left")
        centre, field = np.array([92.0, 0.0, 300.0]), 448.0
        grid = _grid(body, centre, field)
        fragment = "left_tibia_distal_fragment"
        a = project(kept.scene(), grid, AP, [fragment])[1][fragment]
        b = project(moved.scene(), grid, AP, [fragment])[1][fragment]
        pixel_mm = field / 128 * body.scale
        shifts.append(np.linalg.norm(_centroid(a) - _centroid(b)) * pixel_mm)
    # 3-10 mm sideways, seen within 35 degrees of the coronal plane, scaled by the body.
    assert all(2.0 < s < 11.5 for s in shifts), shifts


def test_angulated_fracture_tilts_the_distal_fragment(body):
    new, _ = _add(body, "fracture", "humerus", ("angulated",), seed=3, side="left")
    old_shaft = max(body.structure("left_humerus").parts, key=lambda p: getattr(p, "length", 0))
    fragment = new.structure("left_humerus_distal_fragment")
    piece = max(fragment.parts, key=lambda p: getattr(p, "length", 0))
    angle = np.degrees(np.arccos(np.clip(np.dot(piece.axis, old_shaft.axis), -1.0, 1.0)))
    assert 7.5 < angle < 25.5


@pytest.mark.parametrize("site", ["femoral_neck", "distal_radius", "patella", "clavicle",
                                  "metacarpal", "fibula", "ulna", "radius"])  # fmt: skip
def test_every_fracture_site_breaks_its_bone(body, site):
    new, names = _add(body, "fracture", site, ("displaced",), seed=2, side="left")
    fragments = [n for n in new.structure_names() if n.endswith("_distal_fragment")]
    assert len(fragments) == 1
    bone = fragments[0].removesuffix("_distal_fragment")
    _, masks = _project(new, _centre_of(new, names), 100.0)
    outline = ndimage.binary_dilation(masks[bone] | masks[fragments[0]], iterations=4)
    line = masks["finding_fracture"]
    assert (line & ~outline).sum() <= 0.1 * line.sum() and (line & outline).any()


def test_lung_lesions_lie_inside_their_lung(body):
    for site, qualifier in (("left_upper_lobe", "nodule"), ("right_middle_lobe", "mass")):
        new, names = _add(body, "lung_nodule", site, (qualifier,), seed=8)
        _, masks = _project(new, _centre_of(new, names), 300.0)
        lung = masks[f"{site.split('_')[0]}_lung"]
        nodule = masks["finding_lung_nodule"]
        assert (nodule & ~lung).sum() <= 0.05 * nodule.sum()
        diameter = np.ptp(np.nonzero(nodule)[1]) * 300.0 / 128
        assert (5.0 < diameter < 30.0) if qualifier == "nodule" else (28.0 < diameter < 90.0)


def test_consolidation_stays_inside_the_lung_in_sections(body):
    new, names = _add(body, "consolidation", "right_lower_lobe", seed=9)
    centre = _centre_of(new, names)
    for offset in (-15.0, 0.0, 15.0):
        point = (centre + np.array([0.0, offset, 0.0])) * new.scale
        grid = Grid.centred(point, DOWN, np.array([1.0, 0.0, 0.0]), (128, 128), (1.5, 1.5))
        _, masks = section(new.scene(), grid, ["right_lung", "finding_consolidation"])
        if "finding_consolidation" in masks:
            opacity = masks["finding_consolidation"]
            assert (opacity & ~masks["right_lung"]).sum() <= 0.02 * opacity.sum() + 3


def test_pleural_effusion_fills_the_base_of_the_hemithorax(body):
    new, names = _add(body, "pleural_effusion", "left_hemithorax", seed=1)
    _, masks = _project(new, (0.0, 0.0, 1300.0), 400.0)
    lung_rows = np.nonzero(masks["left_lung"])[0]
    fluid_rows, fluid_cols = np.nonzero(masks["finding_pleural_effusion"])
    assert fluid_rows.mean() > np.median(lung_rows)
    assert fluid_cols.mean() > 64  # the patient's left is on the image's right in this grid


@pytest.mark.parametrize("kind", ["intraparenchymal", "subdural", "epidural"])
def test_haemorrhage_lies_in_the_skull_on_its_side(body, kind):
    new, names = _add(body, "intracranial_haemorrhage", "right_hemisphere", (kind,), seed=2)
    centre = body.reference_landmarks["head_centre"].copy()
    centre[2] = _centre_of(new, names)[2]
    grid = Grid.centred(centre * new.scale, np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]),
                        (128, 128), (2.0, 2.0))  # fmt: skip
    materials, masks = section(new.scene(), grid, ["csf_space", "finding_intracranial_haemorrhage"])
    bleed = masks["finding_intracranial_haemorrhage"]
    assert bleed.sum() > 10
    assert (bleed & ~masks["csf_space"]).sum() <= 0.03 * bleed.sum()
    cols = np.nonzero(bleed)[1]
    assert (cols < 64 + 4).all()  # right hemisphere: negative x, left half of the image
    from radsynth.phantoms.materials import MATERIAL_IDS

    assert (materials[bleed] == MATERIAL_IDS["haemorrhage"]).mean() > 0.9


def test_joint_effusion_sits_above_the_patella_in_front_of_the_femur(body):
    new, names = _add(body, "joint_effusion", "knee", seed=1, side="left")
    _, masks = _project(new, body.reference_landmarks["left_knee"] + [0, 0, 60], 200.0, "lateral")
    pouch = _centroid(masks["finding_joint_effusion"])
    patella = _centroid(masks["left_patella"])
    femur_cols = np.nonzero(masks["left_femur"][: int(pouch[0]) + 1])[1]
    assert pouch[0] < patella[0]  # higher
    assert pouch[1] < np.median(femur_cols)  # anterior: columns run along -y


def test_implants_sit_on_their_bones(body):
    new, names = _add(body, "hip_prosthesis", "right_hip", seed=1)
    _, masks = _project(new, _centre_of(new, names), 300.0)
    assert (masks["finding_hip_prosthesis_stem"] & masks["right_femur"]).sum() > 50
    assert (masks["finding_hip_prosthesis_cup"] & masks["pelvis"]).sum() > 20
    new, names = _add(body, "knee_prosthesis", "knee", seed=1, side="left")
    _, masks = _project(new, _centre_of(new, names), 200.0)
    rows = {n: _centroid(masks[n])[0] for n in names}
    assert (rows["finding_knee_prosthesis_femoral"] < rows["finding_knee_prosthesis_insert"]
            < rows["finding_knee_prosthesis_tibial"])  # fmt: skip
    new, names = _add(body, "plate_and_screws", "tibia", seed=2, side="right")
    _, masks = _project(new, _centre_of(new, names), 300.0)
    bone = np.any([m for n, m in masks.items() if n.startswith("right_tibia")], axis=0)
    assert (masks["finding_plate_and_screws_screws"] & bone).sum() > 10


def test_pacemaker_in_the_left_upper_chest_with_leads_in_the_heart(body):
    new, names = _add(body, "pacemaker", seed=4, side="left")
    _, masks = _project(new, (0.0, 0.0, 1330.0), 400.0)
    generator = _centroid(masks["finding_pacemaker_generator"])
    heart = _centroid(masks["heart"])
    assert generator[1] > 64 + 10 and generator[0] < heart[0] - 15
    assert (masks["finding_pacemaker_leads"] & masks["heart"]).sum() > 5


def test_ecg_leads_and_jewellery(body):
    new, names = _add(body, "ecg_leads", seed=1)
    _, masks = _project(new, (0.0, 0.0, 1300.0), 500.0)
    pads = masks["finding_ecg_leads_electrodes"] | masks["finding_ecg_leads_rings"]
    labels, count = ndimage.label(ndimage.binary_closing(pads, iterations=2))
    assert 3 <= count <= 5
    wires = masks["finding_ecg_leads_wires"]
    assert wires[:, :8].any() or wires[:, -8:].any()  # wires run off towards the field edge
    new, names = _add(body, "jewellery", qualifiers=("ring",), seed=1, side="right")
    _, masks = _project(new, _centre_of(new, names), 100.0)
    ring = masks["finding_jewellery_ring"]
    phalanges = np.any([m for n, m in masks.items() if "proximal_phalanx" in n], axis=0)
    assert (ring & phalanges).any() and ring.sum() < 0.2 * ring.size
    new, names = _add(body, "jewellery", qualifiers=("necklace",), seed=1)
    lo, hi = new.structure(names[0]).bounds()
    notch = body.reference_landmarks["sternal_notch"]
    assert lo[2] < notch[2] < hi[2] + 40 and hi[0] - lo[0] > 80


def test_errors_name_the_allowed_values(body):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fracture"):
        add_finding(body, SimpleNamespace(kind="tumor", site=None, qualifiers=(), side=None), rng)
    with pytest.raises(ValueError, match="femur, tibia"):
        add_finding(
            body, SimpleNamespace(kind="bone_tumour", site="skull", qualifiers=(), side=None), rng
        )
    with pytest.raises(ValueError, match="lytic, sclerotic"):
        add_finding(
            body,
            SimpleNamespace(kind="bone_tumour", site=None, qualifiers=("big",), side=None),
            rng,
        )
    with pytest.raises(ValueError, match="'left', 'right'"):
        add_finding(body, Finding("fracture", "femur"), rng, side="middle")
    with pytest.raises(ValueError, match="left side"):
        add_finding(body, Finding("lung_nodule", "left_lung"), rng, side="right")
    with pytest.raises(ValueError, match="finding is on the left side"):
        add_finding(body, Finding("fracture", "femur", side="left"), rng, side="right")
    with pytest.raises(ValueError, match="pick one"):
        add_finding(body, Finding("fracture", "femur", ("non_displaced", "angulated")), rng)


@pytest.mark.parametrize(("site", "bone"), [("distal_radius", "radius"), ("distal_tibia", "tibia")])
def test_a_whole_body_takes_the_distal_fracture_sites(site, bone):
    # The regional radiographs' distal sites are asked of a whole body in the same words, and
    # the break lies in the distal end of the bone (standing AP: the bottom of its mask).
    from radsynth.phantoms.cases import make_case_for_labels
    from radsynth.vocabulary import parse_prompt

    words = site.replace("_", " ")
    labels = parse_prompt(f"AP whole-body radiograph with a fracture of the {words}")
    assert labels.findings == (Finding("fracture", site),)
    case = make_case_for_labels(5, labels, size=512)
    line = case.image.masks["finding_fracture"]
    broken = [n for n in case.image.masks if n.endswith(f"_{bone}_distal_fragment")]
    assert line.sum() > 3 and len(broken) == 1
    side = broken[0].removesuffix("_distal_fragment")
    rows = np.nonzero(case.image.masks[side] | case.image.masks[broken[0]])[0]
    top, bottom = rows.min(), rows.max()
    assert np.nonzero(line)[0].mean() > top + 0.75 * (bottom - top)
