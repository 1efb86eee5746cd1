"""Conditional accuracy: does a reader see in the generated images what the prompts asked for?

For each image, the labels asked for come from its prompt (`radsynth.vocabulary.parse_prompt`)
or are given as `Labels`; the labels seen come from a reader (its predictions, or a callable
that predicts them from the images). Scores, each a proportion with its Wilson 95 % interval:

- per label field (modality, region, view, laterality, sex): accuracy over the images whose
  prompt specified that field (a field the prompt left open is not scored);
- per finding kind: present-when-asked, the share of images asking for the kind in which the
  reader finds it, and absent-when-not-asked, the share of images not asking for it in which the
  reader does not find it; and both pooled over all finding kinds;
- per finding kind: side-as-asked, among the images asking for the kind on one side of the
  patient ("left pleural effusion", "fracture of the left clavicle" on a chest) in which the
  reader finds it, the share where the reader places it on that side (its lesion map, on
  frontal views; see `radsynth.evaluate.reader.inference.lesion_sides`), and pooled. A kind
  asked on both sides in one image is not scored for side.

Wilson score interval (Wilson, JASA 1927) for k successes in n trials, p = k / n, z = 1.96:

    (p + z^2 / 2n  +-  z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from radsynth.vocabulary import FINDING_KINDS, Labels, parse_prompt
from radsynth.vocabulary.labels import side_named_by

__all__ = [
    "LABEL_FIELDS",
    "ConditionalAccuracy",
    "Proportion",
    "conditional_accuracy",
    "wilson_interval",
]

LABEL_FIELDS: tuple[str, ...] = ("modality", "region", "view", "laterality", "sex")
Z_95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (formula in the module doc)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"a proportion needs 0 <= successes <= n and n > 0, got {successes}/{n}")
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # k = 0 and k = n reach exactly 0 and 1 (the formula only up to rounding).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Proportion:
    """k of n, the rate k / n and its Wilson 95 % interval (low, high)."""

    successes: int
    n: int
    rate: float
    low: float
    high: float

    @classmethod
    def of(cls, successes: int, n: int) -> Proportion:
        low, high = wilson_interval(successes, n)
        return cls(successes, n, successes / n, low, high)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


LabelsLike = Labels | str | Mapping[str, Any]
FINDING_PROBABILITY_THRESHOLD = 0.5  # a reader's finding probability at or above it counts


def as_labels(value: LabelsLike) -> Labels:
    """A `Labels` from Labels, a prompt (parsed strictly) or a dict as in `Labels.to_dict`."""
    if isinstance(value, Labels):
        return value
    if isinstance(value, str):
        return parse_prompt(value)
    if isinstance(value, Mapping):
        return Labels.from_dict(dict(value))
    raise TypeError(f"expected Labels, a prompt string or a labels dict, got {type(value)!r}")


def _finding_sides(findings: Iterable[Any]) -> dict[str, str | None]:
    """{kind: the patient's side} of findings (Finding objects or dicts as in
    `Finding.to_dict`): a finding's own side or its site's; None for a kind with no side, or
    asked on both sides."""
    sides: dict[str, set[str | None]] = {}
    for finding in findings:
        if isinstance(finding, str):
            kind, site, own = finding, None, None
        elif isinstance(finding, Mapping):
            kind, site, own = finding["kind"], finding.get("site"), finding.get("side")
        else:
            kind, site, own = finding.kind, finding.site, finding.side
        sides.setdefault(kind, set()).add(own or side_named_by(site))
    return {kind: next(iter(found)) if len(found) == 1 else None for kind, found in sides.items()}


def _read_labels(
    value: LabelsLike,
) -> tuple[dict[str, Any], frozenset[str], dict[str, str | None] | None]:
    """(fields, finding kinds, {kind: side} or None if not known) of asked or predicted
    labels.

    Besides what `as_labels` takes, a prediction may be a reader record: label fields as keys
    (others ignored, the fields need not fit together), and `findings` either a list (of kinds
    or finding dicts) or a {kind: probability} dict, a kind counting as seen at probability
    >= FINDING_PROBABILITY_THRESHOLD; its sides are its `finding_sides` ({kind: side, None
    where it read no one side}; a kind it has no side entry for, as every kind of a record
    without them, is left out of side-as-asked).
    """
    if isinstance(value, Mapping):
        findings = value.get("findings") or ()
        if isinstance(findings, Mapping):
            kinds = {k for k, p in findings.items() if p >= FINDING_PROBABILITY_THRESHOLD}
            read = value.get("finding_sides")
            sides = None if read is None else dict(read)
        else:
            kinds = {f if isinstance(f, str) else f["kind"] for f in findings}
            sides = _finding_sides(findings)
        return {name: value.get(name) for name in LABEL_FIELDS}, frozenset(kinds), sides
    labels = as_labels(value)
    fields = {name: getattr(labels, name) for name in LABEL_FIELDS}
    return fields, frozenset(labels.finding_kinds()), _finding_sides(labels.findings)


def _proportion_or_none(successes: int, n: int) -> Proportion | None:
    return Proportion.of(successes, n) if n else None


def conditional_accuracy(
    asked: Sequence[LabelsLike],
    predicted: Sequence[LabelsLike],
    kinds: Iterable[str] = FINDING_KINDS,
) -> dict[str, Any]:
    """Score predicted against asked labels, image by image (see the module doc).

    `asked`: prompts, Labels or label dicts; `predicted`: the same or reader records (see
    `_read_labels`). Returns {"n": images, "fields": {field: Proportion},
    "present_when_asked": {kind: Proportion}, "absent_when_not_asked": {kind: Proportion},
    "pooled_present_when_asked", "pooled_absent_when_not_asked": Proportion or None,
    "side_as_asked": {kind: Proportion}, "pooled_side_as_asked": Proportion or None}; entries
    with no images to score are left out.
    """
    if len(asked) != len(predicted):
        raise ValueError(f"{len(asked)} asked labels but {len(predicted)} predictions")
    wanted = [_read_labels(a) for a in asked]
    seen = [_read_labels(p) for p in predicted]
    pairs = list(zip(wanted, seen, strict=True))
    fields: dict[str, Proportion] = {}
    for name in LABEL_FIELDS:
        scored = [w[0][name] == s[0][name] for w, s in pairs if w[0][name] is not None]
        if scored:
            fields[name] = Proportion.of(sum(scored), len(scored))
    present: dict[str, Proportion] = {}
    absent: dict[str, Proportion] = {}
    hits = asked_n = clear = not_asked_n = 0
    for kind in kinds:
        when_asked = [kind in s[1] for w, s in pairs if kind in w[1]]
        when_not = [kind not in s[1] for w, s in pairs if kind not in w[1]]
        if when_asked:
            present[kind] = Proportion.of(sum(when_asked), len(when_asked))
        if when_not:
            absent[kind] = Proportion.of(sum(when_not), len(when_not))
        hits, asked_n = hits + sum(when_asked), asked_n + len(when_asked)
        clear, not_asked_n = clear + sum(when_not), not_asked_n + len(when_not)
    sided: dict[str, Proportion] = {}
    right_side = sided_n = 0
    for kind in kinds:
        placed = [
            s[2][kind] == w[2][kind]
            for w, s in pairs
            if w[2] is not None
            and w[2].get(kind) is not None  # asked on one side
            and s[2] is not None
            and kind in s[2]
            and kind in s[1]  # seen, its side read
        ]
        if placed:
            sided[kind] = Proportion.of(sum(placed), len(placed))
        right_side, sided_n = right_side + sum(placed), sided_n + len(placed)
    return {
        "n": len(pairs),
        "fields": fields,
        "present_when_asked": present,
        "absent_when_not_asked": absent,
        "pooled_present_when_asked": _proportion_or_none(hits, asked_n),
        "pooled_absent_when_not_asked": _proportion_or_none(clear, not_asked_n),
        "side_as_asked": sided,
        "pooled_side_as_asked": _proportion_or_none(right_side, sided_n),
    }


Reader = Callable[[np.ndarray], Sequence[LabelsLike]]


class ConditionalAccuracy:
    """Accumulating conditional accuracy.

    `update(asked, predicted)` adds labels asked for (prompts, Labels or dicts) and the reader's
    predictions for the same images; give `reader` (images (B, H, W) -> predictions) to the
    constructor to pass images instead: `update(asked, images=batch)`.
    """

    def __init__(self, reader: Reader | None = None, kinds: Iterable[str] = FINDING_KINDS):
        self.reader = reader
        self.kinds = tuple(kinds)
        self.reset()

    def reset(self) -> None:
        """Forget all images."""
        self._asked: list[LabelsLike] = []
        self._predicted: list[LabelsLike] = []

    def update(
        self,
        asked: Sequence[LabelsLike],
        predicted: Sequence[LabelsLike] | None = None,
        images: np.ndarray | None = None,
    ) -> None:
        """Add one batch: asked labels and either predictions or images for the reader."""
        if predicted is None:
            if self.reader is None or images is None:
                raise ValueError("give predictions, or images together with a reader")
            predicted = self.reader(images)
        if len(asked) != len(predicted):
            raise ValueError(f"{len(asked)} asked labels but {len(predicted)} predictions")
        self._asked += list(asked)
        self._predicted += list(predicted)

    def compute(self) -> dict[str, Any]:
        """The scores of `conditional_accuracy` over everything added so far."""
        if not self._asked:
            raise ValueError("ConditionalAccuracy has no images: call update first")
        return conditional_accuracy(self._asked, self._predicted, self.kinds)
