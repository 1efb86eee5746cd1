"""Anatomy checks: the study's judgements by eye ("the fibula was missing", "carpal bones
fused", "the number of lumbar vertebrae inconsistent") as pass/fail facts about one radiograph.

The checks read a `StructureMap` (a mask per structure group and the centre of each countable
bone) that comes either from the reader (`read_anatomy`, any image) or from a phantom's own
masks (`truth_structure_map`, the answer key), so every check is validated on phantoms whose
truth is known, including variants with bones removed, duplicated or fused
(`radsynth.phantoms.variants`).

Counts apply to frontal views (AP/PA), where the bones of a hand or the ribs do not hide each
other; lumbar vertebrae are counted in lateral views too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from radsynth.evaluate.reader.groups import COUNTED, GROUPS, group_instances, instance_points
from radsynth.evaluate.reader.inference import StructureMap

# Structure groups every radiograph of a region shows.
EXPECTED_PRESENT: dict[str, tuple[str, ...]] = {
    "head": ("skull",),
    "chest": ("lungs", "ribs", "clavicle", "thoracic_vertebrae"),
    "shoulder": ("humerus", "clavicle", "scapula"),
    "abdomen": ("lumbar_vertebrae",),
    "pelvis": ("pelvis", "femur", "sacrum"),
    "hand": ("radius", "carpals", "metacarpals", "phalanges"),
    "wrist": ("radius", "ulna", "carpals"),
    "knee": ("femur", "tibia", "fibula", "patella"),
    "ankle": ("tibia", "fibula", "tarsals"),
    "cervical_spine": ("cervical_vertebrae",),
    "thoracic_spine": ("thoracic_vertebrae", "ribs"),
    "lumbar_spine": ("lumbar_vertebrae", "sacrum"),
    "full_body": ("skull", "femur", "tibia", "pelvis"),
}
# (region, group) -> number of bones a normal frontal radiograph shows.
EXPECTED_COUNTS: dict[tuple[str, str], int] = {
    ("hand", "carpals"): 8,
    ("hand", "metacarpals"): 5,
    ("hand", "phalanges"): 14,
    ("wrist", "carpals"): 8,
    ("lumbar_spine", "lumbar_vertebrae"): 5,
    ("chest", "ribs"): 24,
}
COUNTED_IN_LATERAL = frozenset({"lumbar_vertebrae"})
# Groups that must lie wholly inside the collimated field for the region to count as imaged.
INSIDE_FIELD: dict[str, tuple[str, ...]] = {
    "hand": ("carpals", "metacarpals", "phalanges"),
    "wrist": ("carpals",),
    "knee": ("patella",),
    "chest": ("lungs",),
    "lumbar_spine": ("lumbar_vertebrae",),
    "head": ("skull",),
}
MIN_AREA_FRACTION = 2e-4  # a group smaller than this share of the image is absent (noise)
BORDER_PX = 2  # a structure touches the border when this many of its pixels lie on it
# Each bone's share of its group's summed bone area on a normal frontal phantom, largest first
# (the same for both sexes and every body size within 0.01). A count one short is told apart
# as fusion or absence by which of the two explains the observed shares better.
NORMAL_SHARES: dict[str, tuple[float, ...]] = {
    "carpals": (0.181, 0.176, 0.146, 0.139, 0.130, 0.097, 0.082, 0.050),
    "metacarpals": (0.227, 0.215, 0.194, 0.183, 0.181),
    "phalanges": (
        0.128,
        0.121,
        0.114,
        0.104,
        0.096,
        0.067,
        0.066,
        0.065,
        0.058,
        0.046,
        0.038,
        0.035,
        0.033,
        0.032,
    ),
    "lumbar_vertebrae": (0.214, 0.209, 0.196, 0.191, 0.190),
}
BREAST_AREA_FRACTION = 0.01  # breast shadows: at least 1 % of a frontal chest radiograph


@dataclass
class CheckResult:
    """One check: what was measured, what a normal radiograph shows, and whether they agree
    (`passed` is None when there is nothing to compare, e.g. breast shadows of unknown sex)."""

    name: str
    value: Any
    expected: Any
    passed: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def truth_structure_map(masks: Mapping[str, np.ndarray]) -> StructureMap:
    """The answer key: groups and bone centres from a phantom's per-structure masks (each
    named bone one instance; a variant's "_extra" copy a bone of its own)."""
    shape = next(iter(masks.values())).shape
    instances = group_instances(masks)
    group_masks = {g: np.zeros(shape, dtype=bool) for g in GROUPS}
    for group, bones in instances.items():
        for mask in bones.values():
            group_masks[group] |= mask
    points = instance_points(masks)
    centres = {g: [(int(round(r)), int(round(c))) for r, c, _ in points[g]] for g in COUNTED}
    areas = {
        g: [int(m.sum()) for _, m in sorted(instances.get(g, {}).items()) if m.sum() >= 2]
        for g in COUNTED
    }
    return StructureMap(group_masks, centres, areas)


def instance_areas(mask: np.ndarray, centres: list[tuple[int, int]]) -> list[int]:
    """Pixels of a group mask nearest to each bone centre (a Voronoi split of the mask)."""
    if not centres or not mask.any():
        return [0 for _ in centres]
    rows, cols = np.nonzero(mask)
    points = np.array(centres, dtype=float)
    nearest = np.argmin(
        (rows[:, None] - points[None, :, 0]) ** 2 + (cols[:, None] - points[None, :, 1]) ** 2,
        axis=1,
    )
    return [int(v) for v in np.bincount(nearest, minlength=len(centres))]


def _distance(observed: np.ndarray, candidate: list[float]) -> float:
    # While more than one bone is unexplained, compare the largest shares only.
    ranked = np.sort(candidate)[::-1][: len(observed)]
    return float(np.abs(observed[: len(ranked)] - ranked).sum())


def fusion_explains(areas: list[int], normal: tuple[float, ...]) -> bool:
    """True when `areas` (one per bone found, fewer than normal) look like the normal bones
    with some merged rather than with some missing: greedily, each missing bone is explained
    by the merge or the removal that brings the normal shares closest to the observed ones."""
    total = float(sum(areas))
    if total <= 0 or not 0 < len(areas) < len(normal):
        return False
    observed = np.sort(np.asarray(areas, dtype=float) / total)[::-1]
    profile, merged = list(normal), False
    while len(profile) > len(areas):
        options: list[tuple[float, bool, list[float]]] = []
        for i in range(len(profile)):
            rest = profile[:i] + profile[i + 1 :]
            removed = [v / sum(rest) for v in rest]
            options.append((_distance(observed, removed), False, removed))
            for j in range(i + 1, len(profile)):
                joined = [v for k, v in enumerate(profile) if k not in (i, j)]
                joined.append(profile[i] + profile[j])
                options.append((_distance(observed, joined), True, joined))
        _, was_merge, profile = min(options, key=lambda o: o[0])
        merged = merged or was_merge
    return merged


def _touches_border(mask: np.ndarray) -> bool:
    border = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    return int(border.sum()) >= BORDER_PX


def _present(mask: np.ndarray) -> bool:
    # Speckle is not a bone: the largest connected piece must be large enough.
    if mask.sum() < MIN_AREA_FRACTION * mask.size:
        return False
    labelled, count = ndimage.label(mask)
    largest = np.bincount(labelled.ravel())[1:].max() if count else 0
    return bool(largest >= MIN_AREA_FRACTION * mask.size)


def _count_checks(
    smap: StructureMap,
    region: str,
    view: str,
    counts: Mapping[tuple[str, str], int] = EXPECTED_COUNTS,
) -> list[CheckResult]:
    results, extra, fused = [], [], []
    for (count_region, group), expected in counts.items():
        if count_region != region or (view == "lateral" and group not in COUNTED_IN_LATERAL):
            continue
        count = len(smap.centres.get(group, []))
        results.append(CheckResult(f"{group}_count", count, expected, count == expected))
        if count > expected:
            extra.append(group)
        elif 0 < count < expected:
            areas = (smap.instance_areas or {}).get(group) or instance_areas(
                smap.masks[group], smap.centres[group]
            )
            if group in NORMAL_SHARES and fusion_explains(areas, NORMAL_SHARES[group]):
                fused.append(group)
    if results:
        results.append(CheckResult("extra_bones", extra, [], not extra))
        results.append(CheckResult("fused_bones", fused, [], not fused))
    return results


def check_anatomy(
    smap: StructureMap, region: str, view: str, sex: str | None = None
) -> dict[str, CheckResult]:
    """All checks that apply to a radiograph of `region` in `view` ("ap", "pa", "lateral"):
    presence of the region's structures, bone counts, extra and fused bones, the region inside
    the field, and breast shadows on frontal chest radiographs (expected when `sex` is female)."""
    if region not in EXPECTED_PRESENT:
        raise ValueError(
            f"no anatomy checks for region {region!r}; use one of {list(EXPECTED_PRESENT)}"
        )
    results = [
        CheckResult(
            f"{group}_present", _present(smap.masks[group]), True, _present(smap.masks[group])
        )
        for group in EXPECTED_PRESENT[region]
    ]
    results += _count_checks(smap, region, view)
    if region in INSIDE_FIELD:
        cut = [g for g in INSIDE_FIELD[region] if _touches_border(smap.masks[g])]
        missing = [g for g in INSIDE_FIELD[region] if not _present(smap.masks[g])]
        results.append(
            CheckResult("in_field", not cut and not missing, True, not cut and not missing)
        )
    if region == "chest" and view != "lateral":
        fraction = float(smap.masks["breasts"].mean())
        seen = fraction >= BREAST_AREA_FRACTION
        expected = None if sex is None else sex == "female"
        results.append(
            CheckResult(
                "breast_shadows", seen, expected, None if expected is None else seen == expected
            )
        )
    return {r.name: r for r in results}


# What the reader's body stage checks on a frontal whole-body radiograph.
BODY_STAGE_PRESENT = ("femur", "tibia", "pelvis")
BODY_STAGE_COUNTS = {("full_body", "lumbar_vertebrae"): 5}


def body_checks(smap: StructureMap, view: str = "ap") -> dict[str, CheckResult]:
    """Checks of a frontal whole-body radiograph as the reader's body stage reads it
    (`Reader.read_body`): femur, tibia and pelvis present, 5 lumbar vertebrae, and extra or
    fused lumbar vertebrae."""
    present = {group: _present(smap.masks[group]) for group in BODY_STAGE_PRESENT}
    results = [CheckResult(f"{g}_present", seen, True, seen) for g, seen in present.items()]
    results += _count_checks(smap, "full_body", view, BODY_STAGE_COUNTS)
    return {r.name: r for r in results}


def read_anatomy(
    image: np.ndarray, region: str, view: str, sex: str | None = None, reader: Any = None
) -> dict[str, CheckResult]:
    """Run the checks on any radiograph through the reader (the shipped one by default). A
    frontal whole-body radiograph read by a reader with a body stage gets its femur, tibia
    and pelvis and its lumbar count from the stage (`body_checks`; an image wider than a
    standing body is read in its central strip), the rest from the reader."""
    from radsynth.evaluate.reader.inference import load_reader

    reader = reader or load_reader()
    checks = check_anatomy(reader.structures(image)[0], region, view, sex)
    if region == "full_body" and view != "lateral" and getattr(reader, "body", None) is not None:
        from radsynth.evaluate.reader.body import standing_strip

        checks.update(body_checks(reader.read_body(standing_strip(image))[0], view))
    return checks


def bone_length(mask: np.ndarray) -> int:
    """Vertical extent (rows) of the largest connected piece of a bone group's mask: the
    length of a long bone on a frontal radiograph. 0 when the mask is empty or specks only."""
    mask = np.asarray(mask, dtype=bool)
    if mask.sum() < MIN_AREA_FRACTION * mask.size:
        return 0
    labelled, count = ndimage.label(mask)
    if count == 0:
        return 0
    largest = int(np.bincount(labelled.ravel())[1:].argmax()) + 1
    rows = np.flatnonzero((labelled == largest).any(axis=1))
    return int(rows[-1] - rows[0] + 1)


def femur_tibia(smap: StructureMap) -> dict[str, Any]:
    """Femur and tibia lengths (px of the map) and their ratio (None when a bone is missing)."""
    femur, tibia = bone_length(smap.masks["femur"]), bone_length(smap.masks["tibia"])
    return {"femur_px": femur, "tibia_px": tibia, "ratio": femur / tibia if tibia else None}
