"""The targets of issue 5: what the built-in model should reach, and the bookkeeping that says
whether a measured value meets one.

Each target is a `Target`: a `name`, the measured `value`, the `threshold`, the sample count
`n`, how they compare (`comparison`) and whether it is `met`. A target that could not be
measured (no samples, no reader) has `value` None and is not met; its `note` says why. A
missed target is a finding about the model, never a reason to loosen its threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "COMPARISONS",
    "TARGET_MEASURES",
    "TARGET_SPECS",
    "Target",
    "TargetSpec",
    "json_clean",
    "lateral_within_ap",
    "rate_target",
    "target",
]

COMPARISONS = (">=", ">", "<=", "<", "==")


@dataclass(frozen=True)
class TargetSpec:
    """One target as the issue states it."""

    key: str
    name: str
    threshold: float
    comparison: str
    unit: str = "fraction"  # fraction, points, count, relative error


# What each target counts and on which images, for the report (docs/probe/README.md, "What it
# runs", has the prompts).
TARGET_MEASURES: dict[str, str] = {
    "fibula_present": "knee radiographs (Figure 1, AP, lateral, tumour prompts): the reader "
    "segments a fibula",
    "carpals_eight": "hand and wrist radiographs: the carpal stage counts 8 separate carpals",
    "lumbar_five": "lumbar spine radiographs (AP, lateral): 5 lumbar vertebra centres",
    "no_extra_digits": "hand radiographs whose metacarpals and phalanges were read: no extra "
    "metacarpal or phalanx",
    "region_in_field": "every radiograph with anatomy checks: the asked region's structures "
    "lie inside the field",
    "modality_as_asked": "every generated image: the reader's modality is the prompt's",
    "region_as_asked": "every generated image: the reader's region is the prompt's",
    "finding_present_when_asked": "pathology prompts: the reader sees the finding asked for",
    "finding_absent_when_not_asked": "each image and pathology kind its prompt does not ask "
    "for: the reader does not see it",
    "lateral_within_3_points_of_ap": "knees and lumbar spines passing every anatomy check: "
    "lateral views' rate no more than 3 points below AP views'",
    "breast_shadows_female": "PA chests of a woman: the reader segments breast shadows",
    "inpaint_structure_count": "Figure 3 (a central square refilled on phantoms): the reader's "
    "structure groups in the square equal the truth's (cases with none left out)",
    "inpaint_beats_biharmonic": "the same rate for the model minus biharmonic inpainting's",
    "knee_full_body_ratio": "a knee grown to a full body: femur/tibia length ratio against the "
    "same phantom's, the largest relative error",
    "knee_full_body_lumbar": "a knee grown to a full body: exactly 5 lumbar vertebrae",
    "memorization_flags": "every generated image against 48 phantoms with the prompts' labels: "
    "the share flagged as a copy",
}


# Issue 5, "Targets for the built-in model", in its order.
TARGET_SPECS: dict[str, TargetSpec] = {
    s.key: s
    for s in (
        TargetSpec("fibula_present", "fibula present in knee X-rays", 0.95, ">="),
        TargetSpec("carpals_eight", "8 separate carpals in hand/wrist X-rays", 0.90, ">="),
        TargetSpec("lumbar_five", "exactly 5 lumbar vertebrae", 0.95, ">="),
        TargetSpec("no_extra_digits", "no extra digits", 0.99, ">="),
        TargetSpec("region_in_field", "region fully in the field", 0.95, ">="),
        TargetSpec("modality_as_asked", "modality as asked", 0.98, ">="),
        TargetSpec("region_as_asked", "region as asked", 0.95, ">="),
        TargetSpec("finding_present_when_asked", "requested finding present", 0.90, ">="),
        TargetSpec("finding_absent_when_not_asked", "finding absent when not asked", 0.95, ">="),
        TargetSpec(
            "lateral_within_3_points_of_ap",
            "lateral within 3 points of AP (anatomy-check pass rate)",
            3.0,
            "<=",
            "points",
        ),
        TargetSpec("breast_shadows_female", "breast shadows in female chests", 0.95, ">="),
        TargetSpec(
            "inpaint_structure_count",
            "joint inpainting restores the right structure count",
            0.90,
            ">=",
        ),
        TargetSpec(
            "inpaint_beats_biharmonic",
            "joint inpainting beats biharmonic on structure count (rate difference)",
            0.0,
            ">",
            "points",
        ),
        TargetSpec(
            "knee_full_body_ratio",
            "knee to full body: femur/tibia ratio within 5 % of the truth (largest error)",
            0.05,
            "<=",
            "relative error",
        ),
        TargetSpec(
            "knee_full_body_lumbar",
            "knee to full body: 5 lumbar vertebrae (share of cases)",
            1.0,
            ">=",
        ),
        TargetSpec("memorization_flags", "memorization flags", 0.005, "<"),
    )
}


def _compare(value: float, threshold: float, comparison: str) -> bool:
    if comparison == ">=":
        return value >= threshold
    if comparison == ">":
        return value > threshold
    if comparison == "<=":
        return value <= threshold
    if comparison == "<":
        return value < threshold
    if comparison == "==":
        return value == threshold
    raise ValueError(f"comparison must be one of {COMPARISONS}, got {comparison!r}")


@dataclass
class Target:
    """A measured target. `met` is False when nothing was measured (value None or n = 0)."""

    key: str
    name: str
    value: float | None
    threshold: float
    n: int
    comparison: str = ">="
    unit: str = "fraction"
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ValueError(f"comparison must be one of {COMPARISONS}, got {self.comparison!r}")
        if self.n < 0:
            raise ValueError(f"sample count n must be >= 0, got {self.n}")

    @property
    def measured(self) -> bool:
        return self.value is not None and self.n > 0 and not math.isnan(self.value)

    @property
    def met(self) -> bool:
        if not self.measured:
            return False
        assert self.value is not None
        return _compare(self.value, self.threshold, self.comparison)

    def to_dict(self) -> dict[str, Any]:
        """The scores.json form: name, value, threshold, n, met, and the rest."""
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "n": self.n,
            "met": self.met,
            "comparison": self.comparison,
            "unit": self.unit,
            "note": self.note,
            **({"details": self.details} if self.details else {}),
        }


def target(key: str, value: float | None, n: int, note: str = "", **details: Any) -> Target:
    """The target `key` of `TARGET_SPECS` with a measured value."""
    spec = TARGET_SPECS[key]
    if not n and not note:
        note = "not measured: no samples"
    return Target(
        spec.key,
        spec.name,
        None if value is None else float(value),
        spec.threshold,
        int(n),
        spec.comparison,
        spec.unit,
        note,
        dict(details),
    )


def rate_target(key: str, successes: int, n: int, note: str = "", **details: Any) -> Target:
    """A target measured as a proportion successes / n (None when n = 0), with its Wilson
    95 % interval in the details."""
    from radsynth.evaluate.metrics.conditional import wilson_interval

    if n == 0:
        return target(key, None, 0, note or "not measured: no samples", **details)
    low, high = wilson_interval(successes, n)
    return target(
        key, successes / n, n, note, successes=successes, wilson_95=[low, high], **details
    )


def lateral_within_ap(
    ap_passed: int, ap_n: int, lateral_passed: int, lateral_n: int, note: str = ""
) -> Target:
    """'Lateral within 3 points of AP': the absolute difference, in percentage points, between
    the anatomy-check pass rates of lateral and AP (or PA) radiographs."""
    details = {
        "ap_passed": ap_passed,
        "ap_n": ap_n,
        "lateral_passed": lateral_passed,
        "lateral_n": lateral_n,
    }
    if ap_n == 0 or lateral_n == 0:
        return target(
            "lateral_within_3_points_of_ap",
            None,
            0,
            note or "not measured: no AP or no lateral radiographs",
            **details,
        )
    ap_rate, lateral_rate = ap_passed / ap_n, lateral_passed / lateral_n
    points = abs(lateral_rate - ap_rate) * 100.0
    if ap_rate == lateral_rate == 0.0 and not note:
        note = "met trivially: no AP and no lateral radiograph passed its anatomy checks"
    return target(
        "lateral_within_3_points_of_ap",
        points,
        min(ap_n, lateral_n),
        note,
        ap_rate=ap_rate,
        lateral_rate=lateral_rate,
        **details,
    )


def json_clean(value: Any) -> Any:
    """JSON-friendly: numpy scalars to Python, inf/nan kept as float (json writes Infinity)."""
    if isinstance(value, dict):
        return {str(k): json_clean(v) for k, v in value.items() if not str(k).endswith("_image")}
    if isinstance(value, list | tuple):
        return [json_clean(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
