"""The structured labels every radsynth image carries, and the closed sets their fields take.

A `Labels` record is what a phantom case is generated from, what a caption is written from, and
what the prompt parser turns text back into. Field values are canonical identifiers (lower case,
underscores); human wording and synonyms live in `radsynth.vocabulary.terms`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MODALITIES: tuple[str, ...] = ("xray", "ct", "mri", "us")

# Regions per modality. The first eight X-ray regions are the reference study's prompts.
STUDY_XRAY_REGIONS: tuple[str, ...] = (
    "head",
    "chest",
    "shoulder",
    "abdomen",
    "pelvis",
    "hand",
    "knee",
    "ankle",
)
XRAY_REGIONS: tuple[str, ...] = STUDY_XRAY_REGIONS + (
    "wrist",
    "cervical_spine",
    "thoracic_spine",
    "lumbar_spine",
    "full_body",
)
CT_REGIONS: tuple[str, ...] = ("head", "chest", "abdomen", "pelvis", "knee")
MRI_REGIONS: tuple[str, ...] = ("head", "knee", "spine", "abdomen")
US_REGIONS: tuple[str, ...] = ("liver", "kidney", "gallbladder", "thyroid", "fetus")
REGIONS_BY_MODALITY: dict[str, tuple[str, ...]] = {
    "xray": XRAY_REGIONS,
    "ct": CT_REGIONS,
    "mri": MRI_REGIONS,
    "us": US_REGIONS,
}
ALL_REGIONS: tuple[str, ...] = tuple(
    dict.fromkeys(r for regions in REGIONS_BY_MODALITY.values() for r in regions)
)

VIEWS_BY_MODALITY: dict[str, tuple[str, ...]] = {
    "xray": ("ap", "pa", "lateral"),
    "ct": ("axial",),
    "mri": ("axial", "sagittal", "coronal"),
    "us": ("b_mode",),
}
LATERALITIES: tuple[str, ...] = ("left", "right")
# Regions that exist once per side; the others are midline and have laterality None.
PAIRED_REGIONS: frozenset[str] = frozenset({"shoulder", "hand", "wrist", "knee", "ankle", "kidney"})
SEXES: tuple[str, ...] = ("female", "male")

MRI_SEQUENCES: tuple[str, ...] = ("t1", "t2", "pd")
CT_WINDOWS: tuple[str, ...] = ("brain", "bone", "lung", "soft_tissue")

# Findings: kind -> the regions (per modality) where the phantoms can render it.
FINDING_KINDS: tuple[str, ...] = (
    "fracture",
    "bone_tumour",
    "lung_nodule",
    "intracranial_haemorrhage",
    "consolidation",
    "pleural_effusion",
    "joint_effusion",
    "hip_prosthesis",
    "knee_prosthesis",
    "plate_and_screws",
    "pacemaker",
    "ecg_leads",
    "jewellery",
)
PATHOLOGY_KINDS: frozenset[str] = frozenset(
    {
        "fracture",
        "bone_tumour",
        "lung_nodule",
        "intracranial_haemorrhage",
        "consolidation",
        "pleural_effusion",
        "joint_effusion",
    }
)
DEVICE_KINDS: frozenset[str] = frozenset(FINDING_KINDS) - PATHOLOGY_KINDS

# Qualifiers a finding may carry (adjectives a radiologist would use).
FINDING_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "fracture": ("displaced", "angulated", "non_displaced"),
    "bone_tumour": ("lytic", "sclerotic"),
    "lung_nodule": ("nodule", "mass"),
    "intracranial_haemorrhage": ("intraparenchymal", "subdural", "epidural"),
    "consolidation": (),
    "pleural_effusion": (),
    "joint_effusion": (),
    "hip_prosthesis": (),
    "knee_prosthesis": (),
    "plate_and_screws": (),
    "pacemaker": (),
    "ecg_leads": (),
    "jewellery": ("ring", "necklace", "bracelet"),
}

LUNG_SITES: tuple[str, ...] = (
    "left_lung",
    "right_lung",
    "left_upper_lobe",
    "left_lower_lobe",
    "right_upper_lobe",
    "right_middle_lobe",
    "right_lower_lobe",
)
# Where each finding kind can be placed (canonical structure names without side unless the side
# is part of the site; a limb site takes its side from the image's laterality).
FINDING_SITES: dict[str, tuple[str, ...]] = {
    "fracture": (
        "femur",
        "femoral_neck",
        "tibia",
        "fibula",
        "distal_tibia",
        "distal_fibula",
        "patella",
        "humerus",
        "radius",
        "distal_radius",
        "ulna",
        "clavicle",
        "metacarpal",
    ),
    "bone_tumour": ("femur", "tibia", "fibula", "humerus", "radius"),
    "lung_nodule": LUNG_SITES,
    "intracranial_haemorrhage": ("left_hemisphere", "right_hemisphere"),
    "consolidation": LUNG_SITES,
    "pleural_effusion": ("left_hemithorax", "right_hemithorax"),
    "joint_effusion": ("knee",),
    "hip_prosthesis": ("left_hip", "right_hip"),
    "knee_prosthesis": ("knee",),
    "plate_and_screws": ("femur", "tibia", "fibula", "humerus", "radius"),
    "pacemaker": (),
    "ecg_leads": (),
    "jewellery": (),
}
# Kinds placed on one side of the body whose sites name no side ("femur", "knee"; a pacemaker
# has no site): on a paired region (a knee, a wrist) the image's laterality gives the side; on
# a midline region (a chest, a pelvis, a whole body) a finding of these kinds may carry its own
# `side` ("chest radiograph with a fracture of the left clavicle").
LIMB_SIDED_KINDS: frozenset[str] = frozenset(
    {
        "fracture",
        "bone_tumour",
        "plate_and_screws",
        "joint_effusion",
        "knee_prosthesis",
        "pacemaker",
    }
)


def side_named_by(site: str | None) -> str | None:
    """The side a site's name begins with ("right_lower_lobe" -> "right", "left_hip" ->
    "left"); None for a site that names none, or no site."""
    side = (site or "").split("_")[0]
    return side if side in LATERALITIES else None


@dataclass(frozen=True)
class Finding:
    """One finding: its kind, where it is (a named structure such as "patella" or "left_lung",
    or None when unspecified), qualifiers such as ("displaced",) and, for the kinds in
    `LIMB_SIDED_KINDS` on a midline region, the side of the body it lies on (None: not given;
    on a paired region the image's laterality gives it)."""

    kind: str
    site: str | None = None
    qualifiers: tuple[str, ...] = ()
    side: str | None = None

    def __post_init__(self) -> None:
        check_finding(self)

    def to_dict(self) -> dict[str, Any]:
        """The finding as a dict; "side" only when given, so the records of unsided findings
        keep the keys they always had."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "site": self.site,
            "qualifiers": list(self.qualifiers),
        }
        if self.side is not None:
            data["side"] = self.side
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            data["kind"], data.get("site"), tuple(data.get("qualifiers", ())), data.get("side")
        )


def check_finding(finding: Finding) -> None:
    """Raise ValueError naming the allowed values when a finding's kind, site or qualifiers
    do not fit together."""
    if finding.kind not in FINDING_KINDS:
        raise ValueError(
            f"unknown finding kind {finding.kind!r}; use one of: {', '.join(FINDING_KINDS)}"
        )
    sites = FINDING_SITES[finding.kind]
    if finding.site is not None and finding.site not in sites:
        raise ValueError(
            f"site {finding.site!r} does not fit finding {finding.kind!r}; "
            f"use one of: {', '.join(sites) or '(no site)'}"
        )
    if finding.side is not None:
        _check_choice("finding side", finding.side, LATERALITIES)
        if finding.kind not in LIMB_SIDED_KINDS:
            raise ValueError(
                f"a {finding.kind!r} finding takes no side of its own; its site names the side "
                f"where it has one; findings with a side: {', '.join(sorted(LIMB_SIDED_KINDS))}"
            )
    allowed = FINDING_QUALIFIERS[finding.kind]
    for qualifier in finding.qualifiers:
        if qualifier not in allowed:
            raise ValueError(
                f"qualifier {qualifier!r} does not fit finding {finding.kind!r}; "
                f"use one of: {', '.join(allowed) or '(none)'}"
            )


@dataclass(frozen=True)
class Labels:
    """Structured description of one image. Fields left None are unknown / not specified
    (a parsed prompt usually specifies only some of them)."""

    modality: str | None = None
    region: str | None = None
    view: str | None = None
    laterality: str | None = None
    sex: str | None = None
    age: int | None = None  # years
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    sequence: str | None = None  # MRI contrast: t1, t2, pd
    window: str | None = None  # CT display window preset

    def __post_init__(self) -> None:
        validate_labels(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [f.to_dict() for f in self.findings]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Labels:
        values = dict(data)
        values["findings"] = tuple(Finding.from_dict(f) for f in values.get("findings", ()))
        return cls(**values)

    def finding_kinds(self) -> set[str]:
        return {f.kind for f in self.findings}


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ValueError(f"{name} {value!r} is not known; use one of: {', '.join(choices)}")


def validate_labels(labels: Labels) -> None:
    """Raise ValueError with a helpful message when fields do not fit together."""
    _check_choice("modality", labels.modality, MODALITIES)
    if labels.modality is not None:
        _check_choice(
            f"{labels.modality} region", labels.region, REGIONS_BY_MODALITY[labels.modality]
        )
        _check_choice(f"{labels.modality} view", labels.view, VIEWS_BY_MODALITY[labels.modality])
    else:
        _check_choice("region", labels.region, ALL_REGIONS)
    _check_choice("laterality", labels.laterality, LATERALITIES)
    _check_choice("sex", labels.sex, SEXES)
    _check_choice("MRI sequence", labels.sequence, MRI_SEQUENCES)
    _check_choice("CT window", labels.window, CT_WINDOWS)
    if labels.age is not None and not 0 <= labels.age <= 120:
        raise ValueError(f"age {labels.age} is outside 0-120 years")
    for finding in (f for f in labels.findings if f.side is not None):
        if labels.region in PAIRED_REGIONS:
            raise ValueError(
                f"the {finding.kind} on the {labels.region} takes the image's side "
                f"(laterality {labels.laterality!r}): leave the finding's side unset"
            )
        if labels.region is None:
            raise ValueError(
                f"a {finding.kind} with a side of its own needs a midline region (chest, "
                "pelvis, whole body); on a paired one (knee, wrist) give the image's laterality"
            )
