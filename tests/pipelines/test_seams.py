"""Poisson blending of a regenerated area into the pixels kept around it."""

from __future__ import annotations

import numpy as np
import torch

from radsynth.models import DiffusionComponents
from radsynth.pipelines import InpaintPipeline
from radsynth.pipelines.seams import SeamSystem, blend_seams, poisson_offset_blend


def ramp_and_mask() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:40, 0:48].astype(np.float64)
    mask = np.zeros((40, 48), dtype=bool)
    mask[10:30, 12:36] = True
    return 0.1 + 0.01 * y + 0.005 * x, mask


def edge_step(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean |step| between regenerated pixels and their kept neighbours."""
    steps = []
    for axis in (0, 1):
        for shift in (1, -1):
            neighbour = np.roll(image, shift, axis)
            edge = mask & ~np.roll(mask, shift, axis)
            steps.append(np.abs(image - neighbour)[edge])
    return float(np.concatenate(steps).mean())


def test_a_constant_mismatch_is_removed_exactly() -> None:
    original, mask = ramp_and_mask()
    generated = np.where(mask, original + 0.3, 0.0)  # right gradients, wrong level
    blended = poisson_offset_blend(generated, original, mask)
    np.testing.assert_allclose(blended, original, atol=1e-9)


def test_detail_inside_the_area_is_kept() -> None:
    original, mask = ramp_and_mask()
    y, x = np.mgrid[0:40, 0:48]
    bump = 0.2 * (((y - 20) ** 2 + (x - 24) ** 2) < 16)  # well inside the mask
    generated = np.where(mask, original + bump, 0.0)
    blended = poisson_offset_blend(generated, original, mask)
    np.testing.assert_allclose(blended[mask], (original + bump)[mask], atol=1e-9)
    assert np.array_equal(blended[~mask], original[~mask])


def test_one_factorization_serves_a_batch() -> None:
    # The images of a batch share the mask's system; each must get its own offset field, as
    # if blended alone, whatever the order.
    original, mask = ramp_and_mask()
    rng = np.random.default_rng(1)
    mask |= rng.random(mask.shape) < 0.2  # ragged edges and lone pixels too
    drawn = rng.random((3, *mask.shape))
    kept = rng.random((3, *mask.shape))
    system = SeamSystem(mask)
    together = [system.blend(d, k) for d, k in zip(drawn[::-1], kept[::-1], strict=True)][::-1]
    for d, k, blended in zip(drawn, kept, together, strict=True):
        alone = poisson_offset_blend(d, k, mask)
        np.testing.assert_allclose(blended, alone, atol=1e-12)
        assert np.array_equal(blended[~mask], k[~mask])
    assert not np.allclose(together[0], together[1])


def test_no_kept_pixel_or_no_mask_leave_the_image_alone() -> None:
    original, mask = ramp_and_mask()
    noise = np.random.default_rng(0).random(original.shape)
    assert np.array_equal(poisson_offset_blend(noise, original, np.ones_like(mask)), noise)
    assert np.array_equal(poisson_offset_blend(noise, original, np.zeros_like(mask)), original)
    batch = blend_seams(
        torch.from_numpy(np.stack([noise, noise])[:, None]).float(),
        torch.from_numpy(original[None, None]).float(),
        torch.from_numpy(mask[None, None]),
    )
    assert batch.shape == (2, 1, 40, 48) and float(batch.min()) >= 0 and float(batch.max()) <= 1


def test_inpainting_blends_its_edge_and_keeps_the_rest(
    tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    pipe = InpaintPipeline(tiny)
    pipe.set_progress_bar_config(disable=True)

    def run() -> np.ndarray:
        generator = torch.Generator().manual_seed(0)
        return np.asarray(pipe("PA chest radiograph", image, box_mask, generator=generator).images)

    blended = run()[0]
    pipe.seamless = False
    raw = run()[0]
    mask = box_mask > 0.5
    assert np.array_equal(blended[~mask], image[~mask]) and np.array_equal(raw[~mask], image[~mask])
    assert edge_step(blended, mask) < 0.5 * edge_step(raw, mask)  # the random model's step
