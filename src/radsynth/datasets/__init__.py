"""Synthetic data sets: a SPEC (prompts or label combinations with counts, model or phantoms,
sampler, seed, formats, split) built into images, one manifest and a summary page."""

from __future__ import annotations

from radsynth.datasets.build import BuildError, BuildReport, build_dataset
from radsynth.datasets.spec import DatasetSpec, PromptEntry, SpecError, load_spec, parse_spec
from radsynth.datasets.weights import model_name, weights_sha256

__all__ = [
    "BuildError",
    "BuildReport",
    "DatasetSpec",
    "PromptEntry",
    "SpecError",
    "build_dataset",
    "load_spec",
    "model_name",
    "parse_spec",
    "weights_sha256",
]
