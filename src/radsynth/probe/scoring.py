"""Scoring pieces of the probe that do not need a model: what the reader sees inside a filled
region, femur/tibia proportions of a full-body radiograph, and the answer-key windows.

Each works on a reconstruction and its truth; passing the truth through as the reconstruction
gives the perfect scores (PSNR inf, SSIM 1, the true ratio), which the tests check.

The pieces the reader's body stage needs as well live in the layers below and are re-exported
here: `bone_length` and `femur_tibia` (radsynth.evaluate.anatomy), `pad_to_square`
(radsynth.evaluate.reader.inference), `RegionalPlane` and `regional_plane`
(radsynth.phantoms.planes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from radsynth.evaluate.anatomy import bone_length, femur_tibia
from radsynth.evaluate.metrics.masked_fidelity import (
    count_bright_components,
    inpaint_biharmonic,
    masked_region_fidelity,
)
from radsynth.evaluate.reader.inference import StructureMap, pad_to_square
from radsynth.phantoms.planes import RegionalPlane, regional_plane

__all__ = [
    "ReaderStructureCounter",
    "RegionalPlane",
    "bone_length",
    "central_mask",
    "femur_tibia",
    "read_in_windows",
    "read_in_windows_averaged",
    "pad_to_square",
    "regional_plane",
    "resize_mask",
    "score_extension",
    "score_inpainting",
]

# A structure group counts as restored inside a filled region when the reader's mask covers
# this share of the region (and at least 4 px at the reader's size).
GROUP_SHARE_IN_REGION = 0.02


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a boolean mask (pixel centres sampled)."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.minimum((np.arange(shape[0]) + 0.5) * mask.shape[0] / shape[0], mask.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * mask.shape[1] / shape[1], mask.shape[1] - 1)
    return mask[rows.astype(int)][:, cols.astype(int)]


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear, antialiased resize of a float image."""
    tensor = torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None]
    if tuple(tensor.shape[-2:]) == tuple(shape):
        return np.asarray(image, dtype=np.float32)
    return F.interpolate(tensor, size=shape, mode="bilinear", antialias=True)[0, 0].numpy()


class ReaderStructureCounter:
    """Counts the structure groups the reader sees inside a region: a `StructureCounter`
    (image, mask) -> int for `masked_region_fidelity`. `groups(image, mask)` names them."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def groups(self, image: np.ndarray, mask: np.ndarray) -> list[str]:
        smap = self.reader.structures(np.asarray(image, dtype=np.float32))[0]
        region = resize_mask(mask, smap.shape)
        need = max(4.0, GROUP_SHARE_IN_REGION * float(region.sum()))
        return sorted(g for g, m in smap.masks.items() if float((m & region).sum()) >= need)

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> int:
        return len(self.groups(image, mask))


def central_mask(size: int, fraction: float = 0.375) -> np.ndarray:
    """A central square of side `fraction` x size: the area erased in Figure 3."""
    side = max(2, int(round(size * fraction)))
    start = (size - side) // 2
    mask = np.zeros((size, size), dtype=bool)
    mask[start : start + side, start : start + side] = True
    return mask


def score_inpainting(
    reconstruction: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray,
    counter: Any = count_bright_components,
    baseline: bool = True,
) -> dict[str, Any]:
    """Figure 3: PSNR/SSIM inside the mask and structure counts of the reconstruction against
    the truth, with the biharmonic baseline scored the same way (`baseline`)."""
    result: dict[str, Any] = {"model": masked_region_fidelity(reconstruction, truth, mask, counter)}
    if isinstance(counter, ReaderStructureCounter):
        result["model"]["groups_truth"] = counter.groups(truth, mask)
        result["model"]["groups_reconstruction"] = counter.groups(reconstruction, mask)
    if baseline:
        filled = inpaint_biharmonic(np.where(mask, 0.0, truth), mask)
        result["biharmonic"] = masked_region_fidelity(filled, truth, mask, counter)
        result["biharmonic_image"] = filled
    return result


def score_extension(
    grown: np.ndarray, truth: np.ndarray, known: np.ndarray, counter: Any = count_bright_components
) -> dict[str, Any]:
    """Figure 4: the extension (pixels outside `known`) against the same body's true
    projection: PSNR, SSIM and structure counts over the extension."""
    return masked_region_fidelity(grown, truth, ~np.asarray(known, dtype=bool), counter)


def _window_corners(height: int, width: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of square windows of `side` px half a window apart that cover an
    image, the last row and column of windows flush with its far edges."""
    stride = max(1, side // 2)
    rows = sorted({*range(0, height - side + 1, stride), height - side})
    cols = sorted({*range(0, width - side + 1, stride), width - side})
    return [(r, c) for r in rows for c in cols]


def read_in_windows(reader: Any, image: np.ndarray, window: int | None = None) -> StructureMap:
    """The reader's structure map of a large (tall) image, read in overlapping square windows
    of the image's width (or `window` px) half a window apart: each window is read at the
    reader's size and its group masks are resized back and OR-ed into one full-size map, so a
    full body is read at the scale of regional radiographs rather than squeezed into one
    160 px image. Bone centres are mapped back likewise."""
    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape
    side = min(window or w, h, w)
    corners = _window_corners(h, w, side)
    maps = reader.structures(np.stack([image[r : r + side, c : c + side] for r, c in corners]))
    masks: dict[str, np.ndarray] = {}
    centres: dict[str, list[tuple[int, int]]] = {}
    for (r, c), smap in zip(corners, maps, strict=True):
        scale = side / smap.shape[0]
        for group, mask in smap.masks.items():
            full = masks.setdefault(group, np.zeros((h, w), dtype=bool))
            full[r : r + side, c : c + side] |= resize_mask(mask, (side, side))
        for group, points in smap.centres.items():
            centres.setdefault(group, []).extend(
                (int(r + y * scale), int(c + x * scale)) for y, x in points
            )
    return StructureMap(masks, centres)


def read_in_windows_averaged(reader: Any, image: np.ndarray, window: int) -> StructureMap:
    """The reader's structure masks of a large image from overlapping square windows of
    `window` px, half a window apart, each read at the reader's size: their logits are resized
    back and averaged under a Gaussian weight centred on each window (the usual sliding-window
    segmentation), so a group is seen where most windows that look at a pixel near their
    centre see it, rather than where any window does. With `window` the field of a regional
    radiograph at the image's spacing, every window is read at the scale the reader knows.
    Masks only (no bone centres)."""
    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape
    side = min(window, h, w)
    corners = _window_corners(h, w, side)
    logits = torch.from_numpy(
        reader.segmentation_logits(
            np.stack([image[r : r + side, c : c + side] for r, c in corners])
        )
    )
    logits = F.interpolate(logits, size=(side, side), mode="bilinear")
    axis = torch.linspace(-1.0, 1.0, side)
    bell = torch.exp(-(axis**2) / (2 * 0.5**2))
    weight = bell[:, None] * bell[None, :]
    total = torch.zeros(logits.shape[1], h, w)
    norm = torch.zeros(h, w)
    for (r, c), window_logits in zip(corners, logits, strict=True):
        total[:, r : r + side, c : c + side] += window_logits * weight
        norm[r : r + side, c : c + side] += weight
    mean = (total / norm).numpy()
    groups = reader.config.groups
    return StructureMap({group: mean[k] > 0 for k, group in enumerate(groups)}, {})
