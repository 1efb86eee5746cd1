"""Inference pipelines: text-to-image, inpainting, outpainting and editing of grayscale images.

All share argument names (`prompt`, `image`, `mask_image`, `num_inference_steps`,
`guidance_scale`, `generator`, `output_type`, `num_images_per_prompt`) and load and save with
`from_pretrained(folder)` / `save_pretrained(folder)` in diffusers' folder layout.
"""

from __future__ import annotations

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
    "InpaintPipeline",
    "OutpaintPipeline",
    "RadiologyPipeline",
    "RadiologyPipelineOutput",
    "TextToImagePipeline",
    "image_to_tensor",
]
