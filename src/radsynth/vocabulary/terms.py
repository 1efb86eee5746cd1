"""Radiology wording for every label value: canonical names, synonyms and abbreviations.

`TERMS` is the one table the prompt parser reads words from and the caption writer writes words
from. Each `Term` names one value of one `Labels` field. The first term for a (field, value) pair
holds the canonical wording; further terms for the same pair add phrases that only fit some
modalities (``brain`` names the head in CT and MRI only) or that imply another field
(``hip fracture`` is a fracture of the femoral neck). To teach radsynth a new word, add a phrase to
the matching term's ``written`` (captions may use it) or ``parsed`` (accepted, never written).

Phrases are matched after `normalise_words`: lower case, apostrophes dropped, hyphens and other
punctuation read as spaces, so ``X-ray``, ``x ray`` and ``X Ray`` are one phrase.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from radsynth.vocabulary.labels import (
    CT_WINDOWS,
    FINDING_KINDS,
    FINDING_QUALIFIERS,
    FINDING_SITES,
    LUNG_SITES,
    MODALITIES,
    MRI_SEQUENCES,
    REGIONS_BY_MODALITY,
    VIEWS_BY_MODALITY,
)

FIELDS: tuple[str, ...] = (
    "modality",
    "region",
    "view",
    "laterality",
    "sex",
    "sequence",
    "window",
    "finding",
    "qualifier",
    "site",
)


@dataclass(frozen=True)
class Term:
    """The words for one value of one label field.

    ``written`` phrases may appear in captions (the first is the canonical one); ``parsed``
    phrases are only accepted. ``terse`` is the abbreviation terse captions use, ``adjective``
    the form written before a noun ("patellar" fracture, "renal" ultrasound). ``modalities``
    limits a region phrase to some modalities; ``implies`` lists other (field, value) pairs the
    phrase sets.
    """

    field: str
    value: str
    written: tuple[str, ...] = ()
    parsed: tuple[str, ...] = ()
    terse: str | None = None
    adjective: str | None = None
    modalities: tuple[str, ...] = ()
    implies: tuple[tuple[str, str], ...] = ()

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every phrase that names this term, written ones first."""
        extra = tuple(p for p in (self.adjective, self.terse) if p)
        return tuple(dict.fromkeys(self.written + extra + self.parsed))


def _t(
    field: str,
    value: str,
    *written: str,
    parsed: tuple[str, ...] = (),
    terse: str | None = None,
    adjective: str | None = None,
    modalities: tuple[str, ...] = (),
    implies: tuple[tuple[str, str], ...] = (),
) -> Term:
    return Term(field, value, written, parsed, terse, adjective, modalities, implies)


# Finding values that stand for one of several kinds until the context decides.
GENERIC_KINDS: dict[str, tuple[str, ...]] = {
    "effusion": ("pleural_effusion", "joint_effusion"),
    "prosthesis": ("hip_prosthesis", "knee_prosthesis"),
    "lesion": ("bone_tumour", "lung_nodule"),
}
# A view value that depends on the region: a frontal chest radiograph is PA, other ones are AP.
FRONTAL_VIEW = "frontal"
# A side word that asks for both sides ("bilateral pleural effusions", "both femora").
BILATERAL = "bilateral"

_MODALITY_TERMS = (
    _t(
        "modality",
        "xray",
        "X-ray",
        "radiograph",
        "plain film",
        "plain radiograph",
        parsed=(
            "radiography",
            "radiographic",
            "xray",
            "xr",
            "cr",
            "dx",
            "roentgenogram",
            "roentgen",
            "radiogram",
            "film",
            "x rays",
        ),
        terse="XR",
    ),
    _t(
        "modality",
        "ct",
        "CT",
        "computed tomography",
        "CT scan",
        parsed=("cat scan", "computerised tomography", "computerized tomography", "mdct"),
        terse="CT",
    ),
    _t(
        "modality",
        "mri",
        "MRI",
        "MR",
        "magnetic resonance imaging",
        parsed=("magnetic resonance", "mri scan", "nmr"),
        terse="MR",
    ),
    _t(
        "modality",
        "us",
        "ultrasound",
        "sonogram",
        "ultrasonography",
        "sonography",
        parsed=("us", "usg", "sonographic", "ultrasonographic", "echography", "ultrasound scan"),
        terse="US",
    ),
)

_REGION_TERMS = (
    _t("region", "head", "head", parsed=("skull", "cranium", "cranial")),
    _t("region", "head", "brain", modalities=("ct", "mri")),
    _t("region", "chest", "chest", "thorax", parsed=("lung", "lungs", "thoracic cavity")),
    _t("region", "chest", parsed=("cxr",), modalities=("xray",)),
    _t("region", "shoulder", "shoulder"),
    _t(
        "region",
        "abdomen",
        "abdomen",
        adjective="abdominal",
        parsed=("belly", "abdo"),
        terse="abdo",
    ),
    _t("region", "abdomen", parsed=("kub",), modalities=("xray",)),
    _t("region", "pelvis", "pelvis", adjective="pelvic", parsed=("hip", "hips")),
    _t("region", "hand", "hand"),
    _t("region", "knee", "knee"),
    _t("region", "ankle", "ankle"),
    _t("region", "wrist", "wrist"),
    _t(
        "region",
        "cervical_spine",
        "cervical spine",
        "C-spine",
        parsed=("neck", "cervical"),
        terse="C-spine",
    ),
    _t(
        "region",
        "thoracic_spine",
        "thoracic spine",
        "T-spine",
        parsed=("dorsal spine",),
        terse="T-spine",
    ),
    _t(
        "region",
        "lumbar_spine",
        "lumbar spine",
        "L-spine",
        parsed=("lumbosacral spine", "low back", "lower back", "lumbar"),
        terse="L-spine",
    ),
    _t("region", "spine", "spine", parsed=("spinal", "whole spine")),
    _t(
        "region",
        "full_body",
        "whole body",
        "full body",
        parsed=("entire body", "total body", "full length"),
        terse="whole body",
    ),
    _t("region", "liver", "liver", parsed=("hepatic",)),
    _t("region", "kidney", "kidney", adjective="renal"),
    _t("region", "gallbladder", "gallbladder", parsed=("gall bladder", "biliary")),
    _t("region", "thyroid", "thyroid", parsed=("thyroid gland",)),
    _t(
        "region",
        "fetus",
        "fetus",
        adjective="fetal",
        parsed=("foetus", "foetal", "obstetric", "obstetrical", "pregnancy", "pregnant", "ob"),
    ),
)

_VIEW_TERMS = (
    _t("view", "ap", "AP", "anteroposterior", parsed=("antero posterior",)),
    _t("view", "pa", "PA", "posteroanterior", parsed=("postero anterior",)),
    _t("view", "lateral", "lateral", parsed=("lat",), terse="Lat"),
    _t(
        "view",
        "axial",
        "axial",
        "transverse",
        parsed=("transaxial", "ax", "cross sectional"),
        terse="Ax",
    ),
    _t("view", "sagittal", "sagittal", parsed=("sag",), terse="Sag"),
    _t("view", "coronal", "coronal", parsed=("cor",), terse="Cor"),
    _t(
        "view",
        "b_mode",
        "B-mode",
        parsed=("bmode", "b scan", "grayscale", "greyscale", "2d", "brightness mode"),
    ),
    _t("view", FRONTAL_VIEW, parsed=("frontal",), modalities=("xray",)),
)

_PATIENT_TERMS = (
    _t("laterality", "left", "left", parsed=("lt", "left sided", "left side"), terse="L"),
    _t("laterality", "right", "right", parsed=("rt", "right sided", "right side"), terse="R"),
    # Not a label value: a bilateral finding is parsed into a left and a right one.
    _t("laterality", BILATERAL, parsed=("bilateral", "bilaterally", "both", "both sides")),
    _t(
        "sex",
        "female",
        "woman",
        "female",
        "lady",
        parsed=("f", "girl", "women", "ladies", "female patient"),
        terse="F",
    ),
    _t(
        "sex",
        "male",
        "man",
        "male",
        "gentleman",
        parsed=("m", "boy", "men", "male patient"),
        terse="M",
    ),
    _t("sequence", "t1", "T1-weighted", "T1", "T1w", terse="T1"),
    _t("sequence", "t2", "T2-weighted", "T2", "T2w", terse="T2"),
    _t(
        "sequence",
        "pd",
        "proton density",
        "PD-weighted",
        "PD",
        parsed=("proton density weighted", "pdw"),
        terse="PD",
    ),
    _t("window", "brain", "brain window"),
    _t("window", "bone", "bone window"),
    _t("window", "lung", "lung window", parsed=("pulmonary window",)),
    _t(
        "window",
        "soft_tissue",
        "soft tissue window",
        parsed=("mediastinal window", "abdominal window"),
    ),
)

_FINDING_TERMS = (
    _t(
        "finding",
        "fracture",
        "fracture",
        parsed=("fractured", "broken", "break", "cortical break", "fx"),
        terse="fx",
    ),
    _t(
        "finding",
        "fracture",
        parsed=("hip fracture", "nof fracture"),
        implies=(("site", "femoral_neck"),),
    ),
    _t(
        "finding",
        "bone_tumour",
        "bone tumour",
        "bone tumor",
        "bone lesion",
        parsed=("osseous lesion", "bone neoplasm"),
        terse="bone lesion",
    ),
    _t(
        "finding",
        "lung_nodule",
        "lung lesion",
        "pulmonary lesion",
        "lung tumour",
        parsed=("lung tumor", "lung cancer", "pulmonary neoplasm"),
        terse="lung lesion",
    ),
    _t(
        "finding",
        "intracranial_haemorrhage",
        "intracranial haemorrhage",
        "intracranial hemorrhage",
        "haemorrhage",
        "hemorrhage",
        "intracranial bleed",
        parsed=(
            "ich",
            "bleed",
            "brain bleed",
            "haematoma",
            "hematoma",
            "intracerebral haemorrhage",
            "intracerebral hemorrhage",
        ),
        terse="ICH",
    ),
    _t(
        "finding",
        "consolidation",
        "consolidation",
        "pneumonia",
        "airspace opacity",
        parsed=(
            "airspace disease",
            "air space opacity",
            "air space disease",
            "lobar consolidation",
            "lobar pneumonia",
            "infiltrate",
        ),
    ),
    _t(
        "finding",
        "pleural_effusion",
        "pleural effusion",
        parsed=(
            "hydrothorax",
            "blunted costophrenic angle",
            "costophrenic blunting",
            "blunting of the costophrenic angle",
        ),
    ),
    _t(
        "finding",
        "joint_effusion",
        "joint effusion",
        parsed=("knee effusion", "suprapatellar effusion", "knee joint effusion"),
    ),
    _t(
        "finding",
        "hip_prosthesis",
        "hip prosthesis",
        "hip replacement",
        "total hip arthroplasty",
        "hip arthroplasty",
        parsed=("tha", "thr", "total hip replacement", "hemiarthroplasty", "hip hemiarthroplasty"),
        terse="THA",
    ),
    _t(
        "finding",
        "knee_prosthesis",
        "knee prosthesis",
        "knee replacement",
        "total knee arthroplasty",
        "knee arthroplasty",
        parsed=("tka", "tkr", "total knee replacement"),
        terse="TKA",
    ),
    _t(
        "finding",
        "plate_and_screws",
        "plate and screws",
        "plate osteosynthesis",
        "internal fixation",
        parsed=(
            "orif",
            "osteosynthesis",
            "plate",
            "screws",
            "screw",
            "plate fixation",
            "fixation plate",
        ),
        terse="ORIF",
    ),
    _t(
        "finding",
        "pacemaker",
        "pacemaker",
        "cardiac pacemaker",
        parsed=(
            "ppm",
            "icd",
            "cardiac device",
            "pacemaker leads",
            "pacer",
            "defibrillator",
            "implantable cardioverter defibrillator",
        ),
        terse="PPM",
    ),
    _t(
        "finding",
        "ecg_leads",
        "ECG leads",
        "ECG electrodes",
        "monitoring leads",
        parsed=(
            "ekg leads",
            "ekg electrodes",
            "ecg lead",
            "ecg electrode",
            "ecg",
            "ekg",
            "electrodes",
        ),
    ),
    _t("finding", "jewellery", "jewellery", "jewelry", parsed=("earring", "piercing", "jewel")),
    _t("finding", "effusion", parsed=("effusion",)),
    # After "left lung" a bare "lesion" or "tumour" is a lung one; on a knee a bone one.
    _t("finding", "lesion", parsed=("lesion", "tumour", "tumor", "neoplasm", "cancer")),
    _t(
        "finding",
        "prosthesis",
        parsed=("prosthesis", "joint replacement", "arthroplasty", "joint prosthesis"),
    ),
)

_QUALIFIER_TERMS = (
    _t("qualifier", "displaced", "displaced"),
    _t("qualifier", "angulated", "angulated"),
    _t(
        "qualifier",
        "non_displaced",
        "non-displaced",
        "undisplaced",
        "nondisplaced",
        terse="nondisplaced",
    ),
    _t("qualifier", "lytic", "lytic", "osteolytic"),
    _t("qualifier", "lytic", parsed=("lytic lesion", "osteolytic lesion")),
    _t("qualifier", "sclerotic", "sclerotic", "osteoblastic", parsed=("blastic",)),
    _t("qualifier", "sclerotic", parsed=("sclerotic lesion", "osteoblastic lesion")),
    _t("qualifier", "nodule", "nodule", "pulmonary nodule", "lung nodule", parsed=("coin lesion",)),
    _t("qualifier", "mass", "mass", "lung mass", "pulmonary mass"),
    _t("qualifier", "intraparenchymal", "intraparenchymal", parsed=("iph", "parenchymal")),
    _t("qualifier", "subdural", "subdural", parsed=("sdh",)),
    _t("qualifier", "epidural", "epidural", "extradural", parsed=("edh",)),
    _t("qualifier", "ring", "ring"),
    _t("qualifier", "necklace", "necklace"),
    _t("qualifier", "bracelet", "bracelet"),
)

_SITE_TERMS = (
    _t("site", "femur", "femur", adjective="femoral", parsed=("thigh bone", "thighbone")),
    _t(
        "site", "femoral_neck", "femoral neck", parsed=("neck of femur", "neck of the femur", "nof")
    ),
    _t(
        "site",
        "tibia",
        "tibia",
        adjective="tibial",
        parsed=("shin bone", "shinbone", "tibial plateau", "proximal tibia", "tibial shaft"),
    ),
    _t("site", "fibula", "fibula", adjective="fibular"),
    _t(
        "site",
        "distal_tibia",
        "distal tibia",
        adjective="distal tibial",
        parsed=("medial malleolus", "medial malleolar"),
    ),
    _t(
        "site",
        "distal_fibula",
        "distal fibula",
        adjective="distal fibular",
        # Weber A-C: the level of a distal fibular fracture against the syndesmosis
        parsed=("lateral malleolus", "lateral malleolar", "weber", "weber a", "weber b", "weber c"),
    ),
    _t("site", "patella", "patella", adjective="patellar", parsed=("kneecap", "knee cap")),
    _t("site", "humerus", "humerus", adjective="humeral"),
    _t("site", "radius", "radius", adjective="radial"),
    _t(
        "site",
        "distal_radius",
        "distal radius",
        adjective="distal radial",
        parsed=("colles", "smith"),
    ),
    _t("site", "ulna", "ulna", adjective="ulnar"),
    _t(
        "site", "clavicle", "clavicle", adjective="clavicular", parsed=("collarbone", "collar bone")
    ),
    _t("site", "metacarpal", "metacarpal", parsed=("boxer",)),
    _t("site", "left_lung", "left lung", adjective="left lung", terse="L lung"),
    _t("site", "right_lung", "right lung", adjective="right lung", terse="R lung"),
    _t("site", "left_upper_lobe", "left upper lobe", terse="LUL"),
    _t("site", "left_lower_lobe", "left lower lobe", terse="LLL"),
    _t("site", "right_upper_lobe", "right upper lobe", terse="RUL"),
    _t("site", "right_middle_lobe", "right middle lobe", parsed=("middle lobe",), terse="RML"),
    _t("site", "right_lower_lobe", "right lower lobe", terse="RLL"),
    _t(
        "site",
        "left_hemisphere",
        "left hemisphere",
        parsed=("left cerebral hemisphere", "left hemispheric"),
    ),
    _t(
        "site",
        "right_hemisphere",
        "right hemisphere",
        parsed=("right cerebral hemisphere", "right hemispheric"),
    ),
    _t("site", "left_hemithorax", "left hemithorax", parsed=("left pleural space",)),
    _t("site", "right_hemithorax", "right hemithorax", parsed=("right pleural space",)),
)

TERMS: tuple[Term, ...] = (
    _MODALITY_TERMS
    + _REGION_TERMS
    + _VIEW_TERMS
    + _PATIENT_TERMS
    + _FINDING_TERMS
    + _QUALIFIER_TERMS
    + _SITE_TERMS
)


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words a prompt may contain that set no label: grammar, politeness and image nouns.
FILLER_WORDS: frozenset[str] = _word_set(
    "a an the of in on at to for from by this that these those image images picture pictures "
    "photo photograph patient patients scan scans study exam examination view views projection "
    "projections imaging radiological radiology medical diagnostic is are has have there seen "
    "shows show shown visible present please generate create make synthetic realistic high "
    "quality setting settings windowing age aged sided evidence"
)
# Describing words that fit radiology prompts but have no label field; accepted and ignored.
DESCRIPTIVE_WORDS: frozenset[str] = _word_set(
    "acute chronic small large tiny big mild moderate severe subtle new healing healed simple "
    "complex complete incomplete comminuted single multiple solitary known suspected possible "
    "probable focal diffuse dense faint obvious typical "
    # patient position and setting: how the image was taken, not what it shows
    "portable bedside supine erect upright standing weight bearing weightbearing basal basilar"
)
# Contrast agent: radsynth's CT and MRI (phantoms and model) are unenhanced. These words are
# refused unless a word of NON_CONTRAST_WORDS just before them says so ("non-contrast CT",
# "CT without contrast"); "noncontrast" and "unenhanced" alone say it too.
CONTRAST_WORDS: frozenset[str] = _word_set("contrast enhanced enhancing gadolinium iodinated")
NON_CONTRAST_WORDS: frozenset[str] = _word_set("non no without noncontrast unenhanced")
# Words that separate one finding from the next.
SEPARATOR_WORDS: frozenset[str] = _word_set(
    "with and or nor plus showing demonstrating depicting revealing but also including , ; . : ( )"
)
# Words that negate the findings after them up to the next scope end.
NEGATION_WORDS: frozenset[str] = frozenset({"no", "without", "not", "negative"})
# Separators that end a negation ("without fracture, with effusion"); "and"/"or"/"nor" keep
# it, and so does a comma of a list closed by one of them ("no consolidation, effusion or
# nodule").
NEGATION_ENDS: frozenset[str] = SEPARATOR_WORDS - {"and", "or", "nor"}
# "not" followed by one of these negates the words before it: "fracture is not seen".
POST_NEGATION_WORDS: frozenset[str] = frozenset(
    {"seen", "present", "identified", "visible", "demonstrated", "evident", "noted", "detected"}
)
# Words that negate the finding before them: "effusion absent".
ABSENT_WORDS: frozenset[str] = frozenset({"absent"})
# Words saying that the image shows no finding.
NORMAL_WORDS: frozenset[str] = frozenset({"normal", "unremarkable"})
# Words that may follow an age number: "62 year old", "62 yo", "6 months".
AGE_UNIT_WORDS: frozenset[str] = frozenset(
    {"y", "yo", "yr", "yrs", "year", "years", "old", "month", "months", "mo"}
)
MONTH_WORDS: frozenset[str] = frozenset({"month", "months", "mo"})
# Words that stand for several findings, read as the words written out ("bimalleolar
# fracture": a fracture of each malleolus; the posterior malleolus of a trimalleolar one is
# the distal tibia's, which the medial one already names).
_BOTH_MALLEOLI = ("lateral", "malleolar", "fracture", "and", "medial", "malleolar")
EXPANDED_WORDS: dict[str, tuple[str, ...]] = {
    "bimalleolar": _BOTH_MALLEOLI,
    "trimalleolar": _BOTH_MALLEOLI,
}
# Radiology words for what radsynth does not model, by the label field they would set: an
# unknown-word error names the field and what radsynth has instead of guessing a spelling.
NOT_MODELLED: dict[str, str] = {
    **dict.fromkeys(
        _word_set("flair dwi adc stir swi gre diffusion perfusion susceptibility"),
        "MRI sequence",
    ),
    **dict.fromkeys(
        _word_set(
            "pneumothorax cardiomegaly atelectasis oedema edema emphysema fibrosis "
            "pneumoperitoneum dislocation osteoarthritis arthritis scoliosis kyphosis "
            "osteoporosis calcification calculus stone stones gallstone gallstones appendicitis "
            "abscess hernia metastasis metastases infarct stroke aneurysm cyst hydronephrosis "
            "ascites thrombosis"
        ),
        "finding",
    ),
    **dict.fromkeys(
        _word_set(
            "scaphoid rib ribs calcaneus talus olecranon acetabulum acetabular vertebra "
            "vertebral phalanx phalangeal sternum scapula scapular"
        ),
        "fracture site",
    ),
    **dict.fromkeys(
        _word_set("elbow foot forearm thigh leg finger toe sinus sinuses orbit jaw breast"),
        "region",
    ),
    **dict.fromkeys(
        _word_set(
            "pet mammogram mammography fluoroscopy angiography angiogram dexa scintigraphy spect"
        ),
        "modality",
    ),
}
# Words for an age group, with the ages (years, inclusive) they fit: accepted beside an age
# that fits ("8-year-old child"), refused with a hint when the prompt gives no age.
AGE_GROUPS: dict[str, tuple[int, int]] = {
    "newborn": (0, 0),
    "neonate": (0, 0),
    "neonatal": (0, 0),
    "infant": (0, 1),
    "baby": (0, 1),
    "toddler": (1, 3),
    "child": (0, 17),
    "children": (0, 17),
    "kid": (0, 17),
    "paediatric": (0, 17),
    "pediatric": (0, 17),
    "adolescent": (10, 19),
    "teenager": (13, 19),
    "adult": (18, 120),
    "elderly": (65, 120),
    "geriatric": (65, 120),
}

# Qualifier -> the one finding kind it belongs to.
QUALIFIER_KINDS: dict[str, str] = {
    qualifier: kind for kind, qualifiers in FINDING_QUALIFIERS.items() for qualifier in qualifiers
}
# Qualifiers that are nouns themselves ("a nodule", "a ring") and replace the finding's noun.
QUALIFIER_NOUNS: frozenset[str] = frozenset({"nodule", "mass", "ring", "necklace", "bracelet"})
# Finding kinds whose site follows from a side ("left pleural effusion" -> left_hemithorax).
SIDED_SITES: dict[str, str] = {
    "intracranial_haemorrhage": "{side}_hemisphere",
    "pleural_effusion": "{side}_hemithorax",
    "hip_prosthesis": "{side}_hip",
    "lung_nodule": "{side}_lung",
    "consolidation": "{side}_lung",
}
# The MRI region list has one spine; the X-ray segments map onto it.
_REGION_ALIASES: dict[tuple[str, str], str] = {
    ("mri", "cervical_spine"): "spine",
    ("mri", "thoracic_spine"): "spine",
    ("mri", "lumbar_spine"): "spine",
}

_KNEE_BONES = ("femur", "tibia", "fibula", "patella")
_HEMISPHERES = FINDING_SITES["intracranial_haemorrhage"]
_HEMITHORACES = FINDING_SITES["pleural_effusion"]
_HIPS = FINDING_SITES["hip_prosthesis"]
_CHEST_FINDINGS: dict[str, tuple[str, ...]] = {
    "lung_nodule": LUNG_SITES,
    "consolidation": LUNG_SITES,
    "pleural_effusion": _HEMITHORACES,
    "pacemaker": (),
}
# Which findings the phantoms place in each (modality, region), and at which sites. An empty
# site tuple means the finding takes no site (a knee prosthesis is in the knee by definition).
FINDINGS_BY_REGION: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("xray", "head"): {},
    ("xray", "chest"): {
        **_CHEST_FINDINGS,
        "ecg_leads": (),
        "fracture": ("clavicle", "humerus"),
        "jewellery": (),
    },
    ("xray", "shoulder"): {
        "fracture": ("humerus", "clavicle"),
        "bone_tumour": ("humerus",),
        "plate_and_screws": ("humerus",),
    },
    ("xray", "abdomen"): {},
    ("xray", "pelvis"): {
        "fracture": ("femoral_neck", "femur"),
        "bone_tumour": ("femur",),
        "hip_prosthesis": _HIPS,
        "plate_and_screws": ("femur",),
    },
    ("xray", "hand"): {"fracture": ("metacarpal", "distal_radius"), "jewellery": ()},
    ("xray", "knee"): {
        "fracture": _KNEE_BONES,
        "bone_tumour": ("femur", "tibia", "fibula"),
        "joint_effusion": (),
        "knee_prosthesis": (),
        "plate_and_screws": ("femur", "tibia", "fibula"),
    },
    ("xray", "ankle"): {
        # an ankle radiograph shows the lowest 5-8 cm of the leg: its fractures are distal
        "fracture": ("distal_fibula", "distal_tibia"),
        "bone_tumour": ("tibia", "fibula"),
        "plate_and_screws": ("tibia", "fibula"),
    },
    ("xray", "wrist"): {
        "fracture": ("distal_radius", "radius", "ulna", "metacarpal"),
        "plate_and_screws": ("radius",),
        "jewellery": (),
    },
    ("xray", "cervical_spine"): {},
    ("xray", "thoracic_spine"): {},
    ("xray", "lumbar_spine"): {},
    ("xray", "full_body"): {
        "fracture": (
            "femur",
            "femoral_neck",
            "tibia",
            "fibula",
            "humerus",
            "radius",
            "ulna",
            "clavicle",
            # the distal sites of the regional radiographs: a whole body shows them too
            "distal_radius",
            "distal_tibia",
            "distal_fibula",
            "metacarpal",
        ),
        "bone_tumour": FINDING_SITES["bone_tumour"],
        "hip_prosthesis": _HIPS,
        "knee_prosthesis": (),
        "plate_and_screws": FINDING_SITES["plate_and_screws"],
        "pacemaker": (),
    },
    ("ct", "head"): {"intracranial_haemorrhage": _HEMISPHERES},
    ("ct", "chest"): dict(_CHEST_FINDINGS),
    ("ct", "abdomen"): {},
    ("ct", "pelvis"): {"fracture": ("femoral_neck",), "hip_prosthesis": _HIPS},
    ("ct", "knee"): {"fracture": _KNEE_BONES, "joint_effusion": (), "knee_prosthesis": ()},
    ("mri", "head"): {"intracranial_haemorrhage": _HEMISPHERES},
    ("mri", "knee"): {
        "fracture": _KNEE_BONES,
        "bone_tumour": ("femur", "tibia", "fibula"),
        "joint_effusion": (),
    },
    ("mri", "spine"): {},
    ("mri", "abdomen"): {},
    **{("us", region): {} for region in REGIONS_BY_MODALITY["us"]},
}
# Qualifiers that fit a finding only in some regions (a necklace is not on a hand radiograph).
_QUALIFIERS_BY_REGION: dict[tuple[str, str], tuple[str, ...]] = {
    ("hand", "jewellery"): ("ring", "bracelet"),
    ("wrist", "jewellery"): ("ring", "bracelet"),
    ("chest", "jewellery"): ("necklace",),
}


def qualifiers_for(region: str | None, kind: str) -> tuple[str, ...]:
    """The qualifiers a finding of `kind` may carry in `region` (all of them when None)."""
    if region is not None and (region, kind) in _QUALIFIERS_BY_REGION:
        return _QUALIFIERS_BY_REGION[(region, kind)]
    return FINDING_QUALIFIERS[kind]


def resolve_region(modality: str, value: str) -> str | None:
    """The region of `modality` that a region word's value names, or None if it has none."""
    region = _REGION_ALIASES.get((modality, value), value)
    return region if region in REGIONS_BY_MODALITY[modality] else None


def sided_site(kind: str, side: str) -> str | None:
    """The site a side gives a finding ("left" pleural effusion -> "left_hemithorax")."""
    pattern = SIDED_SITES.get(kind)
    return None if pattern is None else pattern.format(side=side)


def site_side(kind: str, site: str | None) -> str | None:
    """The side a sided site stands for ("left_hemithorax" -> "left"), else None."""
    for side in ("left", "right"):
        if site is not None and site == sided_site(kind, side):
            return side
    return None


# Words are runs of letters and digits of any script ("röntgen", "骨折" are words, so they are
# refused as unknown rather than cut apart or dropped); punctuation that ends a clause.
_WORD = re.compile(r"[^\W_]+|[,;.:()]")
# "y/o" and "y.o." (years old), read as the one word "yo".
YEARS_OLD = re.compile(r"\by\s*[./]\s*o\b\.?")


def normalise_words(text: str) -> list[str]:
    """Split text into the lower-case words and punctuation marks the lexicon is keyed on."""
    # Fractions and superscripts ("5½", "T²") are set apart first: NFKC would join their
    # digits to the number before them ("5½" -> "51⁄2").
    text = "".join(" " if unicodedata.category(c) == "No" else c for c in text)
    text = re.sub(r"['\u2019]", "", unicodedata.normalize("NFKC", text).lower())
    text = YEARS_OLD.sub("yo", text)
    return _WORD.findall(text)


def _build_lexicon(terms: tuple[Term, ...]) -> dict[tuple[str, ...], Term]:
    lexicon: dict[tuple[str, ...], Term] = {}
    for term in terms:
        if term.field not in FIELDS:
            raise ValueError(f"term {term.value!r} has unknown field {term.field!r}")
        for phrase in term.phrases:
            key = tuple(normalise_words(phrase))
            other = lexicon.get(key)
            if other is not None and other != term:
                raise ValueError(
                    f"phrase {phrase!r} names both {other.field} {other.value!r} and "
                    f"{term.field} {term.value!r}; give it to one term only"
                )
            lexicon[key] = term
    return lexicon


# Phrase (as a tuple of normalised words) -> the term it names.
LEXICON: dict[tuple[str, ...], Term] = _build_lexicon(TERMS)
MAX_PHRASE_WORDS: int = max(len(key) for key in LEXICON)


def terms_for(field: str, value: str, modality: str | None = None) -> tuple[Term, ...]:
    """The terms naming `value` of `field`, keeping only those that fit `modality`."""
    return tuple(
        term
        for term in TERMS
        if term.field == field
        and term.value == value
        and (modality is None or not term.modalities or modality in term.modalities)
    )


def written_forms(field: str, value: str, modality: str | None = None) -> tuple[str, ...]:
    """Phrases a caption may write for `value` of `field` (canonical first)."""
    forms = [p for term in terms_for(field, value, modality) for p in term.written]
    if not forms:
        raise ValueError(f"no written wording for {field} {value!r}; add one to terms.TERMS")
    return tuple(dict.fromkeys(forms))


def describe(field: str, value: str) -> str:
    """The canonical human wording of a label value ("b_mode" -> "B-mode")."""
    for term in terms_for(field, value):
        if term.written:
            return term.written[0]
    return value.replace("_", " ")


def known_values(field: str) -> tuple[str, ...]:
    """Every value of `field` the vocabulary has words for."""
    return tuple(dict.fromkeys(term.value for term in TERMS if term.field == field))


_ALL_VALUES: dict[str, tuple[str, ...]] = {
    "modality": MODALITIES,
    "view": tuple(dict.fromkeys(v for views in VIEWS_BY_MODALITY.values() for v in views)),
    "sequence": MRI_SEQUENCES,
    "window": CT_WINDOWS,
    "finding": FINDING_KINDS,
}


def missing_terms() -> dict[str, tuple[str, ...]]:
    """Label values from labels.py that have no written wording yet (empty when complete)."""
    missing: dict[str, tuple[str, ...]] = {}
    for field, values in _ALL_VALUES.items():
        absent = tuple(v for v in values if not any(t.written for t in terms_for(field, v)))
        if absent:
            missing[field] = absent
    return missing
