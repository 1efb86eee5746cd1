"""Editing: add or remove a finding inside a mask by partial noising (SDEdit).

The image is noised to `strength` of the schedule and denoised towards the prompt ("a fracture
of the distal radius", or a description without the finding to remove it). Only the masked area
changes; the rest is blended in at every step and pasted back exactly at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from radsynth.pipelines.pipeline_base import (
    ImageInput,
    OutputType,
    RadiologyPipelineOutput,
    image_to_tensor,
    mask_to_tensor,
    postprocess,
)
from radsynth.pipelines.pipeline_inpaint import MaskedPipeline


class EditPipeline(MaskedPipeline):
    """Change `image` towards `prompt` inside `mask_image` (None = the whole image)."""

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
    ) -> RadiologyPipelineOutput:
        """Edited copies of `image`; `strength` in (0, 1]: 0.3 subtle, 1.0 = full inpainting.

        `num_inference_steps` is for the full schedule; `strength` of them are run.
        """
        # 1. Check inputs
        prompts, steps, guidance = self.check_common(
            prompt, num_inference_steps, guidance_scale, num_images_per_prompt, output_type
        )
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1] (0.3 subtle, 1 full), got {strength}")
        pixels = image_to_tensor(image)
        height, width = pixels.shape[-2:]
        self.check_size(height, width)
        if mask_image is None:
            regenerate = torch.ones_like(pixels, dtype=torch.bool)
        else:
            regenerate = mask_to_tensor(mask_image, height, width)

        # 2. Encode prompt
        embeds = self.encode_prompt(prompts, num_images_per_prompt, guidance > 1.0)

        # 3.-6. Timesteps from `strength`, noised image as latents, masked denoising, paste-back
        result = self.regenerate(pixels, regenerate, embeds, steps, guidance, strength, generator)
        return postprocess(result, output_type)
