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

`Reader.predict` takes the stage's probabilities in place of the reader's on images that the
reader reads as radiographs, for the kinds the stage reads better than the reader on held-out
cases (`kinds_it_reads`, listed under "reads" in the stage's config.json); other modalities and
kinds keep the reader's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from radsynth.evaluate.metrics.conditional import FINDING_PROBABILITY_THRESHOLD
from radsynth.evaluate.reader.case_cache import build_cases
from radsynth.evaluate.reader.groups import FINDINGS, lesion_target
from radsynth.evaluate.reader.model import ReaderConfig, ReaderNet

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
def _regions_of(kind: str) -> list[str]:
    from radsynth.vocabulary import FINDINGS_BY_REGION
    from radsynth.vocabulary.labels import XRAY_REGIONS

    return [r for r in XRAY_REGIONS if kind in FINDINGS_BY_REGION.get(("xray", r), {})]


def case_plan(seed: int, split: str, index: int) -> tuple[int, str, str | None, str | None]:
    """(case seed, mix entry, stage kind, region) of case `index`; kind and region are None
    for an ordinary radiograph (its findings and region drawn by the phantoms)."""
    rng = np.random.default_rng([seed, SPLITS[split], index, 11])
    case_seed = int(rng.integers(2**31))
    mix = str(rng.choice(list(CASE_MIX), p=list(CASE_MIX.values())))
    if mix == "ordinary":
        return case_seed, mix, None, None
    kind = str(rng.choice(STAGE_KINDS))
    return case_seed, mix, kind, str(rng.choice(_regions_of(kind)))


def render_finding_case(seed: int, split: str, index: int) -> dict[str, np.ndarray]:
    """One radiograph of the mix (see the module doc): the 8-bit image, its stage-kind lesion
    masks (bits, packed) and which kinds it shows (uint8 per kind)."""
    from radsynth.phantoms.cases import make_case
    from radsynth.vocabulary import FINDINGS_BY_REGION, qualifiers_for
    from radsynth.vocabulary.labels import Finding

    case_seed, mix, kind, region = case_plan(seed, split, index)
    if kind is None or region is None:
        case = make_case(case_seed, modality="xray", size=RENDER_SIZE)
    else:
        chosen: tuple[Finding, ...] = ()
        if mix == "with_finding":
            rng = np.random.default_rng([case_seed, 12])
            sites = FINDINGS_BY_REGION[("xray", region)][kind]
            site = str(rng.choice(sites)) if sites and rng.random() < 0.7 else None
            options = qualifiers_for(region, kind)
            quals = (str(rng.choice(options)),) if options and rng.random() < 0.7 else ()
            chosen = (Finding(kind, site, quals),)
        case = make_case(
            case_seed, modality="xray", region=region, findings_=chosen, size=RENDER_SIZE
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
) -> dict[str, np.ndarray]:
    """The first `n` finding cases of `split`, rendered once into `path` (an .npz, no pickle;
    see `case_cache.build_cases`): a file of another seed, split or mix is refused."""
    meta = {
        "seed": seed,
        "split": split,
        "size": RENDER_SIZE,
        "kinds": list(STAGE_KINDS),
        "mix": CASE_MIX,
        "min_area": MIN_AREA,
    }
    return build_cases(path, render_finding_case, meta, n, workers, on_progress, "finding cases")


def _lesions(data: dict[str, np.ndarray], i: int) -> np.ndarray:
    shape = (len(STAGE_KINDS), *data["image"].shape[1:])
    return np.unpackbits(data["lesions"][i])[: int(np.prod(shape))].reshape(shape)


def training_example(
    data: dict[str, np.ndarray], i: int, rng: np.random.Generator | None, size: int = SIZE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image (1, size, size), lesion maps (K, size, size), shown (K,)) of case `i`; with
    `rng`, mirrored at random and its contrast, sharpness and noise changed."""
    image = torch.from_numpy(data["image"][i].astype(np.float32) / 255.0)[None]
    lesions = torch.from_numpy(_lesions(data, i).astype(np.float32))
    if rng is not None:
        from radsynth.evaluate.reader.training import jitter_contrast

        if rng.random() < 0.5:
            image, lesions = image.flip(-1), lesions.flip(-1)
        image = jitter_contrast(image, rng)
    picture = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)[0]
    # A thin fracture gap keeps its pixels: a pixel of the smaller map is lesion where about a
    # third of it was.
    maps = F.interpolate(lesions[None], size=(size, size), mode="bilinear", antialias=True)[0]
    shown = torch.from_numpy(data["shown"][i].astype(np.float32))
    return picture.clamp(0, 1), (maps > 0.3).float(), shown


# -- training -----------------------------------------------------------------------------------
@dataclass
class TrainFindingConfig:
    """One training run of the finding stage (counts in cases)."""

    out: Path
    n: int = 3000
    steps: int = 2000
    seed: int = 0
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    finding_pos_weight: float = 2.0  # a kind is shown in about a tenth of the cases
    workers: int = 1
    threads: int = 1
    checkpoint_every: int = 100
    cache: Path | None = None  # the rendered training cases (.npz); default OUT/cases-train.npz
    widths: tuple[int, ...] = (16, 32, 64, 128)
    size: int = SIZE
    extra: dict[str, Any] = field(default_factory=dict)


def finding_loss(
    out: dict[str, torch.Tensor],
    lesions: torch.Tensor,
    shown: torch.Tensor,
    pos_weight: float = 2.0,
) -> dict[str, torch.Tensor]:
    """The findings' cross-entropy (positives weigh `pos_weight`) and the lesion maps' term
    of the reader (`training.mask_loss`)."""
    from radsynth.evaluate.reader.training import mask_loss

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
    from radsynth.evaluate.reader.training import train_stage

    return train_stage(
        config,
        "train-finding-reader",
        build_finding_cases,
        lambda: ReaderNet(finding_config(config.widths, config.size)),
        lambda data, i, rng: training_example(data, i, rng, config.size),
        lambda out, lesions, shown: finding_loss(out, lesions, shown, config.finding_pos_weight),
        on_step,
        on_cache,
    )


# -- reading ------------------------------------------------------------------------------------
class FindingStage:
    """A trained finding network: the probability of each kind it reads in radiographs.
    `kinds`: the kinds it answers for (default all its network's; a stage folder's
    config.json names them under "reads", see `kinds_it_reads`)."""

    def __init__(self, net: ReaderNet, kinds: Sequence[str] | None = None) -> None:
        self.net = net.eval()
        own = net.config.findings
        self.kinds = tuple(own if kinds is None else kinds)
        unknown = [k for k in self.kinds if k not in own]
        if unknown:
            raise ValueError(f"the finding stage cannot read {unknown}; it reads {list(own)}")
        self._columns = [own.index(k) for k in self.kinds]

    @classmethod
    def load(cls, folder: Path) -> FindingStage:
        """The stage written by `radsynth train-finding-reader` into `folder`."""
        from radsynth.evaluate.reader.model import load_reader_net

        record = json.loads((folder / "config.json").read_text())
        return cls(load_reader_net(folder), record.get("reads"))

    @torch.no_grad()
    def probabilities(self, images: Any, batch_size: int = 32) -> np.ndarray:
        """Float (B, len(kinds)): the probability of each kind in each image (any size, see
        `inference.as_images`)."""
        from radsynth.evaluate.reader.inference import as_batch

        batch = as_batch(images, self.net.config.size)
        parts = [
            torch.sigmoid(self.net(batch[i : i + batch_size])["findings"])
            for i in range(0, len(batch), batch_size)
        ]
        return torch.cat(parts).numpy()[:, self._columns]


def kinds_it_reads(figures: dict[str, Any]) -> list[str]:
    """The kinds a stage should answer for, from `evaluate_finding_stage`'s figures: those it
    reads better than the reader alone at the probe's threshold on the held-out cases, by
    sensitivity + specificity (Youden's J; a kind no held-out case shows is left out)."""

    def youden(scores: dict[str, Any]) -> float | None:
        if scores["sensitivity"] is None or scores["specificity"] is None:
            return None
        return float(scores["sensitivity"] + scores["specificity"] - 1)

    chosen = []
    for kind in STAGE_KINDS:
        if kind not in figures:
            continue
        stage, alone = youden(figures[kind]["with_stage"]), youden(figures[kind]["reader_alone"])
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


def evaluate_finding_stage(reader: Any, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Held-out figures of a reader with its finding stage against the same reader alone: per
    stage kind, the share of cases showing it that are read as showing it (sensitivity), the
    share of the others read as clear of it (specificity), both at the probe's threshold, and
    the area under the ROC curve."""
    from radsynth.evaluate.reader.inference import Reader

    images = data["image"]
    alone = Reader(reader.net).predict(images)  # the reader's network runs once
    copies = [{**record, "findings": dict(record["findings"])} for record in alone]
    staged = reader.refine_findings(images, copies)
    threshold = FINDING_PROBABILITY_THRESHOLD
    out: dict[str, Any] = {"n": len(images), "threshold": threshold}
    for k, kind in enumerate(STAGE_KINDS):
        truth = data["shown"][:, k].astype(bool)
        entry: dict[str, Any] = {"shown": int(truth.sum())}
        for name, records in (("with_stage", staged), ("reader_alone", alone)):
            scores = np.array([r["findings"][kind] for r in records])
            seen = scores >= threshold
            entry[name] = {
                "sensitivity": round(float(seen[truth].mean()), 4) if truth.any() else None,
                "specificity": round(float((~seen[~truth]).mean()), 4) if (~truth).any() else None,
                "auroc": None if (a := auroc(scores, truth)) is None else round(a, 4),
            }
        out[kind] = entry
    return out
