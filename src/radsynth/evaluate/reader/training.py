"""Train the reader on cached phantom cases, with checkpoints, resume and held-out figures.

`train_reader(TrainReaderConfig(...))` renders (or reuses) the cache, trains, checkpoints every
`checkpoint_every` steps (model, optimiser, step, random state: an interrupted run resumes where
it stopped), then scores held-out cases and writes `heldout.json` and the fp16 reader
(`reader.safetensors` + `config.json`) into the output folder.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from radsynth.evaluate.reader.data import ReaderCache, unpack
from radsynth.evaluate.reader.groups import COUNTED, FINDINGS, GROUPS, HEADS
from radsynth.evaluate.reader.model import ReaderConfig, ReaderNet, save_reader

CHECKPOINT = "checkpoint.safetensors"
STATE = "checkpoint.json"


@dataclass
class TrainReaderConfig:
    """One training run of the reader (sizes in pixels, counts in cases)."""

    out: Path
    n: int = 4000  # training cases (rendered once into the cache)
    heldout: int = 400  # held-out cases, drawn from another seed stream
    steps: int = 3000
    size: int = 160  # 160 px keeps carpal centres >= 4 px apart and a step near 1.5 s on 1 core
    seed: int = 0
    batch_size: int = 16
    lr: float = 2e-3  # AdamW with warm-up and cosine decay
    weight_decay: float = 1e-4
    workers: int = 1  # processes that render the cache
    threads: int = 1  # torch threads while training (the project machine is shared)
    checkpoint_every: int = 100
    cache: Path | None = None  # default: OUT/cache
    widths: tuple[int, ...] = (16, 32, 64, 96, 160)
    decoder_width: int = 24
    full_res_width: int = 8
    final_width: int = 12
    lesion_maps: bool = True  # segment each finding kind and read findings from those maps
    finding_pos_weight: float = 5.0  # a finding kind is in 1-7 % of cases: weigh positives up
    variant_share: float = 0.0  # training cases drawn as variant radiographs (see variant_cases)
    extra: dict[str, Any] = field(default_factory=dict)  # recorded as is (command line, machine)

    def reader_config(self) -> ReaderConfig:
        return ReaderConfig(
            size=self.size,
            widths=self.widths,
            decoder_width=self.decoder_width,
            full_res_width=self.full_res_width,
            final_width=self.final_width,
            lesion_maps=self.lesion_maps,
        )


def centre_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss: peaks (target == 1) are positives, pixels near a
    peak are down-weighted negatives; normalised by the number of peaks."""
    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target >= 0.999
    pos_loss = -((1 - prob) ** 2) * torch.log(prob) * positive
    neg_loss = -((1 - target) ** 4) * prob**2 * torch.log(1 - prob) * (~positive)
    return (pos_loss.sum() + neg_loss.sum()) / positive.sum().clamp(min=1)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Dice per group over the batch, averaged over groups present in the batch."""
    prob = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (prob * target).sum(dims)
    total = prob.sum(dims) + target.sum(dims)
    present = target.sum(dims) > 0
    dice = (2 * inter + 1) / (total + 1)
    return (1 - dice[present]).mean() if present.any() else logits.sum() * 0


def mask_loss(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The term of a stack of masks (structure groups, lesion maps): per-pixel cross-entropy
    and soft Dice."""
    return 50 * F.binary_cross_entropy_with_logits(logits, truth) + 5 * (
        soft_dice_loss(logits, truth)
    )


def mask_and_centre_loss(
    out: dict[str, torch.Tensor], masks: torch.Tensor, heat: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The loss of a stage that segments groups and marks bone centres (the carpal and body
    stages): per-pixel cross-entropy (x 20) and soft Dice (x 2) of its masks, and the focal
    loss of its centre heat maps."""
    seg = out["segmentation"]
    cross_entropy = F.binary_cross_entropy_with_logits(seg, masks)
    return {
        "mask": 20 * cross_entropy + 2 * soft_dice_loss(seg, masks),
        "centres": centre_focal_loss(out["centres"], heat),
    }


def jitter_contrast(picture: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A training image (values in [0, 1]) with its gamma, black and white points changed,
    smoothed 3 in 10 times and with a little noise, so that generated images read alike
    (used by the reader's stages); not clamped."""
    gamma = float(np.exp(rng.uniform(-0.35, 0.35)))
    low, high = float(rng.uniform(0, 0.1)), float(rng.uniform(0.85, 1.1))
    picture = picture.clamp(0, 1) ** gamma * (high - low) + low
    if rng.random() < 0.3:
        picture = F.avg_pool2d(picture[None], 3, 1, 1, count_include_pad=False)[0]
    return picture + float(rng.uniform(0, 0.03)) * torch.randn_like(picture)


def reader_loss(
    out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], finding_pos_weight: float = 1.0
) -> dict[str, torch.Tensor]:
    """The weighted loss terms. The weights balance the gradient norms (measured at step 150:
    unweighted, segmentation's was a tenth of the centre maps' and a fifth of each label
    head's, so clipping the sum starved it). Positive findings weigh `finding_pos_weight`
    times a negative; lesion maps (when the reader has them) are segmented like the groups."""
    terms = {head: 0.5 * F.cross_entropy(out[head], batch[head]) for head in HEADS}
    pos_weight = torch.full((out["findings"].shape[1],), float(finding_pos_weight))
    terms["findings"] = F.binary_cross_entropy_with_logits(
        out["findings"], batch["findings"], pos_weight=pos_weight
    )
    if "lesions" in out:
        if "lesions" not in batch:
            raise ValueError(
                "this reader segments findings but the cache has no lesion maps; "
                "rebuild it in a new --cache folder"
            )
        terms["lesions"] = mask_loss(out["lesions"], batch["lesions"])
    terms["segmentation"] = mask_loss(out["segmentation"], batch["segmentation"])
    terms["centres"] = 0.5 * centre_focal_loss(out["centres"], batch["centres"])
    return terms


def _to_torch(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def _learning_rate(lr: float, steps: int, step: int) -> float:
    """Linear warm-up over a tenth of the steps (at most 100), then cosine decay to 2 %."""
    warmup = max(1, min(100, steps // 10))
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def batch_indices(config: TrainReaderConfig, step: int, n: int) -> np.ndarray:
    """The cases of training step `step`: a function of (seed, step) only, so a resumed run
    draws exactly the batches the uninterrupted run would have drawn."""
    return np.random.default_rng([config.seed, step]).choice(n, config.batch_size, replace=False)


def _save_checkpoint(
    folder: Path, net: ReaderNet, opt: torch.optim.Optimizer, step: int, wall: float
) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}
    for index, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).contiguous()
    tmp = folder / (CHECKPOINT + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(folder / CHECKPOINT)
    (folder / STATE).write_text(json.dumps({"step": step, "wall_s": wall}))


def _load_checkpoint(folder: Path, net: ReaderNet, opt: torch.optim.Optimizer) -> dict | None:
    from safetensors.torch import load_file

    if not (folder / STATE).is_file() or not (folder / CHECKPOINT).is_file():
        return None
    tensors = load_file(str(folder / CHECKPOINT))
    try:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError:
        raise ValueError(
            f"{folder} holds a checkpoint of another network (other options, e.g. --tiny or "
            "--size); give another --out, or the options it was trained with"
        ) from None
    opt_state = opt.state_dict()
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            opt_state["state"].setdefault(int(index), {})[key] = value
    opt.load_state_dict(opt_state)
    return json.loads((folder / STATE).read_text())


class CountsConfig(Protocol):
    """The counts every reader training run checks before it renders a case."""

    out: Path
    steps: int
    n: int
    batch_size: int
    threads: int
    checkpoint_every: int


def check_counts(config: CountsConfig, name: str) -> None:
    """Refuse counts below 1 (they crashed or trained on NaN after the cases were rendered)
    and a checkpoint in `config.out` beyond `--steps` (it was taken as finished silently)."""
    for flag, value in (
        ("--steps", config.steps),
        ("--batch-size", config.batch_size),
        ("--threads", config.threads),
        ("--checkpoint-every", config.checkpoint_every),
    ):
        if value < 1:
            raise ValueError(f"{name} needs {flag} >= 1, got {value}")
    if config.n < config.batch_size:
        raise ValueError(f"{name} needs --n >= the batch size ({config.batch_size})")
    state = config.out / STATE
    if state.is_file():
        done = int(json.loads(state.read_text()).get("step", 0))
        if done > config.steps:
            raise ValueError(
                f"{config.out} holds a checkpoint at step {done}, beyond --steps "
                f"{config.steps}; give --steps {done} or more to continue it, or another --out"
            )


class StepsConfig(Protocol):
    """What `run_steps` reads of a training config."""

    out: Path
    steps: int
    lr: float
    checkpoint_every: int


def run_steps(
    net: ReaderNet,
    opt: torch.optim.Optimizer,
    config: StepsConfig,
    terms_at: Callable[[int], dict[str, torch.Tensor]],
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
) -> float:
    """Resume from the checkpoint in `config.out`, then run the steps left: the learning rate
    warmed up and decayed (`_learning_rate`), the loss terms of `terms_at(step)` summed,
    gradients clipped to norm 20, a checkpoint every `config.checkpoint_every` steps and after
    the last. Leaves `net` in eval mode; returns the wall time of all steps, those of earlier
    runs included."""
    out, steps = config.out, config.steps
    state = _load_checkpoint(out, net, opt)
    start = state["step"] if state else 0
    wall = state["wall_s"] if state else 0.0
    net.train()
    t0 = time.monotonic()
    for step in range(start, steps):
        for group in opt.param_groups:
            group["lr"] = _learning_rate(config.lr, steps, step)
        terms = terms_at(step)
        loss = sum(terms.values(), torch.zeros(()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 20.0)
        opt.step()
        if on_step:
            on_step(step + 1, steps, {k: float(v.detach()) for k, v in terms.items()})
        completed = step + 1
        if completed % config.checkpoint_every == 0 or completed == steps:
            _save_checkpoint(out, net, opt, completed, wall + time.monotonic() - t0)
    net.eval()
    return wall + time.monotonic() - t0


def training_record(config: Any, wall: float) -> dict[str, Any]:
    """A training config (a dataclass) as recorded beside the weights, with wall time,
    machine and torch version."""
    return {
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "wall_s": round(wall, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
    }


class StageConfig(StepsConfig, Protocol):
    """What `train_stage` reads of a stage's training config (carpals, findings)."""

    n: int
    seed: int
    batch_size: int
    weight_decay: float
    workers: int
    threads: int
    cache: Path | None


@dataclass
class TrainStageConfig:
    """One training run of one of the reader's stages (carpals, findings, body; counts in
    cases). A stage's own config subclasses it with its defaults and fields."""

    out: Path
    n: int = 3000
    steps: int = 2500
    seed: int = 0
    batch_size: int = 24
    lr: float = 2e-3
    weight_decay: float = 1e-4
    workers: int = 1
    threads: int = 1
    checkpoint_every: int = 100
    cache: Path | None = None  # the rendered training cases (.npz); default OUT/cases-train.npz
    widths: tuple[int, ...] = (16, 32, 64, 128)
    extra: dict[str, Any] = field(default_factory=dict)


def train_stage(
    config: StageConfig,
    name: str,
    build: Callable[..., dict[str, np.ndarray]],
    make_net: Callable[[], ReaderNet],
    example: Callable[[dict[str, np.ndarray], int, np.random.Generator], tuple[torch.Tensor, ...]],
    loss: Callable[..., dict[str, torch.Tensor]],
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_cache: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train one of the reader's stages: render (or reuse) its cases with `build(path, seed,
    "train", n, workers, on_cache)`, make its network (`make_net`, after seeding torch), then
    each step draw `batch_size` cases, turn each into tensors with `example(data, i, rng)`,
    stack them and sum `loss(net(first), *rest)`; resume from and write checkpoints in
    `config.out` (`run_steps`) and save the network (fp16) with its training record there."""
    check_counts(config, name)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    cache = config.cache or out / "cases-train.npz"
    data = build(cache, config.seed, "train", config.n, config.workers, on_cache)
    net = make_net()
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def terms_at(step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([config.seed, step])
        chosen = rng.choice(len(data["image"]), config.batch_size, replace=False)
        examples = [example(data, int(i), rng) for i in chosen]
        first, *rest = (torch.stack([e[k] for e in examples]) for k in range(len(examples[0])))
        return loss(net(first), *rest)

    wall = run_steps(net, opt, config, terms_at, on_step)
    record = training_record(config, wall)
    save_reader(net, out, {"training": record})
    return record


def _shard_reporter(
    split: str, cache: ReaderCache, count: int, on_cache: Callable[[str, int, int], None] | None
) -> Callable[[int], None]:
    todo, done = len(cache.missing(split, count)), [0]

    def report(cases: int) -> None:
        done[0] += 1
        if on_cache:
            on_cache(split, done[0], todo)

    return report


def train_reader(
    config: TrainReaderConfig,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_cache: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Build the cache, train (resuming from a checkpoint in `config.out`), score held-out
    cases and save the reader. Returns the held-out figures (also written to heldout.json)."""
    check_counts(config, "train-reader")
    if config.heldout < 1:
        raise ValueError("train-reader needs at least one held-out case (--heldout)")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    if not 0.0 <= config.variant_share < 1.0:
        raise ValueError(f"--variant-share must be in [0, 1), got {config.variant_share}")
    cache = ReaderCache(
        config.cache or out / "cache", config.seed, config.size, config.variant_share
    )
    for split, count in (("heldout", config.heldout), ("train", config.n)):
        cache.build(split, count, config.workers, _shard_reporter(split, cache, count, on_cache))
    train = cache.load("train", config.n)
    net = ReaderNet(config.reader_config())
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def terms_at(step: int) -> dict[str, torch.Tensor]:
        batch = _to_torch(unpack(train, batch_indices(config, step, len(train["image"]))))
        return reader_loss(net(batch["image"]), batch, config.finding_pos_weight)

    wall = run_steps(net, opt, config, terms_at, on_step)
    figures = evaluate_reader(net, cache.load("heldout", config.heldout))
    record = {"train": training_record(config, wall), "heldout": figures}
    save_reader(net, out, {"training": record["train"]})
    (out / "heldout.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


@torch.no_grad()
def evaluate_reader(net: ReaderNet, data: dict[str, np.ndarray], batch_size: int = 32) -> dict:
    """Held-out figures: accuracy per label head, per-finding accuracy and F1, Dice per group
    (pooled over cases where the group is present or predicted), centre-count exactness."""
    n = len(data["image"])
    correct = {head: 0 for head in HEADS}
    tp, fp, fn = (np.zeros(len(FINDINGS)) for _ in range(3))
    finding_correct = np.zeros(len(FINDINGS))
    inter, total = np.zeros(len(GROUPS)), np.zeros(len(GROUPS))
    lesion_inter, lesion_total = np.zeros(len(FINDINGS)), np.zeros(len(FINDINGS))
    count_exact, count_cases = np.zeros(len(COUNTED)), np.zeros(len(COUNTED))
    from radsynth.evaluate.reader.inference import count_peaks

    for start in range(0, n, batch_size):
        batch = unpack(data, np.arange(start, min(n, start + batch_size)))
        out = net(torch.from_numpy(batch["image"]))
        for head in HEADS:
            correct[head] += int((out[head].argmax(1).numpy() == batch[head]).sum())
        predicted = (torch.sigmoid(out["findings"]).numpy() > 0.5).astype(float)
        truth = batch["findings"]
        tp += (predicted * truth).sum(0)
        fp += (predicted * (1 - truth)).sum(0)
        fn += ((1 - predicted) * truth).sum(0)
        finding_correct += (predicted == truth).sum(0)
        seg = (out["segmentation"] > 0).numpy()
        truth_seg = batch["segmentation"] > 0.5
        inter += (seg & truth_seg).sum((0, 2, 3))
        total += seg.sum((0, 2, 3)) + truth_seg.sum((0, 2, 3))
        if "lesions" in out and "lesions" in batch:
            found, truth_lesions = (out["lesions"] > 0).numpy(), batch["lesions"] > 0.5
            lesion_inter += (found & truth_lesions).sum((0, 2, 3))
            lesion_total += found.sum((0, 2, 3)) + truth_lesions.sum((0, 2, 3))
        heat = torch.sigmoid(out["centres"]).numpy()
        for i in range(len(heat)):
            for g in range(len(COUNTED)):
                true_count = len(count_peaks(batch["centres"][i, g]))
                if true_count == 0:
                    continue
                count_cases[g] += 1
                count_exact[g] += len(count_peaks(heat[i, g])) == true_count
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    lesion_dice = {
        kind: round(float(2 * lesion_inter[k] / lesion_total[k]), 4) if lesion_total[k] else None
        for k, kind in enumerate(FINDINGS)
    }
    return {
        "n": n,
        "accuracy": {head: round(correct[head] / n, 4) for head in HEADS},
        "findings": {
            kind: {
                "accuracy": round(float(finding_correct[k] / n), 4),
                "f1": round(float(f1[k]), 4),
                "positives": int(tp[k] + fn[k]),
                "recall": round(float(tp[k] / (tp[k] + fn[k])), 4) if tp[k] + fn[k] else None,
                "false_positives": int(fp[k]),
                "lesion_dice": lesion_dice[kind],
            }
            for k, kind in enumerate(FINDINGS)
        },
        "dice": {
            group: round(float(2 * inter[g] / total[g]), 4) if total[g] else None
            for g, group in enumerate(GROUPS)
        },
        "count_exact": {
            group: {
                "fraction": round(float(count_exact[g] / count_cases[g]), 4),
                "n": int(count_cases[g]),
            }
            if count_cases[g]
            else None
            for g, group in enumerate(COUNTED)
        },
    }
