"""SSIM and multi-scale SSIM, and MS-SSIM diversity among the images of one prompt.

SSIM (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 2004) with the usual Gaussian window (sigma 1.5
px, 11 taps) and constants C1 = (0.01 L)^2, C2 = (0.03 L)^2 for data range L:

    l(x, y)  = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    cs(x, y) = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)
    SSIM     = mean over the window positions of l * cs

MS-SSIM (Wang, Simoncelli & Bovik, Asilomar 2003) halves the images M - 1 times (2x2 mean) and
combines the contrast-structure term of every scale with the full SSIM of the coarsest:

    MS-SSIM = SSIM_M^w_M * prod_{j<M} cs_j^w_j,   w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

Negative terms are clipped at 0 before the powers. The 5 scales need images of at least
11 * 2^4 = 176 px; smaller images use as many scales as fit (the coarsest at least 11 px) with
the first weights renormalised to sum 1, and `ms_ssim` says how many in `scales_used`.

Inputs: float images on the scale of `data_range` (default 1: images in [0, 1]); uint8 and
uint16 images are scaled to [0, 1] first (/255, /65535; leave `data_range` at 1), bool images
read as 0/1, other integer types are refused. Float images whose values span more than
1.5 x `data_range` (e.g. 0..255 data with the default range, which would give meaningless
scores) are refused; a small overshoot, as an interpolation's, is scored as it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable

import numpy as np
import scipy.ndimage

__all__ = [
    "MSSSIMDiversity",
    "MS_SSIM_WEIGHTS",
    "ms_ssim",
    "ms_ssim_scales",
    "pairwise_ms_ssim",
    "ssim",
    "to_unit_scale",
    "ssim_maps",
]

MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
GAUSSIAN_SIGMA = 1.5  # px, Wang et al. 2004
TRUNCATE = 3.5  # kernel radius int(3.5 * 1.5 + 0.5) = 5 px: 11 taps, as in scikit-image
K1, K2 = 0.01, 0.03


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = int(TRUNCATE * sigma + 0.5)
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    return kernel / kernel.sum()


def _window_mean(x: np.ndarray, kernel: np.ndarray, crop: bool) -> np.ndarray:
    """Gaussian-weighted local mean over the last two axes; `crop` keeps only the positions
    where the whole window lies inside the image (no padding involved)."""
    out = scipy.ndimage.correlate1d(x, kernel, axis=-1, mode="reflect")
    out = scipy.ndimage.correlate1d(out, kernel, axis=-2, mode="reflect")
    if crop:
        r = kernel.size // 2
        out = out[..., r : out.shape[-2] - r, r : out.shape[-1] - r]
    return out


def ssim_maps(
    x: np.ndarray,
    y: np.ndarray,
    data_range: float = 1.0,
    sigma: float = GAUSSIAN_SIGMA,
    crop: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel SSIM and contrast-structure maps of images (..., H, W), float64.

    `crop=True` returns only the window positions inside the image (what `ssim` averages);
    `crop=False` returns full-size maps with reflected borders (used to average over a mask).
    """
    x, y = _check_pair(x, y, data_range)
    kernel = _gaussian_kernel(sigma)
    if min(x.shape[-2:]) < kernel.size:
        raise ValueError(
            f"SSIM needs images of at least {kernel.size} px a side, got {x.shape[-2:]}"
        )
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_x, mu_y = _window_mean(x, kernel, crop), _window_mean(y, kernel, crop)
    var_x = _window_mean(x * x, kernel, crop) - mu_x**2
    var_y = _window_mean(y * y, kernel, crop) - mu_y**2
    cov = _window_mean(x * y, kernel, crop) - mu_x * mu_y
    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return luminance * cs, cs


def ssim(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> np.ndarray | float:
    """Mean SSIM of images (H, W) or batches (B, H, W); a float for one pair. Images are
    float on the scale of `data_range` (default [0, 1]) or uint8/uint16, scaled to [0, 1].

    Matches `skimage.metrics.structural_similarity(x, y, data_range=L, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)`.
    """
    ssim_map, _ = ssim_maps(x, y, data_range)
    values = ssim_map.mean(axis=(-2, -1))
    return float(values) if np.ndim(values) == 0 else values


def ms_ssim_scales(height: int, width: int, max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """How many MS-SSIM scales fit an image: the coarsest must be at least 11 px a side."""
    window = _gaussian_kernel(GAUSSIAN_SIGMA).size
    scales = 0
    side = min(height, width)
    while scales < max_scales and side >= window:
        scales += 1
        side //= 2
    if scales == 0:
        raise ValueError(f"MS-SSIM needs images of at least {window} px a side")
    return scales


def _halve(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return 0.25 * (
        x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]
    )


def ms_ssim(
    x: np.ndarray, y: np.ndarray, data_range: float = 1.0, scales: int | None = None
) -> np.ndarray | float:
    """MS-SSIM of images (H, W) or batches (B, H, W) (formula in the module doc).

    `scales` defaults to as many of the 5 as the image size allows (`ms_ssim_scales`).
    """
    x, y = _check_pair(x, y, data_range)
    fit = ms_ssim_scales(*x.shape[-2:])
    scales = fit if scales is None else scales
    if not 1 <= scales <= fit:
        raise ValueError(f"{x.shape[-2:]} images fit 1 to {fit} MS-SSIM scales, asked {scales}")
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()
    value = np.ones(x.shape[:-2])
    for j in range(scales):
        ssim_map, cs_map = ssim_maps(x, y, data_range)
        term = ssim_map if j == scales - 1 else cs_map
        value = value * np.maximum(term.mean(axis=(-2, -1)), 0.0) ** weights[j]
        x, y = _halve(x), _halve(y)
    return float(value) if np.ndim(value) == 0 else value


def pairwise_ms_ssim(images: np.ndarray, data_range: float = 1.0, chunk: int = 64) -> np.ndarray:
    """MS-SSIM of every unordered pair of images (N, H, W): a vector of N (N - 1) / 2 values."""
    images = to_unit_scale(images, data_range)
    if images.ndim != 3:
        raise ValueError(f"pairwise_ms_ssim takes images (N, H, W), got {images.shape}")
    first, second = np.triu_indices(images.shape[0], k=1)
    values = [
        np.atleast_1d(
            ms_ssim(images[first[s : s + chunk]], images[second[s : s + chunk]], data_range)
        )
        for s in range(0, first.size, chunk)
    ]
    return np.concatenate(values) if values else np.zeros(0)


# Float values may span this many times `data_range` (an interpolation's overshoot) before
# they are refused as data on another scale.
RANGE_MARGIN = 1.5


def to_unit_scale(images: np.ndarray, data_range: float = 1.0, name: str = "images") -> np.ndarray:
    """`images` as float64 for the metrics: uint8 /255 and uint16 /65535 (to [0, 1], so
    `data_range` must be 1), bool as 0/1, floats as they are (on the scale of `data_range`).
    Refuses other integer types, non-finite values and floats spanning more than
    RANGE_MARGIN x `data_range`."""
    array = np.asarray(images)
    if not data_range > 0 or not np.isfinite(data_range):
        raise ValueError(f"data_range must be a positive number, got {data_range}")
    if array.dtype in (np.uint8, np.uint16):
        if data_range != 1.0:
            raise ValueError(
                f"{name} are {array.dtype}, which the metrics scale to [0, 1] "
                f"(/{np.iinfo(array.dtype).max}): leave data_range at 1, got {data_range}"
            )
        return array.astype(np.float64) / float(np.iinfo(array.dtype).max)
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{name} must be float (in [0, 1] for the default data_range 1), uint8 or uint16, "
            f"got {array.dtype}: scale them to float in [0, 1] first"
        )
    array = array.astype(np.float64)
    _check_span(array, data_range, name)
    return array


def _check_span(array: np.ndarray, data_range: float, name: str) -> None:
    if not array.size:
        return
    if not np.isfinite(array).all():
        raise ValueError(f"{name} hold NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if high - low > RANGE_MARGIN * data_range:
        raise ValueError(
            f"{name} span {low:.4g}..{high:.4g}, far more than data_range {data_range:g}: "
            "scale the images to [0, 1] (or pass the data_range they are on)"
        )


def _check_pair(
    x: np.ndarray, y: np.ndarray, data_range: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    x, y = to_unit_scale(x, data_range), to_unit_scale(y, data_range)
    if x.shape != y.shape or x.ndim < 2:
        raise ValueError(f"SSIM compares images of one shape, got {x.shape} and {y.shape}")
    _check_span(np.concatenate([x.ravel(), y.ravel()]), data_range, "the two images together")
    return x, y


class MSSSIMDiversity:
    """Diversity of the images generated for each prompt, from pairwise MS-SSIM.

    `update(images, prompt)` adds images (N, H, W) in [0, 1] under a prompt (any hashable key);
    `compute()` reports, per prompt with at least two images and over all pairs of all prompts,
    the mean pairwise MS-SSIM (1 = all images identical) and the diversity 1 - mean MS-SSIM
    (0 = no diversity). Images of different prompts are never compared.
    """

    def __init__(self, data_range: float = 1.0) -> None:
        self.data_range = data_range
        self.reset()

    def reset(self) -> None:
        """Forget all images."""
        self._groups: dict[Hashable, list[np.ndarray]] = defaultdict(list)

    def update(self, images: np.ndarray, prompt: Hashable = "") -> None:
        """Add images (N, H, W) or one image (H, W) generated for `prompt` (float on the scale
        of `data_range`, or uint8/uint16, scaled to [0, 1])."""
        images = to_unit_scale(images, self.data_range)
        self._groups[prompt].extend(images[None] if images.ndim == 2 else images)

    def compute(self) -> dict[str, object]:
        """`per_prompt`: {prompt: {n, pairs, mean_ms_ssim, diversity}}; overall pair-weighted
        `mean_ms_ssim` and `diversity` (None when no prompt has two images)."""
        per_prompt: dict[str, dict[str, float | int]] = {}
        all_values = []
        for prompt, images in self._groups.items():
            if len(images) < 2:
                continue
            values = pairwise_ms_ssim(np.stack(images), self.data_range)
            all_values.append(values)
            mean = float(values.mean())
            per_prompt[str(prompt)] = {
                "n": len(images),
                "pairs": int(values.size),
                "mean_ms_ssim": mean,
                "diversity": 1.0 - mean,
            }
        if not all_values:
            return {"per_prompt": {}, "mean_ms_ssim": None, "diversity": None, "pairs": 0}
        pooled = np.concatenate(all_values)
        return {
            "per_prompt": per_prompt,
            "mean_ms_ssim": float(pooled.mean()),
            "diversity": float(1.0 - pooled.mean()),
            "pairs": int(pooled.size),
        }
