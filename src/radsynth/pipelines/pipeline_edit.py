"""Editing: add or remove a finding inside a mask by partial noising (SDEdit).

The image is noised to `strength` of the schedule and denoised towards the prompt ("a fracture
of the distal radius", or a description without the finding to remove it). Only the masked area
changes; the rest is blended in at every step and pasted back exactly at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import torch

from radsynth.pipelines.pipeline_base import (
    ImageInput,
    OutputType,
    RadiologyPipelineOutput,
    StepEndCallback,
    image_to_tensor,
    mask_to_tensor,
)
from radsynth.pipelines.pipeline_inpaint import MaskedPipeline


class EditPipeline(MaskedPipeline):
    """Change `image` towards `prompt` inside `mask_image` (None = the whole image)."""

    @overload
    def __call__(
        self,
        prompt: str | Sequence[str],
        image: ImageInput,
        mask_image: ImageInput | None = None,
        strength: float = 0.6,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
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
        mask_image: ImageInput | None = None,
        strength: float = 0.6,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
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
        mask_image: ImageInput | None = None,
        strength: float = 0.6,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        negative_prompt: str | Sequence[str] | None = None,
        return_dict: bool = True,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ) -> RadiologyPipelineOutput | tuple[Any, ...]:
        """Edited copies of `image`; `strength` in (0, 1]: 0.3 subtle, 1.0 = full inpainting.

        `num_inference_steps` is for the full schedule; `strength` of them are run (and call
        `callback_on_step_end`, step indices from 0). `negative_prompt`,
        `callback_on_step_end_tensor_inputs`, `output_type` and `return_dict` as in
        `TextToImagePipeline`.
        """
        # 1. Check inputs
        prompts, steps, guidance = self.check_common(
            prompt, num_inference_steps, guidance_scale, num_images_per_prompt, output_type
        )
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1] (0.3 subtle, 1 full), got {strength}")
        negatives = self.check_negative_prompt(negative_prompt, prompts, guidance)
        step_end = self.check_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        pixels = image_to_tensor(image)
        height, width = pixels.shape[-2:]
        self.check_size(height, width)
        if mask_image is None:
            regenerate = torch.ones_like(pixels, dtype=torch.bool)
        else:
            regenerate = mask_to_tensor(mask_image, height, width)

        # 2. Encode prompt
        embeds = self.encode_prompt(prompts, num_images_per_prompt, guidance > 1.0, negatives)

        # 3.-6. Timesteps from `strength`, noised image as latents, masked denoising, paste-back
        result = self.regenerate(
            pixels, regenerate, embeds, steps, guidance, strength, generator, step_end
        )
        return self.output(result, output_type, return_dict)
