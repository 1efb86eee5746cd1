"""The built-in model shipped in the package: complete, fp16 on disk, recorded, and usable."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from safetensors import safe_open

from radsynth.models.presets import get_preset
from radsynth.paths import BUILTIN_MODEL as BUILTIN
from radsynth.pipelines import TextToImagePipeline
from radsynth.train.report import record_chains


def test_builtin_model_is_fp16_safetensors_with_its_training_record() -> None:
    weights = BUILTIN / "unet" / "diffusion_pytorch_model.safetensors"
    with safe_open(str(weights), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
    assert dtypes == {"F16"}
    assert weights.stat().st_size < 40e6  # a few tens of MB at most
    assert not list(BUILTIN.rglob("*.bin")) and not list(BUILTIN.rglob("*.ckpt"))
    record = json.loads((BUILTIN / "training.json").read_text())
    assert record["wall_seconds"] > 0 and record["machine"]
    # A fine-tune carries its parent's record, a weight average those of the models it
    # averaged: every chain starts at `--preset builtin`, ran on real data, and the model counts
    # the steps of its longest chain.
    chains = record_chains(record)
    assert chains and sum(r["steps"] for r in chains[0]) > 0
    for chain in chains:
        assert "--preset builtin" in chain[-1]["command"]
        assert chain[-1]["config"]["preset"] == "builtin"
        assert all(r["data"]["images"] > 1000 for r in chain if r.get("kind") != "weight average")
    index = json.loads((BUILTIN / "model_index.json").read_text())["_radsynth_defaults"]
    assert index["trained_steps"] == max(sum(r["steps"] for r in chain) for chain in chains)
    assert "make_builtin_data.py" in record["shipped"]["data_command"]
    assert record["shipped"]["unet_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_builtin_model_samples_with_the_builtin_presets_defaults() -> None:
    # The sampler the shipped model uses by default is the one `--preset builtin` writes into
    # a new model, so a model trained from the preset samples as the shipped one does.
    saved = json.loads((BUILTIN / "model_index.json").read_text())["_radsynth_defaults"]
    preset = get_preset("builtin")
    assert saved["preset"] == "builtin"
    assert saved["num_inference_steps"] == preset.num_inference_steps
    assert saved["guidance_scale"] == preset.guidance_scale
    assert saved["guidance_cutoff"] == preset.guidance_cutoff
    pipe = TextToImagePipeline.from_pretrained(BUILTIN)
    assert pipe.default("num_inference_steps", None) == preset.num_inference_steps
    assert pipe.guidance_cutoff == preset.guidance_cutoff


def test_builtin_model_generates_256_px_images_from_a_seed() -> None:
    pipe = TextToImagePipeline.from_pretrained(BUILTIN)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.components.sample_size >= 256 and pipe.components.patch_size == 8

    def knee(seed: int) -> np.ndarray:
        generator = torch.Generator().manual_seed(seed)
        return np.asarray(
            pipe("An X-ray of the knee", generator=generator, num_inference_steps=2).images[0]
        )

    first, again, other = knee(0), knee(0), knee(1)
    assert first.shape == (256, 256) and first.min() >= 0.0 and first.max() <= 1.0
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.std() > 0.02
