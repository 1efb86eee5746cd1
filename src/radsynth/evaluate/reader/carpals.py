"""The reader's carpal stage: a second, closer look at the eight carpals of a hand or wrist.

The reader reads a whole radiograph at 160 px, where a PA hand's smallest carpal is about six
pixels across and the carpals touch: it counts exactly 8 in about half of the phantoms' own PA
hands and wrists (reader v3: 11 of 24 hands, 17 of 24 wrists). Zooming the reader itself onto
the carpals does not help, as it is tied to the scale it was trained at.

The carpal stage takes the reader's carpal mask, cuts a square box around it out of the image
at the image's own resolution (`carpal_box`, `crop`), scales the box to `CROP` px (a hand's
carpals and a wrist's then have about the same size) and marks each carpal's centre there with
a small network of the reader's own kind (`ReaderNet` with one group and one counted group).
The centres go back into the reader's map at its 160 px (`Reader.structures`), so the anatomy
checks count and judge carpals as before, from a closer look.

It is trained (`radsynth train-carpal-reader`) on PA hands and wrists of phantoms, a share of
them with a carpal removed or two carpals fused (`variant_cases`), so that it counts what it
sees, not eight by habit; every box is jittered in place, size and angle, flipped and its
contrast changed, so that a box placed by the reader's mask on a generated image reads alike.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from radsynth.evaluate.reader.case_cache import build_cases
from radsynth.evaluate.reader.groups import (
    COUNTED,
    group_instances,
    heatmap_target,
    instance_points,
)
from radsynth.evaluate.reader.model import ReaderConfig, ReaderNet
from radsynth.evaluate.reader.training import (
    TrainStageConfig,
    jitter_contrast,
    mask_and_centre_loss,
    train_stage,
)

CROP = 96  # px of the box the carpal network reads
MARGIN = 1.5  # box side / the longer side of the carpals' extent
MIN_SIDE = 0.08  # a box covers at least this share of the image's shorter side
MAX_POINTS = 8
RENDER_SIZE = 256  # px of the rendered training radiographs (the built-in model's size)
CASE_KINDS = {"normal": 0.7, "missing_carpal": 0.15, "fused_carpals": 0.15}
SPLITS = {"train": 0, "heldout": 1}


@dataclass(frozen=True)
class Box:
    """A square box in an image's pixels: centre (row, col), side and rotation (radians)."""

    row: float
    col: float
    side: float
    angle: float = 0.0
    flip: bool = False  # mirrored left to right inside the box

    def to_source(self, points: np.ndarray, size: int = CROP) -> np.ndarray:
        """(N, 2) (row, col) in the crop's pixels -> the image's pixels."""
        u = (points[:, 1] + 0.5) / size - 0.5
        v = (points[:, 0] + 0.5) / size - 0.5
        if self.flip:
            u = -u
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        col = self.col + self.side * (cos * u - sin * v)
        row = self.row + self.side * (sin * u + cos * v)
        return np.stack([row, col], axis=1)

    def to_crop(self, points: np.ndarray, size: int = CROP) -> np.ndarray:
        """(N, 2) (row, col) in the image's pixels -> the crop's pixels."""
        dr, dc = (points[:, 0] - self.row) / self.side, (points[:, 1] - self.col) / self.side
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        u, v = cos * dc + sin * dr, -sin * dc + cos * dr
        if self.flip:
            u = -u
        return np.stack([(v + 0.5) * size - 0.5, (u + 0.5) * size - 0.5], axis=1)


def carpal_box(mask: np.ndarray, image_shape: tuple[int, int]) -> Box | None:
    """The box around the carpals that `mask` (a carpal mask at any resolution) shows, in the
    pixels of an image shaped `image_shape`; None when the mask is empty. The carpals are the
    largest cluster of the mask once pieces a few pixels apart are joined (a stray speck
    elsewhere does not stretch the box)."""
    if not mask.any():
        return None
    scale_r, scale_c = image_shape[0] / mask.shape[0], image_shape[1] / mask.shape[1]
    joined = ndimage.binary_dilation(mask, iterations=max(1, round(mask.shape[0] / 50)))
    labelled, count = ndimage.label(joined)
    sizes = ndimage.sum(mask, labelled, range(1, count + 1))
    cluster = mask & (labelled == 1 + int(np.argmax(sizes)))
    rows, cols = np.nonzero(cluster)
    r0, r1 = rows.min() * scale_r, (rows.max() + 1) * scale_r
    c0, c1 = cols.min() * scale_c, (cols.max() + 1) * scale_c
    side = max(r1 - r0, c1 - c0) * MARGIN
    side = max(side, MIN_SIDE * min(image_shape))
    return Box((r0 + r1) / 2 - 0.5, (c0 + c1) / 2 - 0.5, float(side))


def crop(image: torch.Tensor, box: Box, size: int = CROP) -> torch.Tensor:
    """The (1, size, size) crop of a (1, H, W) float image inside `box` (bilinear, zeros
    outside the image; a box much larger than `size` is smoothed first against aliasing)."""
    height, width = image.shape[-2:]
    grid = torch.arange(size, dtype=torch.float32)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([rows.flatten(), cols.flatten()], 1).numpy()
    source = torch.from_numpy(box.to_source(points, size).astype(np.float32))
    x = (2 * source[:, 1] + 1) / width - 1
    y = (2 * source[:, 0] + 1) / height - 1
    sample_grid = torch.stack([x, y], 1).reshape(1, size, size, 2)
    shrink = box.side / size
    if shrink > 1.3:
        sigma = 0.5 * shrink
        radius = int(math.ceil(2 * sigma))
        taps = torch.exp(
            -(torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2) / 2 / sigma**2
        )
        taps = taps / taps.sum()
        padded = F.pad(image[None], (radius, radius, 0, 0), mode="replicate")
        image = F.conv2d(padded, taps.reshape(1, 1, 1, -1))[0]
        padded = F.pad(image[None], (0, 0, radius, radius), mode="replicate")
        image = F.conv2d(padded, taps.reshape(1, 1, -1, 1))[0]
    return F.grid_sample(
        image[None], sample_grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[0]


def carpal_config(widths: tuple[int, ...] = (16, 32, 64, 128)) -> ReaderConfig:
    """The carpal network: the reader's architecture with one group and one counted group."""
    return ReaderConfig(
        size=CROP,
        widths=widths,
        heads={},
        findings=(),
        groups=("carpals",),
        counted=("carpals",),
        lesion_maps=False,
    )


# -- training data ------------------------------------------------------------------------------
def _case_kind(seed: int, split: str, index: int) -> tuple[int, str]:
    rng = np.random.default_rng([seed, SPLITS[split], index, 7])
    kind = str(rng.choice(list(CASE_KINDS), p=list(CASE_KINDS.values())))
    return int(rng.integers(2**31)), kind


def render_carpal_case(seed: int, split: str, index: int) -> dict[str, np.ndarray]:
    """One PA hand or wrist (a share with a carpal removed or two fused): the 8-bit image, its
    carpal mask and one (row, col, radius) per visible carpal (NaN rows pad to MAX_POINTS)."""
    case_seed, kind = _case_kind(seed, split, index)
    if kind == "normal":
        from radsynth.phantoms.cases import make_case

        rng = np.random.default_rng([case_seed, 3])
        region = str(rng.choice(("hand", "wrist")))
        image = make_case(
            case_seed, modality="xray", region=region, view="pa", size=RENDER_SIZE
        ).image
    else:
        from radsynth.evaluate.reader.variant_cases import variant_case

        image, _ = variant_case(case_seed, RENDER_SIZE, kind=kind)
    masks = image.masks
    carpals = group_instances(masks).get("carpals", {})
    union = np.zeros(image.image.shape, dtype=bool)
    for mask in carpals.values():
        union |= mask
    points = np.full((MAX_POINTS, 3), np.nan, dtype=np.float32)
    found = instance_points(masks).get("carpals", [])[:MAX_POINTS]
    if found:
        points[: len(found)] = np.asarray(found, dtype=np.float32)
    return {"image": image.to_uint8(), "mask": np.packbits(union, axis=None), "points": points}


def build_carpal_cases(
    path: Path,
    seed: int,
    split: str,
    n: int,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """The first `n` carpal cases of `split`, rendered once into `path` (an .npz, no pickle;
    see `case_cache.build_cases`): a file of another seed or split is refused."""
    meta = {"seed": seed, "split": split, "size": RENDER_SIZE, "kinds": CASE_KINDS}
    return build_cases(path, render_carpal_case, meta, n, workers, on_progress, "carpal cases")


def _mask(data: dict[str, np.ndarray], i: int) -> np.ndarray:
    shape = data["image"].shape[1:]
    return np.unpackbits(data["mask"][i])[: shape[0] * shape[1]].reshape(shape).astype(bool)


def training_example(
    data: dict[str, np.ndarray], i: int, rng: np.random.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(crop, carpal mask, centre heat map) of case `i`, each (1, CROP, CROP). With `rng`,
    the box is jittered (place, size, angle, mirror) and the contrast changed; without, the
    box is the one `carpal_box` draws around the true mask."""
    truth = _mask(data, i)
    image = torch.from_numpy(data["image"][i].astype(np.float32) / 255.0)[None]
    box = carpal_box(truth, truth.shape)
    if box is None:
        box = Box(truth.shape[0] / 2, truth.shape[1] / 2, truth.shape[0] / 2)
    if rng is not None:
        side = box.side * float(rng.uniform(0.85, 1.3))
        box = Box(
            box.row + float(rng.uniform(-0.12, 0.12)) * box.side,
            box.col + float(rng.uniform(-0.12, 0.12)) * box.side,
            side,
            float(rng.uniform(-0.3, 0.3)),
            bool(rng.random() < 0.5),
        )
    picture = crop(image, box)
    mask = crop(torch.from_numpy(truth.astype(np.float32))[None], box) > 0.5
    points = data["points"][i]
    points = points[~np.isnan(points[:, 0])]
    # The reader's centre targets, in the crop: each carpal inside it, its radius scaled.
    scale = CROP / box.side
    inside = [
        (float(r), float(c), float(radius) * scale)
        for (r, c), radius in zip(box.to_crop(points[:, :2]), points[:, 2], strict=True)
        if 0 <= round(r) < CROP and 0 <= round(c) < CROP
    ]
    heat = heatmap_target({"carpals": inside}, (CROP, CROP))[COUNTED.index("carpals")]
    if rng is not None:
        picture = jitter_contrast(picture, rng)
    return picture.clamp(0, 1), mask.float(), torch.from_numpy(heat)[None]


# -- training -----------------------------------------------------------------------------------
@dataclass
class TrainCarpalConfig(TrainStageConfig):
    """One training run of the carpal stage (counts in cases): `TrainStageConfig`'s defaults."""


def train_carpal_reader(
    config: TrainCarpalConfig,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_cache: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Render (or reuse) the cases, train (resuming from a checkpoint in `config.out`) and
    save the carpal network (`reader.safetensors` + `config.json`, fp16) into `config.out`."""
    return train_stage(
        config,
        "train-carpal-reader",
        build_carpal_cases,
        lambda: ReaderNet(carpal_config(config.widths)),
        training_example,
        mask_and_centre_loss,
        on_step,
        on_cache,
    )


# -- reading ------------------------------------------------------------------------------------
class CarpalStage:
    """A trained carpal network: the carpal centres in an image, given the reader's mask."""

    def __init__(self, net: ReaderNet) -> None:
        self.net = net.eval()

    @torch.no_grad()
    def centres(
        self, image: np.ndarray, mask: np.ndarray, threshold: float | None = None
    ) -> list[tuple[int, int]] | None:
        """Centres (row, col) of the carpals in `image` (float (H, W) in [0, 1]), in the pixels
        of `mask` (the reader's carpal mask, which places the box); None for an empty mask."""
        from radsynth.evaluate.reader.inference import PEAK_THRESHOLD, count_peaks

        box = carpal_box(mask, image.shape)
        if box is None:
            return None
        picture = crop(torch.from_numpy(np.asarray(image, dtype=np.float32))[None], box)
        heat = torch.sigmoid(self.net(picture[None])["centres"][0, 0]).numpy()
        peaks = count_peaks(heat, PEAK_THRESHOLD if threshold is None else threshold)
        if not peaks:
            return []
        source = box.to_source(np.asarray(peaks, dtype=np.float64))
        rows = (source[:, 0] + 0.5) * mask.shape[0] / image.shape[0] - 0.5
        cols = (source[:, 1] + 0.5) * mask.shape[1] / image.shape[1] - 0.5
        top_r, top_c = mask.shape[0] - 1, mask.shape[1] - 1
        return [
            (int(np.clip(round(r), 0, top_r)), int(np.clip(round(c), 0, top_c)))
            for r, c in zip(rows, cols, strict=True)
        ]


def evaluate_carpal_stage(reader: Any, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Held-out figures of a reader with its carpal stage, against the same reader without it:
    per case kind (all carpals shown, one removed, two fused), the share of cases whose carpal
    count is exactly the true one (the number of carpals the case shows)."""
    from radsynth.evaluate.reader.inference import Reader

    truth = [int((~np.isnan(p[:, 0])).sum()) for p in data["points"]]
    images = data["image"]
    maps = Reader(reader.net).structures(images)  # the reader's network runs once
    alone = [len(m.centres["carpals"]) for m in maps]
    staged = [len(m.centres["carpals"]) for m in reader.refine_carpals(images, maps)]
    counts = {"with_stage": staged, "reader_alone": alone}
    out: dict[str, Any] = {"n": len(truth)}
    for want, kind in ((8, "eight_shown"), (7, "seven_shown")):
        chosen = [i for i, t in enumerate(truth) if t == want]
        out[kind] = {
            name: {
                "exact": round(sum(found[i] == want for i in chosen) / max(1, len(chosen)), 4),
                "n": len(chosen),
                "counts": dict(sorted(Counter(found[i] for i in chosen).items())),
            }
            for name, found in counts.items()
        }
    return out
