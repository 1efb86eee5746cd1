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
        """Images of `height` x `width` pixels (default: the model's native size)."""
        # 1. Check inputs
        steps = int(self.default("num_inference_steps", num_inference_steps))
        guidance = float(self.default("guidance_scale", guidance_scale))
        prompts = self.check_common(prompt, steps, guidance, num_images_per_prompt, output_type)
        height = height or self.components.sample_size
        width = width or self.components.sample_size
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
