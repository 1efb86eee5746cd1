"""Inference pipelines: text-to-image, inpainting, outpainting and editing of grayscale images.

All share argument names (`prompt`, `image`, `mask_image`, `num_inference_steps`,
`guidance_scale`, `generator`, `output_type` "np"/"pil"/"pt", `num_images_per_prompt`,
`negative_prompt`, `return_dict`, `callback_on_step_end`, `callback_on_step_end_tensor_inputs`;
`latents` for text-to-image) with diffusers' pipelines and load and save with
`from_pretrained(folder)` / `save_pretrained(folder)` in diffusers' folder layout.
`run_at_model_scale` (inpainting, editing) and `outpaint_at_model_scale` work on an image of
any size (a full-size clinical radiograph) through a copy at the model's scale, keeping every
original pixel.
"""

from __future__ import annotations

from radsynth.pipelines.fit import (
    FitPlan,
    fit_plan,
    outpaint_at_model_scale,
    run_at_model_scale,
)
from radsynth.pipelines.pipeline_base import (
    RadiologyPipeline,
    RadiologyPipelineOutput,
    image_to_tensor,
)
from radsynth.pipelines.pipeline_edit import EditPipeline
from radsynth.pipelines.pipeline_inpaint import InpaintPipeline
from radsynth.pipelines.pipeline_outpaint import OutpaintPipeline
from radsynth.pipelines.pipeline_text_to_image import TextToImagePipeline

__all__ = [
    "EditPipeline",
    "FitPlan",
    "InpaintPipeline",
    "OutpaintPipeline",
    "RadiologyPipeline",
    "RadiologyPipelineOutput",
    "TextToImagePipeline",
    "fit_plan",
    "image_to_tensor",
    "outpaint_at_model_scale",
    "run_at_model_scale",
]
