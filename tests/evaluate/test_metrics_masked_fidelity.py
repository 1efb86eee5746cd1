"""Masked-region fidelity and the classical inpainting baselines."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.metrics import (
    BASELINES,
    MaskedRegionFidelity,
    count_bright_components,
    masked_psnr,
    masked_region_fidelity,
    masked_ssim,
)
from radsynth.evaluate.metrics.masked_fidelity import bounding_box


def _box_mask(shape=(48, 48), rows=slice(16, 32), cols=slice(12, 36)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_perfect_reconstruction():
    truth = np.random.default_rng(0).random((48, 48))
    mask = _box_mask()
    assert masked_psnr(truth, truth, mask) == float("inf")
    assert masked_ssim(truth, truth, mask) == pytest.approx(1.0)
    scores = masked_region_fidelity(truth.copy(), truth, mask)
    assert scores["count_match"] and scores["ssim_bbox"] == pytest.approx(1.0)


def test_psnr_of_known_noise_matches_the_analytic_value():
    rng = np.random.default_rng(1)
    truth = np.full((128, 128), 0.5)
    sigma = 0.05  # 3 sd stay inside [0, 1], so no clipping
    noisy = truth + sigma * rng.standard_normal(truth.shape)
    mask = _box_mask((128, 128), slice(0, 128), slice(0, 64))
    expected = 10 * np.log10(1 / sigma**2)  # 26.02 dB
    assert masked_psnr(noisy, truth, mask) == pytest.approx(expected, abs=0.1)
    # Noise outside the mask does not count.
    noisy[~mask] = 0.0
    assert masked_psnr(noisy, truth, mask) == pytest.approx(expected, abs=0.1)


def test_psnr_counts_only_the_masked_pixels_exactly():
    truth = np.zeros((16, 16))
    filled = truth.copy()
    mask = _box_mask((16, 16), slice(4, 8), slice(4, 8))
    filled[4:8, 4:6] = 0.1  # half of the 16 masked pixels off by 0.1: MSE 0.005
    assert masked_psnr(filled, truth, mask) == pytest.approx(10 * np.log10(1 / 0.005))


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_reproduce_a_smooth_gradient_inside_a_hole(name):
    y, x = np.mgrid[0:64, 0:64] / 63.0
    truth = 0.2 + 0.5 * x + 0.2 * y  # a linear ramp, 0.2 to 0.9
    mask = _box_mask((64, 64), slice(24, 40), slice(20, 44))
    damaged = truth.copy()
    damaged[mask] = 0.0
    filled = BASELINES[name](damaged, mask)
    assert np.array_equal(filled[~mask], truth[~mask])  # pixels outside the mask are kept
    error = np.abs(filled[mask] - truth[mask])
    if name == "biharmonic":  # a linear ramp is biharmonic: reproduced to rounding
        assert error.max() < 1e-9
    else:  # Telea's fast marching extrapolates to first order from the hole's rim
        assert error.mean() < 0.02 and error.max() < 0.06
    assert masked_psnr(filled, truth, mask) > 30


def test_the_structure_counter_counts_bright_blobs_and_sees_a_missing_one():
    image = np.zeros((64, 64))
    yy, xx = np.mgrid[0:64, 0:64]
    for cy, cx in ((20, 16), (20, 32), (20, 48)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] = 0.9
    mask = _box_mask((64, 64), slice(10, 30), slice(8, 56))
    assert count_bright_components(image, mask) == 3
    erased = image.copy()
    erased[14:27, 42:55] = 0.0
    scores = masked_region_fidelity(erased, image, mask)
    assert (scores["count_truth"], scores["count_reconstruction"], scores["count_match"]) == (
        3,
        2,
        False,
    )
    assert scores["psnr_db"] < scores["psnr_db_bbox"] or scores["psnr_db"] == pytest.approx(
        scores["psnr_db_bbox"]
    )


def test_a_pluggable_counter_and_the_accumulating_class():
    truth = np.random.default_rng(2).random((2, 32, 32))
    masks = np.stack([_box_mask((32, 32), slice(8, 20), slice(8, 20))] * 2)
    filled = truth.copy()
    filled[1][masks[1]] += 0.1
    metric = MaskedRegionFidelity(counter=lambda image, mask: int(image[mask].mean() > 0.55))
    metric.update(filled, truth, masks)
    scores = metric.compute()
    assert scores["n"] == 2
    # Pooled PSNR from the mean MSE: (0 + 0.01) / 2.
    assert scores["psnr_db_pooled"] == pytest.approx(10 * np.log10(1 / 0.005))
    assert scores["count_match"]["n"] == 2
    assert bounding_box(masks[0], margin=2) == (slice(6, 22), slice(6, 22))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="empty"):
        masked_psnr(np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="one shape"):
        masked_psnr(np.zeros((8, 8)), np.zeros((8, 9)), np.ones((8, 8), bool))
