"""Metrics with known answers: each a pure function plus a class (`update(...)`, `compute()`).

- `frechet`: Fréchet distance between feature sets.
- `prdc`: precision, recall, density and coverage (Naeem et al. 2020).
- `ssim`: SSIM, MS-SSIM and MS-SSIM diversity among the images of one prompt.
- `conditional`: does a reader see what the prompt asked for (Wilson 95 % intervals).
- `memorization`: nearest training image by shifted pixel correlation and feature cosine.
- `masked_fidelity`: PSNR, SSIM and structure counts inside a filled region; classical
  inpainting baselines.

numpy and scipy only at import; scikit-image and OpenCV load when a function needs them.
"""

from __future__ import annotations

from radsynth.evaluate.metrics.conditional import (
    ConditionalAccuracy,
    Proportion,
    conditional_accuracy,
    wilson_interval,
)
from radsynth.evaluate.metrics.frechet import (
    FrechetDistance,
    frechet_distance,
    frechet_distance_from_stats,
)
from radsynth.evaluate.metrics.masked_fidelity import (
    BASELINES,
    MaskedRegionFidelity,
    count_bright_components,
    inpaint_biharmonic,
    inpaint_telea,
    masked_psnr,
    masked_region_fidelity,
    masked_ssim,
)
from radsynth.evaluate.metrics.memorization import (
    PIXEL_FLAG_THRESHOLD,
    MemorizationAudit,
    calibrate_threshold,
    feature_cosine,
    memorization_audit,
    nearest_neighbour_similarity,
    shifted_correlation,
)
from radsynth.evaluate.metrics.prdc import PRDC, PrecisionRecallDensityCoverage, prdc
from radsynth.evaluate.metrics.ssim import MSSSIMDiversity, ms_ssim, pairwise_ms_ssim, ssim

__all__ = [
    "BASELINES",
    "PIXEL_FLAG_THRESHOLD",
    "PRDC",
    "ConditionalAccuracy",
    "FrechetDistance",
    "MSSSIMDiversity",
    "MaskedRegionFidelity",
    "MemorizationAudit",
    "PrecisionRecallDensityCoverage",
    "Proportion",
    "calibrate_threshold",
    "conditional_accuracy",
    "count_bright_components",
    "feature_cosine",
    "frechet_distance",
    "frechet_distance_from_stats",
    "inpaint_biharmonic",
    "inpaint_telea",
    "masked_psnr",
    "masked_region_fidelity",
    "masked_ssim",
    "memorization_audit",
    "ms_ssim",
    "nearest_neighbour_similarity",
    "pairwise_ms_ssim",
    "prdc",
    "shifted_correlation",
    "ssim",
    "wilson_interval",
]
