"""Fidelity of an inpainted or outpainted region against the answer key, and classical baselines.

The phantoms give the true pixels under every erased area (inpainting) and past every border
(outpainting: `render_window` renders the larger field at the same spacing). With `mask` True
where pixels were filled in and data range L (1 for images in [0, 1]; uint8 and uint16 images
are scaled to [0, 1] first, other integer types and floats far off the scale of L are refused,
see `ssim.to_unit_scale`):

- PSNR inside the mask: 10 log10(L^2 / MSE), MSE averaged over the masked pixels only
  (infinite for a perfect fill);
- SSIM inside the mask: the SSIM map (Gaussian window, see `ssim.py`) averaged over the masked
  pixels; windows near the mask's edge also see the kept pixels around it, which is the context
  a fill must match;
- structure counts: a pluggable counter (image, mask) -> int, applied to the truth and to the
  fill, e.g. the reader's count of carpal bones in the region; `count_bright_components` is a
  simple classical stand-in.

Baselines take (image, mask) and return the filled image with pixels outside the mask kept:
`inpaint_biharmonic` (scikit-image; Damelin & Hoang 2018) and `inpaint_telea` (OpenCV; Telea,
J. Graphics Tools 2004).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.ndimage

from radsynth.evaluate.metrics.conditional import Proportion
from radsynth.evaluate.metrics.ssim import ssim_maps, to_unit_scale

__all__ = [
    "BASELINES",
    "MaskedRegionFidelity",
    "StructureCounter",
    "bounding_box",
    "count_bright_components",
    "inpaint_biharmonic",
    "inpaint_telea",
    "masked_psnr",
    "masked_region_fidelity",
    "masked_ssim",
]

StructureCounter = Callable[[np.ndarray, np.ndarray], int]


def _check(
    reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray, data_range: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The images as float64 (uint8/uint16 scaled to [0, 1], see `ssim.to_unit_scale`) and
    the mask as bool, checked to be 2-D arrays of one shape with a non-empty mask."""
    reconstruction = to_unit_scale(reconstruction, data_range, "reconstruction")
    truth = to_unit_scale(truth, data_range, "truth")
    mask = np.asarray(mask, dtype=bool)
    if reconstruction.shape != truth.shape or truth.shape != mask.shape or truth.ndim != 2:
        raise ValueError(
            f"reconstruction {reconstruction.shape}, truth {truth.shape} and mask {mask.shape} "
            "must be 2-D arrays of one shape"
        )
    if not mask.any():
        raise ValueError("the mask is empty: nothing was filled in to score")
    return reconstruction, truth, mask


def masked_psnr(
    reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray, data_range: float = 1.0
) -> float:
    """PSNR in dB over the masked pixels (inf when they are equal)."""
    reconstruction, truth, mask = _check(reconstruction, truth, mask, data_range)
    mse = float(np.mean((reconstruction[mask] - truth[mask]) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def masked_ssim(
    reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray, data_range: float = 1.0
) -> float:
    """Mean of the SSIM map over the masked pixels (1 when they and their context are equal)."""
    reconstruction, truth, mask = _check(reconstruction, truth, mask, data_range)
    ssim_map, _ = ssim_maps(reconstruction, truth, data_range, crop=False)
    return float(ssim_map[mask].mean())


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice]:
    """(rows, columns) slices of the smallest box holding the mask, grown by `margin` px and
    clipped to the image."""
    rows, cols = np.nonzero(np.asarray(mask, dtype=bool))
    if rows.size == 0:
        raise ValueError("the mask is empty: it has no bounding box")
    h, w = np.shape(mask)
    return (
        slice(max(0, rows.min() - margin), min(h, rows.max() + 1 + margin)),
        slice(max(0, cols.min() - margin), min(w, cols.max() + 1 + margin)),
    )


def count_bright_components(image: np.ndarray, mask: np.ndarray, min_area: int = 4) -> int:
    """Count bright blobs (bone-like structures) meeting the mask: Otsu threshold over the
    mask's bounding box (grown 2 px), connected components (8-connected) of at least `min_area`
    px that overlap the mask. A simple stand-in for the reader's anatomy counters."""
    from skimage.filters import threshold_otsu

    box = bounding_box(mask, margin=2)
    patch, patch_mask = np.asarray(image, np.float64)[box], np.asarray(mask, bool)[box]
    if np.ptp(patch) == 0:
        return 0
    bright = patch > threshold_otsu(patch)
    labels, n = scipy.ndimage.label(bright, structure=np.ones((3, 3)))
    if n == 0:
        return 0
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    touching = np.unique(labels[patch_mask & bright])
    return int(sum(1 for label in touching if label and areas[label] >= min_area))


def masked_region_fidelity(
    reconstruction: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray,
    counter: StructureCounter | None = count_bright_components,
    data_range: float = 1.0,
) -> dict[str, Any]:
    """PSNR and SSIM inside the mask, the same over its bounding box, and structure counts of
    truth and reconstruction (when a `counter` is given)."""
    reconstruction, truth, mask = _check(reconstruction, truth, mask, data_range)
    box_mask = np.zeros_like(mask)
    box_mask[bounding_box(mask)] = True
    result: dict[str, Any] = {
        "psnr_db": masked_psnr(reconstruction, truth, mask, data_range),
        "ssim": masked_ssim(reconstruction, truth, mask, data_range),
        "psnr_db_bbox": masked_psnr(reconstruction, truth, box_mask, data_range),
        "ssim_bbox": masked_ssim(reconstruction, truth, box_mask, data_range),
        "mse": float(np.mean((reconstruction[mask] - truth[mask]) ** 2)),
    }
    if counter is not None:
        true_count, filled_count = counter(truth, mask), counter(reconstruction, mask)
        result.update(
            count_truth=int(true_count),
            count_reconstruction=int(filled_count),
            count_match=bool(true_count == filled_count),
        )
    return result


def inpaint_biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the masked pixels by biharmonic interpolation (scikit-image); others are kept."""
    from skimage.restoration import inpaint_biharmonic as biharmonic

    image = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    filled = biharmonic(image, mask)
    return np.where(mask, filled, image)


def inpaint_telea(image: np.ndarray, mask: np.ndarray, radius: float = 3.0) -> np.ndarray:
    """Fill the masked pixels by Telea's fast marching method (OpenCV, neighbourhood `radius`
    px); others are kept.

    The pixels go through OpenCV as 16-bit integers spanning the kept pixels' range (a
    quantisation step of range / 65535): OpenCV 5.0's float32 path returns garbage here.
    """
    import cv2

    image = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    known = image[~mask] if (~mask).any() else image.ravel()
    low, high = float(known.min()), float(known.max())
    scale = (high - low) / 65535.0 or 1.0
    as_uint16 = np.round((np.clip(image, low, high) - low) / scale).astype(np.uint16)
    filled = cv2.inpaint(as_uint16, mask.astype(np.uint8), float(radius), cv2.INPAINT_TELEA)
    return np.where(mask, filled.astype(np.float64) * scale + low, image)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "biharmonic": inpaint_biharmonic,
    "telea": inpaint_telea,
}


class MaskedRegionFidelity:
    """Accumulating masked-region fidelity: `update(reconstruction, truth, mask)` per image
    (or batches (B, H, W)), then `compute()` for the aggregate and the per-image scores."""

    def __init__(
        self, counter: StructureCounter | None = count_bright_components, data_range: float = 1.0
    ) -> None:
        self.counter = counter
        self.data_range = data_range
        self.reset()

    def reset(self) -> None:
        """Forget all images."""
        self._scores: list[dict[str, Any]] = []

    def update(self, reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> None:
        """Score one image (H, W) or a batch (B, H, W)."""
        if np.ndim(truth) == 2:
            reconstruction, truth, mask = (
                np.asarray(a)[None] for a in (reconstruction, truth, mask)
            )
        for filled, true, region in zip(reconstruction, truth, mask, strict=True):
            self._scores.append(
                masked_region_fidelity(filled, true, region, self.counter, self.data_range)
            )

    def compute(self) -> dict[str, Any]:
        """n, pooled PSNR (from the mean MSE), median PSNR, mean SSIM, the share of images
        whose structure count matches the truth (Wilson interval), and `per_image`."""
        if not self._scores:
            raise ValueError("MaskedRegionFidelity has no images: call update first")
        mse = np.mean([s["mse"] for s in self._scores])
        result: dict[str, Any] = {
            "n": len(self._scores),
            "psnr_db_pooled": float("inf")
            if mse == 0
            else float(10 * np.log10(self.data_range**2 / mse)),
            "psnr_db_median": float(np.median([s["psnr_db"] for s in self._scores])),
            "ssim_mean": float(np.mean([s["ssim"] for s in self._scores])),
            "per_image": self._scores,
        }
        if self.counter is not None:
            matches = sum(s["count_match"] for s in self._scores)
            result["count_match"] = Proportion.of(matches, len(self._scores)).to_dict()
        return result
