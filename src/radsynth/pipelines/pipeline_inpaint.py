"""Inpainting and its masked core, shared with editing and outpainting.

Mask convention: 1 (> 0.5) = regenerate. The known region is blended in at every denoising step
(noised to the current timestep), so the new content continues its surroundings; after decoding,
the regenerated area is Poisson-blended into its edge (`seams.py`: no step at the mask's edge)
and the original pixels are pasted back, so every pixel outside the mask comes back
bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import torch

from radsynth.pipelines.pipeline_base import (
    ImageInput,
    OutputType,
    RadiologyPipeline,
    RadiologyPipelineOutput,
    StepEnd,
    StepEndCallback,
    image_to_tensor,
    mask_to_tensor,
)
from radsynth.pipelines.seams import blend_seams


def check_keeps_pixels(regenerate: torch.Tensor) -> None:
    """Inpainting keeps something: refuse a mask that covers the whole image."""
    if regenerate.all():
        raise ValueError(
            "mask_image covers the whole image, so nothing is kept; "
            "use TextToImagePipeline, or leave some pixels at 0"
        )


class MaskedPipeline(RadiologyPipeline):
    """Shared by inpainting, editing and outpainting: regenerate the masked part of images."""

    # Poisson-blend the regenerated area into the kept pixels around it (`seams.py`), so no
    # step shows at the mask's edge; assign False for the model's raw output inside the mask.
    seamless: bool = True

    def regenerate(
        self,
        images: torch.Tensor,
        regenerate: torch.Tensor,
        embeds: torch.Tensor,
        steps: int,
        guidance: float,
        strength: float,
        generator: torch.Generator | None,
        step_end: StepEnd | None = None,
    ) -> torch.Tensor:
        """Steps 3 to 6 on tensors: `images` (B or 1, 1, H, W), `regenerate` likewise, bool;
        B = the batch of `embeds` (half of it under classifier-free guidance).

        `strength` 1 starts from pure noise; below 1 it starts from the image noised to that
        fraction of the schedule (SDEdit), keeping its coarse structure. `step_end` is called
        after every denoising step.
        """
        batch = embeds.shape[0] // 2 if guidance > 1.0 else embeds.shape[0]
        images = images.expand(batch, -1, -1, -1)

        # 3. Prepare timesteps
        timesteps = self.prepare_timesteps(steps, strength)

        # 4. Prepare latents
        known = self.encode_images(images)
        keep = self.keep_mask_for_model(regenerate)
        noise = self.random_latents(tuple(known.shape), generator)
        if strength >= 1.0:
            latents = noise * self.scheduler.init_noise_sigma
        else:
            latents = self.scheduler.add_noise(known, noise, timesteps[:1].repeat(batch))

        # 5. Denoising loop, the known region blended in at every step
        latents = self.denoise_masked(
            latents, known, keep, timesteps, embeds, guidance, generator, step_end
        )

        # 6. Postprocess: decode, blend the edge, then paste the original pixels back exactly
        generated = self.decode(latents)
        if self.seamless:
            generated = blend_seams(generated, images, regenerate)
        return torch.where(regenerate.to(generated.device), generated, images.to(generated.device))


class InpaintPipeline(MaskedPipeline):
    """Regenerate the area of `image` where `mask_image` is 1, keeping every other pixel."""

    @overload
    def __call__(
        self,
        prompt: str | Sequence[str],
        image: ImageInput,
        mask_image: ImageInput,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        strength: float = 1.0,
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
        mask_image: ImageInput,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        strength: float = 1.0,
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
        mask_image: ImageInput,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        strength: float = 1.0,
        negative_prompt: str | Sequence[str] | None = None,
        return_dict: bool = True,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ) -> RadiologyPipelineOutput | tuple[Any, ...]:
        """Inpainted copies of `image` (same size), `num_images_per_prompt` per prompt.

        `negative_prompt`, `callback_on_step_end`, `callback_on_step_end_tensor_inputs`,
        `output_type` and `return_dict` as in `TextToImagePipeline`.
        """
        # 1. Check inputs
        prompts, steps, guidance = self.check_common(
            prompt, num_inference_steps, guidance_scale, num_images_per_prompt, output_type
        )
        negatives = self.check_negative_prompt(negative_prompt, prompts, guidance)
        step_end = self.check_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        pixels = image_to_tensor(image)
        height, width = pixels.shape[-2:]
        self.check_size(height, width)
        regenerate = mask_to_tensor(mask_image, height, width)
        check_keeps_pixels(regenerate)

        # 2. Encode prompt
        embeds = self.encode_prompt(prompts, num_images_per_prompt, guidance > 1.0, negatives)

        # 3.-6. Timesteps, latents, denoising with blending, paste-back
        result = self.regenerate(
            pixels, regenerate, embeds, steps, guidance, strength, generator, step_end
        )
        return self.output(result, output_type, return_dict)
