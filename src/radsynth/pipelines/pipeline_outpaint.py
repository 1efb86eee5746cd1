"""Outpainting: extend an image past its borders, as far as asked, in overlapping tiles.

The canvas grows by `left`, `right`, `top` and `bottom` pixels. It is filled one tile of the
model's native size at a time; each tile overlaps what is already known (by half a tile by
default), is inpainted with the unknown part as its mask, and becomes context for the next.
Tiles are taken in order of most known context first, so the image grows outwards from the
original, which comes back bit-identical.

A tile sees at most one native field of context, so a canvas many fields tall (a knee grown to
a whole body) loses its plan: every tile is plausible, the whole is a patchwork. `layout_prompt`
adds a first pass that draws the whole canvas at once, shrunk to the native size, around the
shrunk original ("AP radiograph of the whole body"); the tiles then start from that layout,
noised to `layout_strength` of the schedule (SDEdit), and refine it at full resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import torch

from radsynth.pipelines.pipeline_base import (
    ImageInput,
    OutputType,
    RadiologyPipelineOutput,
    StepEnd,
    StepEndCallback,
    image_to_tensor,
)
from radsynth.pipelines.pipeline_inpaint import MaskedPipeline


def check_amounts(left: int, right: int, top: int, bottom: int) -> dict[str, int]:
    """The four extensions by name; each >= 0 pixels and at least one > 0, else ValueError."""
    amounts = {"left": left, "right": right, "top": top, "bottom": bottom}
    if any(value < 0 for value in amounts.values()) or not any(amounts.values()):
        raise ValueError(f"give left/right/top/bottom >= 0 pixels, at least one > 0: {amounts}")
    return amounts


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering `length` pixels, `stride` apart."""
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def next_tile(
    known: torch.Tensor, tile_h: int, tile_w: int, stride_h: int, stride_w: int
) -> tuple[int, int] | None:
    """Top-left corner of the tile with the most known pixels among those that still have
    unknown ones and at least one known one; None when the canvas is complete."""
    best: tuple[int, int] | None = None
    best_known = 0
    for y in tile_starts(known.shape[0], tile_h, stride_h):
        for x in tile_starts(known.shape[1], tile_w, stride_w):
            window = known[y : y + tile_h, x : x + tile_w]
            count = int(window.sum())
            if count < window.numel() and count > best_known:
                best, best_known = (y, x), count
    return best


def place_on_canvas(
    pixels: torch.Tensor, batch: int, left: int, right: int, top: int, bottom: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The outpainting canvas: (batch, 1, H, W) zeros with `pixels` (1, 1, h, w) placed `top`
    rows down and `left` columns in, and the (H, W) mask of those known pixels."""
    height, width = pixels.shape[-2:]
    canvas_h, canvas_w = top + height + bottom, left + width + right
    canvas = torch.zeros(batch, 1, canvas_h, canvas_w)
    canvas[:, :, top : top + height, left : left + width] = pixels
    known = torch.zeros(canvas_h, canvas_w, dtype=torch.bool)
    known[top : top + height, left : left + width] = True
    return canvas, known


class OutpaintPipeline(MaskedPipeline):
    """Extend `image` by the given pixel amounts on each side."""

    @overload
    def __call__(
        self,
        prompt: str | Sequence[str],
        image: ImageInput,
        left: int = 0,
        right: int = 0,
        top: int = 0,
        bottom: int = 0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        overlap: int | None = None,
        layout_prompt: str | None = None,
        layout_strength: float = 0.5,
        negative_prompt: str | Sequence[str] | None = None,
        return_dict: Literal[True] = True,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ) -> RadiologyPipelineOutput: ...

    @overload
    def __call__(
        self,
        prompt: str | Sequence[str],
        image: ImageInput,
        left: int = 0,
        right: int = 0,
        top: int = 0,
        bottom: int = 0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        overlap: int | None = None,
        layout_prompt: str | None = None,
        layout_strength: float = 0.5,
        negative_prompt: str | Sequence[str] | None = None,
        *,
        return_dict: Literal[False],
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ) -> tuple[Any, ...]: ...

    def __call__(
        self,
        prompt: str | Sequence[str],
        image: ImageInput,
        left: int = 0,
        right: int = 0,
        top: int = 0,
        bottom: int = 0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        overlap: int | None = None,
        layout_prompt: str | None = None,
        layout_strength: float = 0.5,
        negative_prompt: str | Sequence[str] | None = None,
        return_dict: bool = True,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ) -> RadiologyPipelineOutput | tuple[Any, ...]:
        """Images of (top + H + bottom) x (left + W + right) pixels, the original in place.

        `overlap`: pixels shared by neighbouring tiles (default half a tile).
        `layout_prompt`: draw the whole canvas first, shrunk to one tile, with this prompt, and
        refine that layout tile by tile from `layout_strength` (1 keeps nothing of it). Only
        used when the canvas is larger than one tile.
        `negative_prompt` (used for the layout pass too), `output_type` and `return_dict` as in
        `TextToImagePipeline`. The canvas is denoised in several passes (the layout, then each
        tile): `callback_on_step_end` is called at every step of every pass, its step index
        counting from 0 in each pass, and sees that pass's latents (one tile).
        """
        # 1. Check inputs
        prompts, steps, guidance = self.check_common(
            prompt, num_inference_steps, guidance_scale, num_images_per_prompt, output_type
        )
        negatives = self.check_negative_prompt(negative_prompt, prompts, guidance)
        step_end = self.check_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        pixels = image_to_tensor(image)
        height, width = pixels.shape[-2:]
        check_amounts(left, right, top, bottom)
        canvas_h, canvas_w = top + height + bottom, left + width + right
        tile_h = min(self.components.sample_size, canvas_h)
        tile_w = min(self.components.sample_size, canvas_w)
        self.check_size(tile_h, tile_w, "an outpainting tile (the native size or the canvas)")
        overlap = min(tile_h, tile_w) // 2 if overlap is None else overlap
        if not 0 < overlap < min(tile_h, tile_w):
            raise ValueError(
                f"overlap must be between 1 and {min(tile_h, tile_w) - 1}, got {overlap}"
            )

        if layout_prompt is not None and not 0.0 < layout_strength <= 1.0:
            raise ValueError(f"layout_strength must be in (0, 1], got {layout_strength}")
        if tile_h == canvas_h and tile_w == canvas_w:
            layout_prompt = None  # one tile sees the whole canvas: nothing to plan

        # 2. Encode prompt
        embeds = self.encode_prompt(prompts, num_images_per_prompt, guidance > 1.0, negatives)
        batch = len(prompts) * num_images_per_prompt

        # 3.-6. For each tile: timesteps, latents, masked denoising, paste-back
        canvas, known = place_on_canvas(pixels, batch, left, right, top, bottom)
        strength = 1.0
        if layout_prompt is not None:
            layout_embeds = self.encode_prompt(
                [layout_prompt] * len(prompts), num_images_per_prompt, guidance > 1.0, negatives
            )
            guess = self.layout(canvas, known, layout_embeds, steps, guidance, generator, step_end)
            canvas = torch.where(known, canvas, guess)
            strength = layout_strength
        stride_h, stride_w = tile_h - overlap, tile_w - overlap
        while (corner := next_tile(known, tile_h, tile_w, stride_h, stride_w)) is not None:
            y, x = corner
            window = (slice(None), slice(None), slice(y, y + tile_h), slice(x, x + tile_w))
            regenerate = ~known[y : y + tile_h, x : x + tile_w][None, None]
            tile = self.regenerate(
                canvas[window], regenerate, embeds, steps, guidance, strength, generator, step_end
            )
            canvas[window] = tile.cpu()
            known[y : y + tile_h, x : x + tile_w] = True
        return self.output(canvas, output_type, return_dict)

    def layout(
        self,
        canvas: torch.Tensor,
        known: torch.Tensor,
        embeds: torch.Tensor,
        steps: int,
        guidance: float,
        generator: torch.Generator | None,
        step_end: StepEnd | None = None,
    ) -> torch.Tensor:
        """The whole canvas drawn in one native-size pass around its shrunk known pixels, then
        enlarged back to the canvas: (B, 1, H, W), a plan for the tiles to refine."""
        size = self.components.sample_size
        canvas_h, canvas_w = known.shape
        scale = min(size / canvas_h, size / canvas_w)
        small_h = max(1, min(size, round(canvas_h * scale)))
        small_w = max(1, min(size, round(canvas_w * scale)))
        shrink = torch.nn.functional.interpolate
        small = shrink(canvas, size=(small_h, small_w), mode="area")
        # A shrunk pixel is context only where every canvas pixel under it was known.
        small_known = shrink(known[None, None].float(), size=(small_h, small_w), mode="area")
        small_known = small_known >= 1.0 - 1e-6
        top, left = (size - small_h) // 2, (size - small_w) // 2
        field = torch.zeros(canvas.shape[0], 1, size, size)
        field[:, :, top : top + small_h, left : left + small_w] = small
        regenerate = torch.ones(1, 1, size, size, dtype=torch.bool)
        regenerate[:, :, top : top + small_h, left : left + small_w] = ~small_known
        drawn = self.regenerate(
            field, regenerate, embeds, steps, guidance, 1.0, generator, step_end
        ).cpu()
        drawn = drawn[:, :, top : top + small_h, left : left + small_w]
        enlarged = shrink(drawn, size=(canvas_h, canvas_w), mode="bilinear", align_corners=False)
        return enlarged.clamp(0.0, 1.0)
