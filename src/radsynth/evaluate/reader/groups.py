"""What the reader predicts: label heads, structure groups and countable instances.

Phantom masks are named per structure ("left_capitate", "l3", "right_rib_7",
"left_metacarpal_5_distal_fragment"). The reader segments *groups* of them (all carpals, all
lumbar vertebrae, both lungs), because a generated image has no names; for the groups that the
anatomy checks count (carpals, digits, vertebrae, ribs) it also predicts a centre heat map with
one Gaussian peak per bone, so that bones touching in projection can still be counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from radsynth.vocabulary.labels import (
    ALL_REGIONS,
    FINDING_KINDS,
    MODALITIES,
    SEXES,
    VIEWS_BY_MODALITY,
)

# Closed label sets, one classification head each ("none": a midline region has no side).
VIEWS: tuple[str, ...] = tuple(dict.fromkeys(v for vs in VIEWS_BY_MODALITY.values() for v in vs))
LATERALITY_CLASSES: tuple[str, ...] = ("left", "right", "none")
HEADS: dict[str, tuple[str, ...]] = {
    "modality": MODALITIES,
    "region": ALL_REGIONS,
    "view": VIEWS,
    "laterality": LATERALITY_CLASSES,
    "sex": SEXES,
}
FINDINGS: tuple[str, ...] = FINDING_KINDS  # multi-label head

_SIDE = r"(?:(?:left|right)_)?"
_CARPALS = "scaphoid|lunate|triquetrum|pisiform|trapezium|trapezoid|capitate|hamate"
_TARSALS = "calcaneus|talus|navicular|cuboid|medial_cuneiform|intermediate_cuneiform|" + (
    "lateral_cuneiform"
)
# Group -> pattern of the (side-stripped, fragment-stripped) structure names it unites.
GROUP_PATTERNS: dict[str, str] = {
    "femur": "femur",
    "tibia": "tibia",
    "fibula": "fibula",
    "patella": "patella",
    "humerus": "humerus",
    "radius": "radius",
    "ulna": "ulna",
    "carpals": _CARPALS,
    "metacarpals": r"metacarpal(?:_\d)?",
    "phalanges": r"(?:proximal|middle|distal)_phalanx(?:_\d)?",
    "clavicle": "clavicle",
    "scapula": "scapula",
    "ribs": r"rib(?:_\d+)?",
    "cervical_vertebrae": r"c\d",
    "thoracic_vertebrae": r"t\d+",
    "lumbar_vertebrae": r"l\d",
    "sacrum": "sacrum|coccyx",
    "pelvis": "pelvis",
    "skull": "skull|skull_base|facial_bones|mandible|tooth_upper|tooth_lower",
    "tarsals": _TARSALS,
    "foot_digits": r"metatarsal(?:_\d)?|toe_(?:proximal|middle|distal)_phalanx(?:_\d)?",
    "lungs": "lung",
    "heart": "heart",
    "breasts": "breast",
    "liver": "liver",
    "kidneys": "kidney",
    "brain": "cerebrum|cerebellum|brainstem|white_matter",
}
GROUPS: tuple[str, ...] = tuple(GROUP_PATTERNS)
# Groups whose bones are counted: each named bone is one instance with one centre peak.
COUNTED: tuple[str, ...] = (
    "carpals",
    "metacarpals",
    "phalanges",
    "lumbar_vertebrae",
    "thoracic_vertebrae",
    "ribs",
)
# Parts of one bone that findings or variants split off or copy keep the bone's instance
# ("_distal_fragment"); a deliberate copy ("_extra", see `radsynth.phantoms.variants`) is a
# bone of its own.
_FRAGMENT = re.compile(r"_(?:distal|proximal)_fragment$")
_MATCHERS = {
    group: re.compile(rf"{_SIDE}(?:{pattern})(?:_extra\d*)?")
    for group, pattern in GROUP_PATTERNS.items()
}


def instance_name(structure: str) -> str:
    """The bone a mask belongs to: fracture fragments belong to their bone."""
    return _FRAGMENT.sub("", structure)


def group_of(structure: str) -> str | None:
    """The group a phantom structure belongs to, or None ("left_capitate" -> "carpals")."""
    name = instance_name(structure)
    for group, matcher in _MATCHERS.items():
        if matcher.fullmatch(name):
            return group
    return None


def group_instances(masks: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Per group, the mask of each named bone (fragments merged into their bone)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, mask in masks.items():
        group = group_of(name)
        if group is None:
            continue
        bones = out.setdefault(group, {})
        key = instance_name(name)
        bones[key] = bones[key] | mask if key in bones else mask.astype(bool)
    return out


def instance_point(
    group: str, key: str, mask: np.ndarray, bones: Mapping[str, np.ndarray]
) -> tuple[float, float]:
    """Where a bone's centre peak goes (row, col, pixels): the centroid of its mask, moved to
    the nearest mask pixel when the centroid falls outside (a curved rib). A rib's point is the
    rib pixel nearest to its own thoracic vertebra when that is visible, so the twelve peaks of
    a side sit one per level along the spine instead of crowding where the arcs cross."""
    rows, cols = np.nonzero(mask)
    target = np.array([rows.mean(), cols.mean()])
    if group == "ribs":
        level = re.search(r"rib_(\d+)", key)
        vertebra = bones.get(f"t{level.group(1)}") if level else None
        if vertebra is not None and vertebra.any():
            vr, vc = np.nonzero(vertebra)
            target = np.array([vr.mean(), vc.mean()])
    r0, c0 = int(round(target[0])), int(round(target[1]))
    if group != "ribs" and 0 <= r0 < mask.shape[0] and 0 <= c0 < mask.shape[1] and mask[r0, c0]:
        return float(target[0]), float(target[1])
    nearest = int(np.argmin((rows - target[0]) ** 2 + (cols - target[1]) ** 2))
    return float(rows[nearest]), float(cols[nearest])


def segmentation_target(masks: Mapping[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Boolean (len(GROUPS), H, W): the union of each group's structure masks."""
    target = np.zeros((len(GROUPS), *shape), dtype=bool)
    for group, bones in group_instances(masks).items():
        index = GROUPS.index(group)
        for mask in bones.values():
            target[index] |= mask
    return target


def instance_points(masks: Mapping[str, np.ndarray]) -> dict[str, list[tuple[float, float, float]]]:
    """Per counted group, one (row, col, radius px) per visible bone."""
    instances = group_instances(masks)
    vertebrae = instances.get("thoracic_vertebrae", {})
    out: dict[str, list[tuple[float, float, float]]] = {}
    for group in COUNTED:
        points = []
        bones = instances.get(group, {})
        coverage = sum((m.astype(np.int16) for m in bones.values()), np.int16(0))
        for key, mask in sorted(bones.items()):
            area = int(mask.sum())
            if area < 2:
                continue
            # A bone projected over a neighbour (pisiform over triquetrum) is marked where it
            # shows alone, so the two peaks do not merge.
            alone = mask & (coverage == 1)
            seen = alone if alone.sum() >= 0.3 * area else mask
            row, col = instance_point(group, key, seen, vertebrae)
            points.append((row, col, float(np.sqrt(area / np.pi))))
        out[group] = points
    return out


def heatmap_target(
    points: Mapping[str, list[tuple[float, float, float]]], shape: tuple[int, int]
) -> np.ndarray:
    """Float32 (len(COUNTED), H, W) in [0, 1]: a Gaussian peak of 1 at each bone's point,
    its width a quarter of the bone's equivalent radius (1-3 px), so neighbours stay apart."""
    heat = np.zeros((len(COUNTED), *shape), dtype=np.float32)
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    cols = np.arange(shape[1], dtype=np.float32)[None, :]
    for index, group in enumerate(COUNTED):
        for exact_row, exact_col, radius in points.get(group, []):
            # On whole pixels, so every peak reaches exactly 1 (the focal loss's positives).
            row, col = round(exact_row), round(exact_col)
            sigma = float(np.clip(0.25 * radius, 1.0, 3.0))
            peak = np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma**2))
            np.maximum(heat[index], peak, out=heat[index])
    return heat


_LESION_MATCHERS = {kind: re.compile(rf"finding_{kind}(?:_[a-z0-9_]+)?") for kind in FINDINGS}


def lesion_target(masks: Mapping[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Boolean (len(FINDINGS), H, W): where each finding kind lies ("finding_fracture",
    "finding_plate_and_screws_plate", ... united per kind; see `radsynth.phantoms.findings`)."""
    target = np.zeros((len(FINDINGS), *shape), dtype=bool)
    for name, mask in masks.items():
        if not name.startswith("finding_"):
            continue
        for index, kind in enumerate(FINDINGS):
            if _LESION_MATCHERS[kind].fullmatch(name):
                target[index] |= mask
                break
    return target


def label_targets(labels: Mapping[str, object]) -> dict[str, int | np.ndarray]:
    """Class indices per head and a 0/1 findings vector from a `Labels.to_dict()` record."""
    out: dict[str, int | np.ndarray] = {}
    for head, classes in HEADS.items():
        value = labels.get(head)
        out[head] = classes.index("none" if value is None else str(value))
    kinds = {str(f["kind"]) for f in labels.get("findings", []) or []}  # type: ignore[attr-defined]
    out["findings"] = np.array([kind in kinds for kind in FINDINGS], dtype=np.float32)
    return out
