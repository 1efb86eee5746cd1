"""Masked pipelines on images of any size: work on a copy shrunk to the model's scale, then
paste the regenerated area back into the full-size image (`run_at_model_scale` for inpainting
and editing, `outpaint_at_model_scale` for outpainting).

A clinical radiograph is often 2,000 pixels a side; the built-in model draws 256. It learnt
whole regional radiographs at that size, so the image is shrunk whole (not cropped around the
mask, which would show the model anatomy many times larger than any it has seen): its long
side becomes the model's native size, the short side keeps the aspect ratio and is padded with
its edge pixels up to the model's size step (the padding is kept, never regenerated). The mask
shrinks with it (a shrunk pixel that touches any masked pixel is regenerated). The result is
enlarged back (bicubic) and only the masked pixels are taken from it: every other pixel of the
full-size image comes back bit-identical. The regenerated area has the model's resolution, so
on a large image it is smoother than its surroundings.

Outpainting shrinks the original the same way (its long side becomes the native size), with
every border's extension by the same factor; the canvas drawn there is enlarged back to the
asked size and the original pasted into it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from radsynth.pipelines.pipeline_base import (
    ImageInput,
    RadiologyPipelineOutput,
    image_to_tensor,
    mask_to_tensor,
)
from radsynth.pipelines.pipeline_edit import EditPipeline
from radsynth.pipelines.pipeline_inpaint import InpaintPipeline, check_keeps_pixels
from radsynth.pipelines.pipeline_outpaint import OutpaintPipeline, check_amounts

__all__ = ["FitPlan", "fit_plan", "outpaint_at_model_scale", "run_at_model_scale"]


@dataclass(frozen=True)
class FitPlan:
    """Where a (height, width) image goes at the model's scale."""

    height: int
    width: int
    scaled: tuple[int, int]  # the image shrunk (or enlarged) to the model's scale
    padded: tuple[int, int]  # the model's canvas: padded to the size step (or outpainted)

    def describe(self) -> str:
        return (
            f"{self.width}x{self.height} px worked at {self.scaled[1]}x{self.scaled[0]} "
            f"(model canvas {self.padded[1]}x{self.padded[0]})"
        )


def fit_plan(height: int, width: int, native: int, step: int) -> FitPlan:
    """The working size of a (height, width) image: long side = `native`, aspect kept."""
    if height < 1 or width < 1:
        raise ValueError(f"image is {height}x{width} pixels; it has no pixels to work on")
    scale = native / max(height, width)
    scaled = (max(1, round(height * scale)), max(1, round(width * scale)))
    padded = tuple(max(step, -(-side // step) * step) for side in scaled)
    return FitPlan(height, width, scaled, (padded[0], padded[1]))


def _check_numpy_output(call: dict[str, Any], name: str) -> None:
    if call.get("output_type", "np") != "np":
        raise ValueError(f"{name} returns numpy images; leave output_type at 'np'")
    if call.get("return_dict", True) is not True:
        raise ValueError(
            f"{name} returns (RadiologyPipelineOutput, FitPlan); leave return_dict at True"
        )


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    smaller = size[0] * size[1] < x.shape[-2] * x.shape[-1]
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=smaller)


def run_at_model_scale(
    pipe: InpaintPipeline | EditPipeline,
    image: ImageInput,
    mask_image: ImageInput | None,
    **call: Any,
) -> tuple[RadiologyPipelineOutput, FitPlan]:
    """Run a masked pipeline (`InpaintPipeline`, `EditPipeline`) on `image` at the model's
    scale and return full-size images (numpy, [0, 1]) with the plan it followed. `mask_image`
    None changes the whole image (editing only: inpainting must keep some pixels); `call`
    holds the pipeline's other arguments."""
    _check_numpy_output(call, "run_at_model_scale")
    pixels = image_to_tensor(image)
    height, width = pixels.shape[-2:]
    if mask_image is None:
        regenerate = torch.ones_like(pixels, dtype=torch.bool)
    else:
        regenerate = mask_to_tensor(mask_image, height, width)
    if isinstance(pipe, InpaintPipeline):
        # Before padding: the padding added for the size step is kept, which would otherwise
        # hide a mask (or None) covering the whole image.
        check_keeps_pixels(regenerate)
    components = pipe.components
    plan = fit_plan(height, width, components.sample_size, components.size_multiple)
    small = _resize(pixels, plan.scaled, "bilinear").clamp(0.0, 1.0)
    small_mask = _resize(regenerate.float(), plan.scaled, "area") > 0.0
    pad = (0, plan.padded[1] - plan.scaled[1], 0, plan.padded[0] - plan.scaled[0])
    small = F.pad(small, pad, mode="replicate")
    small_mask = F.pad(small_mask, pad, value=False)
    output = pipe(image=small[0, 0].numpy(), mask_image=small_mask[0, 0].numpy(), **call)
    worked = torch.from_numpy(np.asarray(output.images))[:, None]
    worked = worked[..., : plan.scaled[0], : plan.scaled[1]]
    enlarged = _resize(worked, (height, width), "bicubic").clamp(0.0, 1.0)
    result = torch.where(regenerate, enlarged, pixels)
    return RadiologyPipelineOutput(images=result[:, 0].numpy().astype(np.float32)), plan


def _canvas_side(asked: int, native: int, step: int) -> int:
    """The side of the model's canvas for an asked side at the model's scale: rounded up to
    the size step where it is under one native tile (the outpainting pipeline's rule)."""
    return asked if asked >= native else -(-asked // step) * step


def outpaint_at_model_scale(
    pipe: OutpaintPipeline,
    image: ImageInput,
    left: int = 0,
    right: int = 0,
    top: int = 0,
    bottom: int = 0,
    **call: Any,
) -> tuple[RadiologyPipelineOutput, FitPlan]:
    """Outpaint `image` by `left`/`right`/`top`/`bottom` pixels of its own size at the model's
    scale: numpy images of (top + H + bottom) x (left + W + right) pixels, the original
    bit-identical in place, with the plan followed. `call`: the pipeline's other arguments."""
    _check_numpy_output(call, "outpaint_at_model_scale")
    amounts = check_amounts(left, right, top, bottom)
    pixels = image_to_tensor(image)
    height, width = pixels.shape[-2:]
    components = pipe.components
    native, step = components.sample_size, components.size_multiple
    plan = fit_plan(height, width, native, step)
    scale = native / max(height, width)
    small_h, small_w = plan.scaled
    full_h, full_w = top + height + bottom, left + width + right
    top_s, left_s = round(top * scale), round(left * scale)
    # The asked canvas at the model's scale (at least the shrunk original where it is placed).
    asked_h = max(round(full_h * scale), top_s + small_h)
    asked_w = max(round(full_w * scale), left_s + small_w)
    if (round(full_h * scale), round(full_w * scale)) == (small_h, small_w):
        raise ValueError(
            f"the extension {amounts} is under one pixel at the model's scale (x{scale:.3g}); "
            "ask for more, or outpaint without fitting"
        )
    canvas_h, canvas_w = _canvas_side(asked_h, native, step), _canvas_side(asked_w, native, step)
    small = _resize(pixels, plan.scaled, "bilinear").clamp(0.0, 1.0)
    output = pipe(
        image=small[0, 0].numpy(),
        top=top_s,
        left=left_s,
        bottom=canvas_h - top_s - small_h,
        right=canvas_w - left_s - small_w,
        **call,
    )
    drawn = torch.from_numpy(np.asarray(output.images))[:, None]
    drawn = drawn[..., :asked_h, :asked_w]  # without the rows and columns added for the step
    canvas = _resize(drawn, (full_h, full_w), "bicubic").clamp(0.0, 1.0)
    canvas[..., top : top + height, left : left + width] = pixels
    plan = FitPlan(height, width, plan.scaled, (canvas_h, canvas_w))
    return RadiologyPipelineOutput(images=canvas[:, 0].numpy().astype(np.float32)), plan
