"""Masked pipelines on images of any size through a copy at the model's scale."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pytest
import torch

from radsynth.models import DiffusionComponents
from radsynth.pipelines import (
    EditPipeline,
    InpaintPipeline,
    OutpaintPipeline,
    fit_plan,
    outpaint_at_model_scale,
    run_at_model_scale,
)
from radsynth.pipelines.pipeline_base import RadiologyPipeline

P = TypeVar("P", bound=RadiologyPipeline)


def test_fit_plan_keeps_the_aspect_and_pads_to_the_step() -> None:
    chest = fit_plan(1955, 1841, native=256, step=32)  # a real CR's rows and columns
    assert chest.scaled == (256, 241) and chest.padded == (256, 256)
    strip = fit_plan(40, 2000, native=256, step=32)
    assert strip.scaled == (5, 256) and strip.padded == (32, 256)
    small = fit_plan(100, 50, native=256, step=8)  # a small image is enlarged to the scale
    assert small.scaled == (256, 128) and small.padded == (256, 128)
    assert chest.describe() == "1841x1955 px worked at 241x256 (model canvas 256x256)"
    with pytest.raises(ValueError, match="no pixels"):
        fit_plan(0, 10, native=256, step=32)


def quiet(pipeline: type[P], components: DiffusionComponents) -> P:
    pipe = pipeline(components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture()
def odd_image() -> tuple[np.ndarray, np.ndarray]:
    """A 77 x 100 image (no multiple of any size step) and a box mask on it."""
    y, x = np.mgrid[0:77, 0:100].astype(np.float32)
    image = np.clip(0.2 + 0.004 * x + 0.5 * ((y - 40) ** 2 + (x - 60) ** 2 < 200), 0, 1)
    mask = np.zeros(image.shape, dtype=np.float32)
    mask[30:55, 40:80] = 1.0
    return image.astype(np.float32), mask


def test_inpainting_at_model_scale_keeps_every_unmasked_pixel(
    tiny: DiffusionComponents, odd_image: tuple[np.ndarray, np.ndarray]
) -> None:
    image, mask = odd_image
    pipe = quiet(InpaintPipeline, tiny)
    with pytest.raises(ValueError, match="multiples of"):
        pipe("PA chest radiograph", image=image, mask_image=mask, num_inference_steps=2)

    def run(seed: int) -> np.ndarray:
        output, plan = run_at_model_scale(
            pipe,
            image,
            mask,
            prompt="PA chest radiograph",
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(seed),
        )
        assert plan.scaled == (25, 32)  # the tiny model draws 32 px
        step = tiny.size_multiple
        assert plan.padded[1] == 32 and plan.padded[0] % step == 0 and plan.padded[0] - 25 < step
        return np.asarray(output.images)[0]

    first = run(0)
    keep = mask < 0.5
    assert first.shape == image.shape and first.dtype == np.float32
    assert np.array_equal(first[keep], image[keep])  # bit-identical outside the mask
    assert not np.allclose(first[~keep], image[~keep], atol=0.02)  # the mask was regenerated
    assert np.array_equal(run(0), first) and not np.array_equal(run(1), first)
    with pytest.raises(ValueError, match="covers the whole image"):
        run_at_model_scale(pipe, image, np.ones_like(mask), prompt="PA chest radiograph")
    with pytest.raises(ValueError, match="numpy"):
        run_at_model_scale(pipe, image, mask, prompt="PA chest radiograph", output_type="pil")


def test_editing_at_model_scale_without_a_mask_changes_the_whole_image(
    tiny: DiffusionComponents, odd_image: tuple[np.ndarray, np.ndarray]
) -> None:
    image, _ = odd_image
    pipe = quiet(EditPipeline, tiny)
    output, _ = run_at_model_scale(
        pipe,
        image,
        None,
        prompt="PA chest radiograph",
        strength=1.0,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    edited = np.asarray(output.images)[0]
    assert edited.shape == image.shape
    assert np.mean(np.abs(edited - image) > 0.02) > 0.5  # no kept region: most pixels change


def test_outpainting_at_model_scale_grows_the_full_size_image(
    tiny: DiffusionComponents, odd_image: tuple[np.ndarray, np.ndarray]
) -> None:
    image, _ = odd_image
    pipe = quiet(OutpaintPipeline, tiny)

    def run(seed: int, **amounts: int) -> np.ndarray:
        output, plan = outpaint_at_model_scale(
            pipe,
            image,
            prompt="AP radiograph of the left knee",
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(seed),
            **amounts,
        )
        assert plan.scaled == (25, 32)
        return np.asarray(output.images)[0]

    grown = run(0, top=40, left=13)
    assert grown.shape == (117, 113)
    assert np.array_equal(grown[40:, 13:], image)  # the original, bit for bit
    assert grown[:40].std() > 0 and grown[40:, :13].std() > 0  # drawn, not left empty
    assert np.array_equal(run(0, top=40, left=13), grown)
    sideways = run(1, right=300)  # a canvas many model tiles wide
    assert sideways.shape == (77, 400) and np.array_equal(sideways[:, :100], image)
    with pytest.raises(ValueError, match="under one pixel"):
        run(0, bottom=1)
    with pytest.raises(ValueError, match="at least one > 0"):
        run(0)
