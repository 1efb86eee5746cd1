"""The reader's body stage: the long bones and lumbar vertebrae of a whole-body AP radiograph.

The reader was trained on regional radiographs. A whole body squeezed into its 160 px square
is about 40 px wide, and the reader reads it poorly: the femur/tibia ratio of the probe's true
bodies comes out 0.25-0.66 off, and the lumbar field cut out of them shows 0 to 3 lumbar
vertebrae where there are 5 (docs/reader.md). Read in windows of a regional field it finds
the long bones near the kept knee of a grown body only, so it would measure the input.

The body stage reads the whole image at once at the shape of a standing body: the image is
padded to four rows per column (`fit_body`) and scaled to `BODY_SHAPE` (512 x 128 px), where
the probe's bodies have femora about 120 px long and lumbar vertebrae 9-11 px apart. A network
of the reader's own kind (`ReaderNet`, no label heads) segments the femur, tibia, fibula,
pelvis, sacrum and the thoracic and lumbar vertebrae and marks each lumbar vertebra's centre.

It is trained (`radsynth train-body-reader`) on the whole-body planes of phantom knees, drawn
as the probe draws its knee-to-body cases (`regional_plane(...).full_body`) at other knee
sizes, canvas widths, sexes and sides; every body is moved, scaled, mirrored, smoothed and its
contrast changed, so that a body grown by a model reads alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from radsynth.evaluate.anatomy import femur_tibia
from radsynth.evaluate.reader.case_cache import build_cases
from radsynth.evaluate.reader.groups import (
    COUNTED,
    heatmap_target,
    instance_points,
    segmentation_target,
)
from radsynth.evaluate.reader.groups import GROUPS as READER_GROUPS
from radsynth.evaluate.reader.inference import StructureMap, as_images, count_peaks, pad_to_square
from radsynth.evaluate.reader.model import ReaderConfig, ReaderNet
from radsynth.evaluate.reader.training import (
    TrainStageConfig,
    jitter_contrast,
    mask_and_centre_loss,
    train_stage,
)
from radsynth.phantoms.planes import regional_plane

BODY_SHAPE = (512, 128)  # rows, columns the stage reads: a standing body's shape
GROUPS = (
    "femur",
    "tibia",
    "fibula",
    "pelvis",
    "sacrum",
    "thoracic_vertebrae",
    "lumbar_vertebrae",
)
COUNTED_GROUP = "lumbar_vertebrae"
MAX_POINTS = 8  # lumbar vertebrae a case can hold (every phantom body shows 5)
KNEE_PX = (64, 160)  # the knee field's size the bodies are drawn at (the probe: 128 at 256)
WIDTH_FIELDS = (1.5, 3.0)  # the canvas's width in knee fields (the probe: 2)
SPLITS = {"train": 0, "heldout": 1}


@dataclass(frozen=True)
class Fit:
    """How an image was fitted into `BODY_SHAPE`: padding (rows on top, columns on the left)
    and the scale from the padded image to the stage's pixels."""

    top: int
    left: int
    scale: float
    padded: tuple[int, int]  # (rows, columns) of the padded image

    def to_stage(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) (row, col) in the image's pixels -> the stage's pixels."""
        offset = np.array([self.top, self.left], dtype=np.float64)
        return (np.asarray(points, dtype=np.float64) + offset + 0.5) * self.scale - 0.5


def fit_geometry(height: int, width: int) -> Fit:
    """The padding that brings a (height, width) image to `BODY_SHAPE`'s aspect (centred;
    the long side kept) and the scale from there to the stage's pixels."""
    rows, cols = BODY_SHAPE
    if height * cols >= width * rows:  # taller than a body: pad the columns
        padded_w = int(math.ceil(height * cols / rows))
        return Fit(0, (padded_w - width) // 2, rows / height, (height, padded_w))
    padded_h = int(math.ceil(width * rows / cols))
    return Fit((padded_h - height) // 2, 0, cols / width, (padded_h, width))


def fit_body(image: torch.Tensor) -> tuple[torch.Tensor, Fit]:
    """A (C, H, W) float image padded with zeros to `BODY_SHAPE`'s aspect and scaled to it
    (bilinear, antialiased), with the fit."""
    height, width = image.shape[-2:]
    fit = fit_geometry(height, width)
    padded_h, padded_w = fit.padded
    pad = (fit.left, padded_w - width - fit.left, fit.top, padded_h - height - fit.top)
    padded = F.pad(image[None], pad)
    fitted = F.interpolate(padded, size=BODY_SHAPE, mode="bilinear", antialias=True)
    return fitted[0], fit


def standing_strip(image: np.ndarray) -> np.ndarray:
    """The central columns of an (H, W) image wider than a standing body's canvas (a quarter
    of its height wide, the shape the stage reads), e.g. a square whole-body radiograph; the
    image itself otherwise."""
    height, width = image.shape[-2:]
    strip = int(math.ceil(height * BODY_SHAPE[1] / BODY_SHAPE[0]))
    if width <= strip:
        return image
    left = (width - strip) // 2
    return image[..., left : left + strip]


def body_config(widths: tuple[int, ...] = (16, 32, 64, 96)) -> ReaderConfig:
    """The body network: the reader's architecture with the body's groups, counting lumbar
    vertebrae, without label heads."""
    return ReaderConfig(
        size=BODY_SHAPE[1],
        widths=widths,
        heads={},
        findings=(),
        groups=GROUPS,
        counted=(COUNTED_GROUP,),
        lesion_maps=False,
    )


# -- training data ------------------------------------------------------------------------------
def _case_draw(seed: int, split: str, index: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, SPLITS[split], index, 11])
    knee_px = int(rng.integers(KNEE_PX[0], KNEE_PX[1] + 1))
    return {
        "seed": int(rng.integers(2**31)),
        "sex": str(rng.choice(("female", "male"))),
        "side": str(rng.choice(("left", "right"))),
        "knee_px": knee_px,
        "width": int(round(knee_px * rng.uniform(*WIDTH_FIELDS))),
        "min_width": int(rng.choice((0, 256))),
    }


def body_truth(masks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A whole-body phantom's answer key at its own pixels: (len(GROUPS), H, W) group masks and
    (N, 3) (row, col, radius) of each visible lumbar vertebra."""
    shape = next(iter(masks.values())).shape
    groups = segmentation_target(masks, shape)[[READER_GROUPS.index(g) for g in GROUPS]]
    points = np.asarray(instance_points(masks).get(COUNTED_GROUP, []), dtype=np.float64)
    return groups, points.reshape(-1, 3)


def fit_truth(groups: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The answer key (`body_truth`) of an image fitted into `BODY_SHAPE`: group masks (a stage
    pixel is in a group when at least a third of it is) and lumbar points (radius scaled)."""
    fitted, fit = fit_body(torch.from_numpy(groups.astype(np.float32)))
    moved = np.empty((len(points), 3))
    if len(points):
        moved[:, :2] = fit.to_stage(points[:, :2])
        moved[:, 2] = points[:, 2] * fit.scale
    return (fitted >= 1 / 3).numpy(), moved


def render_body_case(seed: int, split: str, index: int) -> dict[str, np.ndarray]:
    """One whole-body AP radiograph of a phantom, fitted into `BODY_SHAPE`: the 8-bit image,
    its group masks (bit-packed) and one (row, col, radius) per lumbar vertebra (NaN rows pad
    to MAX_POINTS)."""
    draw = _case_draw(seed, split, index)
    plane = regional_plane(draw["seed"], "knee", "ap", draw["side"], draw["sex"], draw["knee_px"])
    _, body, _ = plane.full_body(draw["width"], draw["min_width"])
    image = torch.from_numpy(body.image.astype(np.float32))[None]
    fitted, _ = fit_body(image)
    groups, points = body_truth(body.masks)
    masks, moved = fit_truth(groups, points)
    padded = np.full((MAX_POINTS, 3), np.nan, dtype=np.float32)
    padded[: min(MAX_POINTS, len(moved))] = moved[:MAX_POINTS]
    picture = np.clip(np.round(fitted[0].numpy() * 255), 0, 255).astype(np.uint8)
    return {"image": picture, "masks": np.packbits(masks, axis=None), "points": padded}


def build_body_cases(
    path: Path,
    seed: int,
    split: str,
    n: int,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """The first `n` whole-body cases of `split`, rendered once into `path` (an .npz, no
    pickle; see `case_cache.build_cases`): a file of another seed or split is refused."""
    meta = {
        "seed": seed,
        "split": split,
        "shape": list(BODY_SHAPE),
        "groups": list(GROUPS),
        "knee_px": list(KNEE_PX),
        "width_fields": list(WIDTH_FIELDS),
    }
    return build_cases(path, render_body_case, meta, n, workers, on_progress, "body cases")


def case_masks(data: dict[str, np.ndarray], i: int) -> np.ndarray:
    """Boolean (len(GROUPS), *BODY_SHAPE) group masks of cached case `i`."""
    size = len(GROUPS) * BODY_SHAPE[0] * BODY_SHAPE[1]
    return np.unpackbits(data["masks"][i])[:size].reshape(len(GROUPS), *BODY_SHAPE).astype(bool)


def case_points(data: dict[str, np.ndarray], i: int) -> np.ndarray:
    """(N, 3) lumbar points of cached case `i` (the NaN padding dropped)."""
    points = data["points"][i]
    return points[~np.isnan(points[:, 0])].astype(np.float64)


def _smooth(picture: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(math.ceil(2.5 * sigma))
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2) / 2 / sigma**2)
    taps = taps / taps.sum()
    x = F.pad(picture[None], (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, taps.reshape(1, 1, 1, -1))
    return F.conv2d(x, taps.reshape(1, 1, -1, 1))[0]


def training_example(
    data: dict[str, np.ndarray], i: int, rng: np.random.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image (1, H, W), group masks (len(GROUPS), H, W), lumbar heat map (1, H, W)) of case
    `i` at `BODY_SHAPE`. With `rng`, the body is moved (4 % of the height, 6 % of the width),
    scaled by 0.9-1.1, mirrored half the time, smoothed half the time (Gaussian sigma 0.5-2.5
    px) and its contrast changed (`jitter_contrast`)."""
    rows, cols = BODY_SHAPE
    picture = torch.from_numpy(data["image"][i].astype(np.float32) / 255.0)[None]
    masks = torch.from_numpy(case_masks(data, i).astype(np.float32))
    points = case_points(data, i)
    if rng is not None:
        scale = float(rng.uniform(0.9, 1.1))
        shift_r = float(rng.uniform(-0.04, 0.04)) * rows
        shift_c = float(rng.uniform(-0.06, 0.06)) * cols
        flip = bool(rng.random() < 0.5)
        # Output pixel p shows input pixel centre + (p - centre - shift) / scale (mirrored).
        centre_r, centre_c = (rows - 1) / 2, (cols - 1) / 2
        sign = -1.0 if flip else 1.0
        theta = torch.tensor(
            [
                [sign / scale, 0.0, -shift_c * 2 / cols / scale],
                [0.0, 1.0 / scale, -shift_r * 2 / rows / scale],
            ],
            dtype=torch.float32,
        )
        grid = F.affine_grid(theta[None], [1, 1, rows, cols], align_corners=False)
        stack = torch.cat([picture, masks])[None]
        moved = F.grid_sample(stack, grid, mode="bilinear", align_corners=False)[0]
        picture, masks = moved[:1], (moved[1:] >= 0.5).float()
        if len(points):
            r = centre_r + (points[:, 0] - centre_r) * scale + shift_r
            c = centre_c + (points[:, 1] - centre_c) * scale + shift_c
            c = (cols - 1) - c if flip else c
            points = np.stack([r, c, points[:, 2] * scale], axis=1)
        if rng.random() < 0.5:
            picture = _smooth(picture, float(rng.uniform(0.5, 2.5)))
        picture = jitter_contrast(picture, rng)
    inside = [
        (float(r), float(c), float(radius))
        for r, c, radius in points
        if 0 <= round(r) < rows and 0 <= round(c) < cols
    ]
    heat = heatmap_target({COUNTED_GROUP: inside}, BODY_SHAPE)[COUNTED.index(COUNTED_GROUP)]
    return picture.clamp(0, 1), masks, torch.from_numpy(heat)[None]


# -- training -----------------------------------------------------------------------------------
@dataclass
class TrainBodyConfig(TrainStageConfig):
    """One training run of the body stage (counts in cases)."""

    n: int = 1600  # what the shipped stage was trained on (train-body-reader --n)
    steps: int = 1500
    batch_size: int = 12
    widths: tuple[int, ...] = (16, 32, 64, 96)


def train_body_reader(
    config: TrainBodyConfig,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_cache: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Render (or reuse) the cases, train (resuming from a checkpoint in `config.out`) and
    save the body network (`reader.safetensors` + `config.json`, fp16) into `config.out`."""
    return train_stage(
        config,
        "train-body-reader",
        build_body_cases,
        lambda: ReaderNet(body_config(config.widths)),
        training_example,
        mask_and_centre_loss,
        on_step,
        on_cache,
    )


# -- reading ------------------------------------------------------------------------------------
class BodyStage:
    """A trained body network: the body's bone groups and lumbar vertebrae in a whole-body
    AP radiograph, read at `BODY_SHAPE`."""

    def __init__(self, net: ReaderNet) -> None:
        self.net = net.eval()
        self.groups = net.config.groups

    @torch.no_grad()
    def structures(self, images: Any, batch_size: int = 8) -> list[StructureMap]:
        """Per image ((H, W) or (B, H, W), any size; see `as_images`), the groups and lumbar
        centres it shows, in the stage's pixels (`BODY_SHAPE`: the image padded to four rows
        per column and scaled; lengths along the body keep their ratios)."""
        pictures = torch.from_numpy(as_images(images))
        fitted = torch.stack([fit_body(p[None])[0] for p in pictures])
        maps = []
        for start in range(0, len(fitted), batch_size):
            out = self.net(fitted[start : start + batch_size])
            seg = (out["segmentation"] > 0).numpy()
            heat = torch.sigmoid(out["centres"]).numpy()
            for k in range(len(seg)):
                masks = {g: seg[k, j] for j, g in enumerate(self.groups)}
                centres = {COUNTED_GROUP: count_peaks(heat[k, 0])}
                maps.append(StructureMap(masks, centres))
        return maps


READING_COLOURS = {"femur": (255, 64, 64), "tibia": (64, 255, 64)}  # lumbar centres: yellow


def draw_body_reading(image: np.ndarray, smap: StructureMap | None) -> np.ndarray:
    """(BODY_SHAPE, 3) uint8 RGB: a (H, W) float image in [0, 1] fitted as the stage reads it,
    with a stage map's femora (red), tibiae (green) and lumbar centres (yellow) drawn over it
    (the picture alone for `smap` None)."""
    fitted, _ = fit_body(torch.from_numpy(np.asarray(image, dtype=np.float32))[None])
    rgb = np.repeat(fitted[0].clamp(0, 1).numpy()[..., None] * 0.8, 3, axis=2)
    if smap is not None:
        for group, colour in READING_COLOURS.items():
            mask = smap.masks[group]
            rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.asarray(colour) / 255.0
    picture = np.round(rgb * 255).astype(np.uint8)
    for r, c in [] if smap is None else smap.centres.get(COUNTED_GROUP, []):
        picture[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2] = (255, 230, 0)
    return picture


def truth_map(groups: np.ndarray, points: np.ndarray) -> StructureMap:
    """The answer key of a fitted case as a structure map (its lumbar points as centres)."""
    masks = {g: groups[k] for k, g in enumerate(GROUPS)}
    centres = {COUNTED_GROUP: [(int(round(r)), int(round(c))) for r, c, _ in points]}
    return StructureMap(masks, centres)


def evaluate_body_stage(stage: BodyStage, data: dict[str, np.ndarray], base: Any) -> dict:
    """Held-out figures of the body stage beside the reader alone (`base`, reading the whole
    image padded to a square): the femur/tibia ratio's relative error against the answer key
    (median, 90th percentile, share within 5 %) and the share of bodies whose lumbar
    vertebrae are counted exactly."""
    images = data["image"].astype(np.float32) / 255.0
    staged = stage.structures(images)
    alone = base.structures(np.stack([pad_to_square(im)[0] for im in images]))
    rows: dict[str, list[tuple[float, bool]]] = {"with_stage": [], "reader_alone": []}
    for i in range(len(images)):
        truth = truth_map(case_masks(data, i), case_points(data, i))
        true_ratio = femur_tibia(truth)["ratio"]
        count = len(truth.centres[COUNTED_GROUP])
        for name, smap in (("with_stage", staged[i]), ("reader_alone", alone[i])):
            ratio = femur_tibia(smap)["ratio"]
            error = abs(ratio / true_ratio - 1) if ratio and true_ratio else 9.0
            rows[name].append((error, len(smap.centres[COUNTED_GROUP]) == count))
    out: dict[str, Any] = {"n": len(images)}
    for name, found in rows.items():
        errors = np.array([e for e, _ in found])
        out[name] = {
            "ratio_error_median": round(float(np.median(errors)), 4),
            "ratio_error_p90": round(float(np.quantile(errors, 0.9)), 4),
            "ratio_within_5_percent": round(float(np.mean(errors <= 0.05)), 4),
            "lumbar_count_exact": round(float(np.mean([ok for _, ok in found])), 4),
        }
    return out
