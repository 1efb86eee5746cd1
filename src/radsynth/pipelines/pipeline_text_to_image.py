"""Text-to-image: grayscale radiological images from a prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import torch

from radsynth.pipelines.pipeline_base import (
    OutputType,
    RadiologyPipeline,
    RadiologyPipelineOutput,
    StepEndCallback,
)


class TextToImagePipeline(RadiologyPipeline):
    """Generate `num_images_per_prompt` images per prompt ("" = unconditional)."""

    @overload
    def __call__(
        self,
        prompt: str | Sequence[str],
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        negative_prompt: str | Sequence[str] | None = None,
        latents: torch.Tensor | None = None,
        return_dict: Literal[True] = True,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ) -> RadiologyPipelineOutput: ...

    @overload
    def __call__(
        self,
        prompt: str | Sequence[str],
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        negative_prompt: str | Sequence[str] | None = None,
        latents: torch.Tensor | None = None,
        *,
        return_dict: Literal[False],
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ) -> tuple[Any, ...]: ...

    def __call__(
        self,
        prompt: str | Sequence[str],
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: OutputType = "np",
        negative_prompt: str | Sequence[str] | None = None,
        latents: torch.Tensor | None = None,
        return_dict: bool = True,
        callback_on_step_end: StepEndCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
    ) -> RadiologyPipelineOutput | tuple[Any, ...]:
        """Images of `height` x `width` pixels (None: the model's native size); both must be
        positive multiples of the model's size step (`components.size_multiple`).

        As in diffusers: `negative_prompt` (one per prompt, or one string for all) replaces the
        empty prompt as guidance's unconditional input; it has no effect with guidance_scale
        <= 1. `latents`: the initial noise, standard normal, of shape (prompts x
        num_images_per_prompt, model channels, height / f, width / f), f =
        `components.vae_scale_factor` (default: drawn from `generator`).
        `callback_on_step_end(pipe, step_index, timestep, callback_kwargs) -> dict` runs after
        every step with the tensors named in `callback_on_step_end_tensor_inputs` (default
        ["latents"]); the tensors it returns are used from then on. `output_type` "np", "pil"
        or "pt"; `return_dict=False` returns a tuple whose first item is the images.
        """
        # 1. Check inputs
        prompts, steps, guidance = self.check_common(
            prompt, num_inference_steps, guidance_scale, num_images_per_prompt, output_type
        )
        negatives = self.check_negative_prompt(negative_prompt, prompts, guidance)
        step_end = self.check_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        height = self.components.sample_size if height is None else height
        width = self.components.sample_size if width is None else width
        self.check_size(height, width, "the requested size")
        batch = len(prompts) * num_images_per_prompt
        shape = self.model_shape(batch, height, width)
        noise = None if latents is None else self.check_latents(latents, shape)

        # 2. Encode prompt
        embeds = self.encode_prompt(prompts, num_images_per_prompt, guidance > 1.0, negatives)

        # 3. Prepare timesteps
        timesteps = self.prepare_timesteps(steps)

        # 4. Prepare latents
        if noise is None:
            noise = self.random_latents(shape, generator)
        latents = noise * self.scheduler.init_noise_sigma

        # 5. Denoising loop
        extra = self.step_kwargs(generator)
        for i, t in enumerate(self.progress_bar(timesteps)):
            model_output = self.guided_model_output(latents, t, embeds, guidance)
            latents = self.scheduler.step(model_output, t, latents, **extra).prev_sample
            if step_end is not None:
                latents, embeds = step_end(self, i, t, latents, embeds)

        # 6. Postprocess
        return self.output(self.decode(latents), output_type, return_dict)
