"""SSIM against scikit-image, MS-SSIM known answers, and MS-SSIM diversity per prompt."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from radsynth.evaluate.metrics import MSSSIMDiversity, ms_ssim, pairwise_ms_ssim, ssim
from radsynth.evaluate.metrics.ssim import MS_SSIM_WEIGHTS, ms_ssim_scales, ssim_maps


def _pair(seed: int, shape=(48, 56), noise=0.1):
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    return x, np.clip(x + noise * rng.standard_normal(shape), 0, 1)


def test_ssim_matches_scikit_image_on_the_same_settings():
    for seed, noise in ((0, 0.05), (1, 0.2), (2, 0.5)):
        x, y = _pair(seed, noise=noise)
        expected = structural_similarity(
            x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert ssim(x, y) == pytest.approx(expected, abs=1e-10)


def test_ssim_of_a_batch_is_the_ssim_of_each_pair():
    x, y = _pair(3)
    batch = ssim(np.stack([x, y, x]), np.stack([y, y, x[::-1]]))
    assert batch == pytest.approx([ssim(x, y), 1.0, ssim(x, x[::-1])])


def test_identical_images_have_ms_ssim_one():
    x, _ = _pair(4, shape=(200, 180))
    assert ms_ssim(x, x) == pytest.approx(1.0)
    assert ms_ssim_scales(200, 180) == 5


def test_one_scale_ms_ssim_is_ssim_and_more_noise_scores_lower():
    x, y = _pair(5, shape=(64, 64))
    assert ms_ssim(x, y, scales=1) == pytest.approx(ssim(x, y))
    _, noisier = _pair(5, shape=(64, 64), noise=0.3)
    assert ms_ssim(x, noisier) < ms_ssim(x, y) < 1.0


def test_ms_ssim_on_constant_images_is_the_luminance_term_at_the_coarsest_scale():
    # Flat images: sigma = 0 so cs = 1 at every scale and SSIM = l = (2ab + C1)/(a^2 + b^2 + C1).
    a, b, c1 = 0.2, 0.6, 0.01**2
    expected = ((2 * a * b + c1) / (a * a + b * b + c1)) ** (
        MS_SSIM_WEIGHTS[4] / sum(MS_SSIM_WEIGHTS)
    )
    value = ms_ssim(np.full((176, 176), a), np.full((176, 176), b))
    assert value == pytest.approx(expected)


def test_small_images_use_fewer_scales_and_tiny_ones_are_refused():
    assert ms_ssim_scales(64, 64) == 3 and ms_ssim_scales(11, 11) == 1
    with pytest.raises(ValueError, match="at least 11 px"):
        ms_ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="1 to 3"):
        ms_ssim(np.zeros((64, 64)), np.zeros((64, 64)), scales=4)


def test_uncropped_maps_keep_the_image_size():
    x, y = _pair(6)
    full, _ = ssim_maps(x, y, crop=False)
    cropped, _ = ssim_maps(x, y)
    assert full.shape == x.shape and cropped.shape == (x.shape[0] - 10, x.shape[1] - 10)
    assert np.allclose(full[5:-5, 5:-5], cropped)


def test_diversity_per_prompt():
    rng = np.random.default_rng(7)
    same = np.repeat(rng.random((1, 64, 64)), 3, axis=0)
    varied = rng.random((4, 64, 64))
    metric = MSSSIMDiversity()
    metric.update(same, "An X-ray of the knee")
    metric.update(varied[:2], "An X-ray of the hand")
    metric.update(varied[2:], "An X-ray of the hand")
    metric.update(varied[0], "a prompt with one image")
    scores = metric.compute()
    knee, hand = (
        scores["per_prompt"]["An X-ray of the knee"],
        scores["per_prompt"]["An X-ray of the hand"],
    )
    assert knee["mean_ms_ssim"] == pytest.approx(1.0) and knee["diversity"] == pytest.approx(0.0)
    assert knee["pairs"] == 3 and hand["pairs"] == 6
    assert hand["mean_ms_ssim"] == pytest.approx(pairwise_ms_ssim(varied).mean())
    assert hand["diversity"] > 0.9  # independent uniform noise barely correlates
    assert "a prompt with one image" not in scores["per_prompt"]
    assert scores["pairs"] == 9
    assert scores["mean_ms_ssim"] == pytest.approx((3 * 1.0 + 6 * hand["mean_ms_ssim"]) / 9)
