"""Text-to-image: grayscale radiological images from a prompt."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from radsynth.pipelines.pipeline_base import (
    OutputType,
    RadiologyPipeline,
    RadiologyPipelineOutput,
    postprocess,
)


class TextToImagePipeline(RadiologyPipeline):
    """Generate `num_images_per_prompt` images per prompt ("" = unconditional)."""

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
    ) -> RadiologyPipelineOutput:
        """Images of `height` x `width` pixels (None: the model's native size); both must be
        positive multiples of the model's size step (`components.size_multiple`)."""
        # 1. Check inputs
        prompts, steps, guidance = self.check_common(
            prompt, num_inference_steps, guidance_scale, num_images_per_prompt, output_type
        )
        height = self.components.sample_size if height is None else height
        width = self.components.sample_size if width is None else width
        self.check_size(height, width, "the requested size")
        batch = len(prompts) * num_images_per_prompt

        # 2. Encode prompt
        embeds = self.encode_prompt(prompts, num_images_per_prompt, guidance > 1.0)

        # 3. Prepare timesteps
        timesteps = self.prepare_timesteps(steps)

        # 4. Prepare latents
        shape = self.model_shape(batch, height, width)
        latents = self.random_latents(shape, generator) * self.scheduler.init_noise_sigma

        # 5. Denoising loop
        extra = self.step_kwargs(generator)
        for t in self.progress_bar(timesteps):
            model_output = self.guided_model_output(latents, t, embeds, guidance)
            latents = self.scheduler.step(model_output, t, latents, **extra).prev_sample

        # 6. Postprocess
        return postprocess(self.decode(latents), output_type)
