"""SSIM, MS-SSIM and masked-region fidelity read integer images on their own scale and refuse
data they would score meaninglessly."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.metrics import (
    MaskedRegionFidelity,
    MSSSIMDiversity,
    masked_psnr,
    masked_region_fidelity,
    masked_ssim,
    ms_ssim,
    pairwise_ms_ssim,
    ssim,
)


def _pair(shape: tuple[int, int] = (64, 64)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random(shape)
    return x, np.clip(x + 0.1 * rng.standard_normal(shape), 0.0, 1.0)


def _as(images: np.ndarray, dtype: type) -> np.ndarray:
    return np.round(images * np.iinfo(dtype).max).astype(dtype)


def _mask(shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[16:40, 20:44] = True
    return mask


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_images_score_as_the_same_images_in_float(dtype: type) -> None:
    x, y = _pair((180, 180))
    xi, yi = _as(x, dtype), _as(y, dtype)
    top = float(np.iinfo(dtype).max)
    xf, yf = xi / top, yi / top  # the same pixels as float in [0, 1]
    assert ssim(xi, yi) == pytest.approx(ssim(xf, yf), abs=1e-12)
    assert ssim(xi, yi) > 0.3  # not the ~0.05 of 0..255 values read with data range 1
    assert ms_ssim(xi, yi) == pytest.approx(ms_ssim(xf, yf), abs=1e-12)
    stack = np.stack([xi, yi, xi[::-1]])
    np.testing.assert_allclose(pairwise_ms_ssim(stack), pairwise_ms_ssim(stack / top), atol=1e-12)
    mask = _mask((180, 180))
    assert masked_psnr(xi, yi, mask) == pytest.approx(masked_psnr(xf, yf, mask), abs=1e-9)
    assert masked_psnr(xi, yi, mask) > 10.0  # not -34 dB
    assert masked_ssim(xi, yi, mask) == pytest.approx(masked_ssim(xf, yf, mask), abs=1e-12)
    scores = masked_region_fidelity(xi, yi, mask, counter=None)
    assert scores["mse"] == pytest.approx(np.mean((xf[mask] - yf[mask]) ** 2))


def test_diversity_of_integer_images_matches_float() -> None:
    x, y = _pair()
    eight = np.stack([_as(x, np.uint8), _as(y, np.uint8)])
    as_float, as_uint8 = MSSSIMDiversity(), MSSSIMDiversity()
    as_float.update(eight / 255.0)
    as_uint8.update(eight)
    assert as_uint8.compute()["mean_ms_ssim"] == pytest.approx(
        as_float.compute()["mean_ms_ssim"], abs=1e-12
    )


def test_integer_images_with_another_data_range_are_refused() -> None:
    x, y = _pair()
    with pytest.raises(ValueError, match="leave data_range at 1"):
        ssim(_as(x, np.uint8), _as(y, np.uint8), data_range=255.0)
    with pytest.raises(ValueError, match="leave data_range at 1"):
        MaskedRegionFidelity(counter=None, data_range=255.0).update(
            _as(x, np.uint8), _as(y, np.uint8), _mask()
        )


def test_other_integer_types_and_off_scale_floats_are_refused() -> None:
    x, y = _pair()
    for dtype in (np.int16, np.int32, np.int64):
        with pytest.raises(ValueError, match="float .*uint8 or uint16, got int"):
            ssim(np.round(x * 255).astype(dtype), np.round(y * 255).astype(dtype))
        with pytest.raises(ValueError, match="float .*uint8 or uint16, got int"):
            masked_psnr(np.round(x * 255).astype(dtype), y, _mask())
    with pytest.raises(ValueError, match="far more than data_range 1"):
        ssim(x * 255.0, y * 255.0)
    with pytest.raises(ValueError, match="far more than data_range 1"):
        ms_ssim(x * 255.0, y)  # each in range alone, not together
    with pytest.raises(ValueError, match="far more than data_range 1"):
        masked_region_fidelity(x * 255.0, y * 255.0, _mask(), counter=None)
    with pytest.raises(ValueError, match="NaN or infinite"):
        ssim(np.where(x > 0.5, np.nan, x), y)
    # Floats on their own data range, and a small overshoot, are scored as they are.
    assert ssim(x * 255.0, y * 255.0, data_range=255.0) == pytest.approx(ssim(x, y))
    assert np.isfinite(masked_psnr(x * 1.05 - 0.02, y, _mask()))
