"""The reader's finding stage: a network of its own that looks for pathology on radiographs.

The reader learns findings beside everything else, from cases in which each kind is rare (a
finding in about a third of the cases, spread over thirteen kinds and every region): on the
phantoms that the probe draws for its pathology prompts it gives a fracture of the distal
radius a probability of 0.06-0.24 against 0.07-0.13 for wrists without one, a consolidation
0.00-0.12 against 0.00-0.06 and a bone tumour of the femur at most 0.01, although all three are
plain to the eye. It sees haemorrhages and pleural effusions.

The finding stage reads a radiograph at `SIZE` px (the reader: 160) with a network of the
reader's kind (`ReaderNet` with a lesion map and a finding logit per kind of `STAGE_KINDS`, no
label heads, no groups), trained on radiographs in which findings are common: half of the cases
are drawn with one of the stage's kinds, placed in a region where it occurs, 3 in 10 with the
same regions without it and 2 in 10 are ordinary phantom radiographs (devices and other
findings included). A kind counts as shown where its lesion mask covers at least `MIN_AREA`
pixels of the 256 px radiograph, so a finding placed out of the field is not taught as seen
(the shipped stage's training cases were drawn before the phantoms placed an ankle's fracture
on the distal tibia or fibula: none of their 29 planned ankle fractures shows one). Every case
is mirrored at random and its contrast, sharpness and noise changed, so that generated images
read alike.

Which cases a stage learns from is its plan (`PLANS`): "all" (the stage above, every region,
kind first) or "extremity" (fractures of the hand, wrist, knee and ankle and bone tumours of
the knee and ankle, each pair alike, 2 in 5 cases with the finding, 2 in 5 without, 1 in 5
ordinary radiographs), which learns what the kind-first mix, with about one planned fracture
of each of the eight fracture regions in 100 cases, does not (it is not shipped: docs/reader.md).

`Reader.predict` takes a stage's probabilities in place of the reader's on images that the
reader reads as radiographs (of the stage's regions, for a stage that has them: "regions" in
its config.json), for the kinds the stage reads better than the reader without it on held-out
cases (`kinds_it_reads`, listed under "reads"); a reader folder's `findings/` stage answers
first, then its `findings_<name>/` stages, each over the ones before. Other modalities and
kinds keep the reader's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from radsynth.evaluate.metrics.conditional import FINDING_PROBABILITY_THRESHOLD
from radsynth.evaluate.reader.case_cache import build_cases
from radsynth.evaluate.reader.groups import FINDINGS, lesion_target
from radsynth.evaluate.reader.model import ReaderConfig, ReaderNet
from radsynth.evaluate.reader.training import (
    TrainStageConfig,
    jitter_contrast,
    mask_loss,
    train_stage,
)
from radsynth.vocabulary.labels import XRAY_REGIONS, Finding

# The radiograph pathology kinds; intracranial haemorrhage is a CT finding and stays the reader's.
STAGE_KINDS: tuple[str, ...] = (
    "fracture",
    "bone_tumour",
    "lung_nodule",
    "consolidation",
    "pleural_effusion",
    "joint_effusion",
)
SIZE = 192  # px the stage reads (the reader: 160); a multiple of 16
RENDER_SIZE = 256  # px of the rendered training radiographs (the built-in model's size)
MIN_AREA = 4  # px of a 256 px radiograph a finding's mask must cover to count as shown
CASE_MIX = {"with_finding": 0.5, "without": 0.3, "ordinary": 0.2}
SPLITS = {"train": 0, "heldout": 1}


def finding_config(widths: tuple[int, ...] = (16, 32, 64, 128), size: int = SIZE) -> ReaderConfig:
    """The finding network: the reader's architecture with a lesion map and a finding logit
    per stage kind, and nothing else."""
    return ReaderConfig(
        size=size,
        widths=widths,
        heads={},
        findings=STAGE_KINDS,
        groups=(),
        counted=(),
        lesion_maps=True,
    )


# -- training data ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StagePlan:
    """How a finding stage's cases are drawn and where the stage answers.

    `pairs` None: each planned case draws a kind of `kinds`, then a region where it occurs;
    otherwise it draws one of the (kind, region) `pairs`, each equally often. `mix`: the share
    of cases with the finding, of the same regions without it and of ordinary radiographs.
    `regions` None: the stage reads every radiograph; otherwise only those the reader places
    in one of them (saved under "regions" in the stage's config.json)."""

    kinds: tuple[str, ...]
    mix: dict[str, float]
    pairs: tuple[tuple[str, str], ...] | None = None
    regions: tuple[str, ...] | None = None


EXTREMITY_REGIONS = ("hand", "wrist", "knee", "ankle")
PLANS: dict[str, StagePlan] = {
    # The shipped stage: every radiograph, kind first.
    "all": StagePlan(STAGE_KINDS, CASE_MIX),
    # Fractures of the hand, wrist, knee and ankle and bone tumours of the knee and ankle: in the
    # kind-first mix a hand's or ankle's fracture is planned in about one case in 100 and the
    # first stage reads few of them (docs/reader.md).
    "extremity": StagePlan(
        ("fracture", "bone_tumour"),
        {"with_finding": 0.4, "without": 0.4, "ordinary": 0.2},
        pairs=tuple(("fracture", r) for r in EXTREMITY_REGIONS)
        + (("bone_tumour", "knee"), ("bone_tumour", "ankle")),
        regions=EXTREMITY_REGIONS,
    ),
}


def stage_plan(name: str) -> StagePlan:
    """The plan called `name` in `PLANS`; an unknown name is a ValueError naming the plans."""
    if name not in PLANS:
        raise ValueError(f"unknown finding-stage plan {name!r}; plans: {', '.join(PLANS)}")
    return PLANS[name]


class PlannedCase(NamedTuple):
    """One planned case: its phantom seed, mix entry, stage kind and region (None for an
    ordinary radiograph, whose findings and region the phantoms draw) and, with the finding,
    the finding asked for (site and qualifier drawn among the region's, or left to the
    phantoms)."""

    case_seed: int
    mix: str
    kind: str | None
    region: str | None
    finding: Finding | None


def _drawn_finding(kind: str, region: str, rng: np.random.Generator) -> Finding:
    from radsynth.vocabulary import FINDINGS_BY_REGION, qualifiers_for

    sites = FINDINGS_BY_REGION[("xray", region)][kind]
    site = str(rng.choice(sites)) if sites and rng.random() < 0.7 else None
    options = qualifiers_for(region, kind)
    quals = (str(rng.choice(options)),) if options and rng.random() < 0.7 else ()
    return Finding(kind, site, quals)


def _regions_of(kind: str) -> list[str]:
    from radsynth.vocabulary import FINDINGS_BY_REGION

    return [r for r in XRAY_REGIONS if kind in FINDINGS_BY_REGION.get(("xray", r), {})]


def case_plan(seed: int, split: str, index: int, plan: str = "all") -> PlannedCase:
    """Case `index` of `split` under the plan `plan` (a key of `PLANS`)."""
    chosen = stage_plan(plan)
    if chosen.pairs is None:
        rng = np.random.default_rng([seed, SPLITS[split], index, 11])
        case_seed = int(rng.integers(2**31))
        mix = str(rng.choice(list(chosen.mix), p=list(chosen.mix.values())))
        if mix == "ordinary":
            return PlannedCase(case_seed, mix, None, None, None)
        kind = str(rng.choice(chosen.kinds))
        region = str(rng.choice(_regions_of(kind)))
        if mix == "without":
            return PlannedCase(case_seed, mix, kind, region, None)
        finding = _drawn_finding(kind, region, np.random.default_rng([case_seed, 12]))
        return PlannedCase(case_seed, mix, kind, region, finding)
    # A stream of its own, the one the extremity trial drew its cases from
    # (docs/trials/finding_stage_extremity_trial.py), so that its rendered cases can be reused.
    rng = np.random.default_rng([seed, 7 + SPLITS[split], index])
    case_seed = int(rng.integers(2**31))
    u, ordinary, with_finding = rng.random(), chosen.mix["ordinary"], chosen.mix["with_finding"]
    if u < ordinary:
        return PlannedCase(case_seed, "ordinary", None, None, None)
    kind, region = chosen.pairs[int(rng.integers(len(chosen.pairs)))]
    if u >= ordinary + with_finding:
        return PlannedCase(case_seed, "without", kind, region, None)
    return PlannedCase(case_seed, "with_finding", kind, region, _drawn_finding(kind, region, rng))


def render_finding_case(
    seed: int, split: str, index: int, plan: str = "all"
) -> dict[str, np.ndarray]:
    """One radiograph of the plan's mix (see `StagePlan`): the 8-bit image, its stage-kind
    lesion masks (bits, packed) and which kinds it shows (uint8 per kind of `STAGE_KINDS`)."""
    from radsynth.phantoms.cases import make_case

    planned = case_plan(seed, split, index, plan)
    if planned.region is None:
        case = make_case(planned.case_seed, modality="xray", size=RENDER_SIZE)
    else:
        with_it = () if planned.finding is None else (planned.finding,)
        case = make_case(
            planned.case_seed,
            modality="xray",
            region=planned.region,
            findings_=with_it,
            size=RENDER_SIZE,
        )
    image = case.image
    masks = lesion_target(image.masks, image.image.shape)[[FINDINGS.index(k) for k in STAGE_KINDS]]
    shown = masks.reshape(len(STAGE_KINDS), -1).sum(1) >= MIN_AREA
    return {
        "image": image.to_uint8(),
        "lesions": np.packbits(masks, axis=None),
        "shown": shown.astype(np.uint8),
    }


def build_finding_cases(
    path: Path,
    seed: int,
    split: str,
    n: int,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
    plan: str = "all",
) -> dict[str, np.ndarray]:
    """The first `n` finding cases of `split` under `plan`, rendered once into `path` (an
    .npz, no pickle; see `case_cache.build_cases`): a file of another seed, split, mix or plan
    is refused."""
    meta: dict[str, Any] = {
        "seed": seed,
        "split": split,
        "size": RENDER_SIZE,
        "kinds": list(STAGE_KINDS),
        "mix": stage_plan(plan).mix,
        "min_area": MIN_AREA,
    }
    if plan != "all":  # caches of the shipped stage were written before there were plans
        meta["plan"] = plan
    render = partial(render_finding_case, plan=plan)
    return build_cases(path, render, meta, n, workers, on_progress, "finding cases")


def _lesions(data: dict[str, np.ndarray], i: int) -> np.ndarray:
    shape = (len(STAGE_KINDS), *data["image"].shape[1:])
    return np.unpackbits(data["lesions"][i])[: int(np.prod(shape))].reshape(shape)


def soften(image: torch.Tensor, rng: np.random.Generator, blur: float) -> torch.Tensor:
    """`image` (1, H, W) smoothed by a Gaussian of sigma drawn in [0.5, blur] px half of the
    time; unchanged (and no draw made) when `blur` is 0."""
    if blur <= 0 or rng.random() >= 0.5:
        return image
    from scipy import ndimage

    sigma = float(rng.uniform(0.5, max(blur, 0.5)))
    return torch.from_numpy(ndimage.gaussian_filter(image.numpy(), (0, sigma, sigma)))


def training_example(
    data: dict[str, np.ndarray],
    i: int,
    rng: np.random.Generator | None,
    size: int = SIZE,
    blur: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image (1, size, size), lesion maps (K, size, size), shown (K,)) of case `i`; with
    `rng`, mirrored at random and its contrast, sharpness and noise changed, and with `blur`
    > 0 half of the images smoothed by a Gaussian of sigma drawn in [0.5, blur] px of the
    rendered radiograph (generated images are softer than the phantoms)."""
    image = torch.from_numpy(data["image"][i].astype(np.float32) / 255.0)[None]
    lesions = torch.from_numpy(_lesions(data, i).astype(np.float32))
    if rng is not None:
        if rng.random() < 0.5:
            image, lesions = image.flip(-1), lesions.flip(-1)
        image = jitter_contrast(soften(image, rng, blur), rng)
    picture = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)[0]
    # A thin fracture gap keeps its pixels: a pixel of the smaller map is lesion where about a
    # third of it was.
    maps = F.interpolate(lesions[None], size=(size, size), mode="bilinear", antialias=True)[0]
    shown = torch.from_numpy(data["shown"][i].astype(np.float32))
    return picture.clamp(0, 1), (maps > 0.3).float(), shown


# -- training -----------------------------------------------------------------------------------
@dataclass
class TrainFindingConfig(TrainStageConfig):
    """One training run of the finding stage (counts in cases)."""

    steps: int = 2000
    batch_size: int = 16
    finding_pos_weight: float = 2.0  # a kind is shown in about a tenth of the cases
    size: int = SIZE
    plan: str = "all"  # a key of PLANS
    blur: float = 0.0  # largest sigma (px of the rendered radiograph) of the smoothing, 0: none


def finding_loss(
    out: dict[str, torch.Tensor],
    lesions: torch.Tensor,
    shown: torch.Tensor,
    pos_weight: float = 2.0,
) -> dict[str, torch.Tensor]:
    """The findings' cross-entropy (positives weigh `pos_weight`) and the lesion maps' term
    of the reader (`training.mask_loss`)."""
    weight = torch.full((shown.shape[1],), float(pos_weight))
    return {
        "findings": F.binary_cross_entropy_with_logits(out["findings"], shown, pos_weight=weight),
        "lesions": mask_loss(out["lesions"], lesions),
    }


def train_finding_reader(
    config: TrainFindingConfig,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_cache: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Render (or reuse) the cases, train (resuming from a checkpoint in `config.out`) and
    save the finding network (`reader.safetensors` + `config.json`, fp16) into `config.out`."""
    stage_plan(config.plan)  # an unknown plan is refused before OUT is made
    return train_stage(
        config,
        "train-finding-reader",
        partial(build_finding_cases, plan=config.plan),
        lambda: ReaderNet(finding_config(config.widths, config.size)),
        lambda data, i, rng: training_example(data, i, rng, config.size, config.blur),
        lambda out, lesions, shown: finding_loss(out, lesions, shown, config.finding_pos_weight),
        on_step,
        on_cache,
    )


# -- reading ------------------------------------------------------------------------------------
class FindingStage:
    """A trained finding network: the probability of each kind it reads in radiographs.
    `kinds`: the kinds it answers for (default all its network's; a stage folder's
    config.json names them under "reads", see `kinds_it_reads`). `regions`: the regions of the
    radiographs it answers for (default every region; "regions" in config.json)."""

    def __init__(
        self,
        net: ReaderNet,
        kinds: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
    ) -> None:
        self.net = net.eval()
        own = net.config.findings
        self.kinds = tuple(own if kinds is None else kinds)
        unknown = [k for k in self.kinds if k not in own]
        if unknown:
            raise ValueError(f"the finding stage cannot read {unknown}; it reads {list(own)}")
        self.regions = None if regions is None else tuple(regions)
        strange = [r for r in self.regions or () if r not in XRAY_REGIONS]
        if strange:
            raise ValueError(f"the finding stage names unknown regions {strange}")
        self._columns = [own.index(k) for k in self.kinds]

    @classmethod
    def load(cls, folder: Path) -> FindingStage:
        """The stage written by `radsynth train-finding-reader` into `folder`."""
        from radsynth.evaluate.reader.model import load_reader_net

        record = json.loads((folder / "config.json").read_text())
        return cls(load_reader_net(folder), record.get("reads"), record.get("regions"))

    def answers(self, record: dict[str, Any]) -> bool:
        """Whether the stage answers for an image the reader read as `record`: a radiograph,
        of one of its regions if it has regions."""
        if record.get("modality") != "xray":
            return False
        return self.regions is None or record.get("region") in self.regions

    def probabilities(self, images: Any, batch_size: int = 32) -> np.ndarray:
        """Float (B, len(kinds)): the probability of each kind in each image (any size, see
        `inference.as_images`)."""
        return self.read(images, batch_size)[0]

    @torch.no_grad()
    def read(
        self, images: Any, batch_size: int = 32
    ) -> tuple[np.ndarray, list[dict[str, str | None]]]:
        """The `probabilities` of the images and, per image, the side of the patient each
        kind's lesion map lies on if the image is frontal (`inference.lesion_sides`)."""
        from radsynth.evaluate.reader.inference import as_batch, lesion_sides

        batch = as_batch(images, self.net.config.size)
        outs = [self.net(batch[i : i + batch_size]) for i in range(0, len(batch), batch_size)]
        probabilities = torch.cat([torch.sigmoid(o["findings"]) for o in outs]).numpy()
        lesions = torch.cat([o["lesions"] for o in outs])[:, self._columns]
        return probabilities[:, self._columns], lesion_sides(lesions, self.kinds)


def without_stage(entry: dict[str, Any]) -> dict[str, Any]:
    """The figures a kind's `with_stage` figures are compared with in `evaluate_finding_stage`'s
    output: "without_stage" where a baseline reader was given, else "reader_alone"."""
    return entry["without_stage"] if "without_stage" in entry else entry["reader_alone"]


def kinds_it_reads(figures: dict[str, Any], kinds: Sequence[str] = STAGE_KINDS) -> list[str]:
    """The kinds of `kinds` a stage should answer for, from `evaluate_finding_stage`'s
    figures: those it reads better than the reader without it at the probe's threshold on the
    held-out cases, by sensitivity + specificity (Youden's J; a kind no held-out case shows is
    left out)."""

    def youden(scores: dict[str, Any]) -> float | None:
        if scores["sensitivity"] is None or scores["specificity"] is None:
            return None
        return float(scores["sensitivity"] + scores["specificity"] - 1)

    chosen = []
    for kind in kinds:
        if kind not in figures:
            continue
        stage = youden(figures[kind]["with_stage"])
        alone = youden(without_stage(figures[kind]))
        if stage is not None and alone is not None and stage > alone:
            chosen.append(kind)
    return chosen


def auroc(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    truth = truth.astype(bool)
    pos, neg = scores[truth], scores[~truth]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def evaluate_finding_stage(
    reader: Any, data: dict[str, np.ndarray], baseline: Any | None = None
) -> dict[str, Any]:
    """Held-out figures of a reader with its finding stages against the same reader alone
    ("reader_alone") or, given `baseline` (the reader without the stage under test, its other
    stages kept), against that ("without_stage"): per stage kind, the share of cases showing it
    that are read as showing it (sensitivity), the share of the others read as clear of it
    (specificity), both at the probe's threshold, and the area under the ROC curve."""
    from radsynth.evaluate.reader.inference import Reader

    images = data["image"]
    alone = Reader(reader.net).predict(images)  # the reader's network runs once

    def refined(by: Any) -> list[dict[str, Any]]:
        copies = [{**record, "findings": dict(record["findings"])} for record in alone]
        return by.refine_findings(images, copies)

    staged = refined(reader)
    compared = ("reader_alone", alone) if baseline is None else ("without_stage", refined(baseline))
    threshold = FINDING_PROBABILITY_THRESHOLD
    out: dict[str, Any] = {"n": len(images), "threshold": threshold}
    for k, kind in enumerate(STAGE_KINDS):
        truth = data["shown"][:, k].astype(bool)
        entry: dict[str, Any] = {"shown": int(truth.sum())}
        for name, records in (("with_stage", staged), compared):
            scores = np.array([r["findings"][kind] for r in records])
            seen = scores >= threshold
            entry[name] = {
                "sensitivity": round(float(seen[truth].mean()), 4) if truth.any() else None,
                "specificity": round(float((~seen[~truth]).mean()), 4) if (~truth).any() else None,
                "auroc": None if (a := auroc(scores, truth)) is None else round(a, 4),
            }
        out[kind] = entry
    return out
