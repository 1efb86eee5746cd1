"""Diffusion models: presets, components built from diffusers classes, frozen text encoders."""

from __future__ import annotations

from radsynth.models.components import (
    DiffusionComponents,
    build_components,
    build_scheduler,
    read_model_index,
)
from radsynth.models.presets import ModelPreset, get_preset, list_presets
from radsynth.models.text_encoders import (
    CLIPPromptEncoder,
    MiniLMPromptEncoder,
    PromptEncoder,
    normalise_prompts,
)

__all__ = [
    "CLIPPromptEncoder",
    "DiffusionComponents",
    "MiniLMPromptEncoder",
    "ModelPreset",
    "PromptEncoder",
    "build_components",
    "build_scheduler",
    "get_preset",
    "list_presets",
    "normalise_prompts",
    "read_model_index",
]
