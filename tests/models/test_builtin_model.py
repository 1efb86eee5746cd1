"""The built-in model shipped in the package: complete, fp16 on disk, recorded, and usable."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from safetensors import safe_open

from radsynth.paths import BUILTIN_MODEL as BUILTIN
from radsynth.pipelines import TextToImagePipeline


def test_builtin_model_is_fp16_safetensors_with_its_training_record() -> None:
    weights = BUILTIN / "unet" / "diffusion_pytorch_model.safetensors"
    with safe_open(str(weights), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
    assert dtypes == {"F16"}
    assert weights.stat().st_size < 40e6  # a few tens of MB at most
    assert not list(BUILTIN.rglob("*.bin")) and not list(BUILTIN.rglob("*.ckpt"))
    record = json.loads((BUILTIN / "training.json").read_text())
    assert record["steps"] > 0 and record["wall_seconds"] > 0 and record["machine"]
    assert record["data"]["images"] > 1000
    # A fine-tune carries its parent's record: the chain starts at `--preset builtin`, and the
    # model counts every step of it.
    chain = [record]
    while "parent" in chain[-1]:
        chain.append(chain[-1]["parent"])
    assert "--preset builtin" in chain[-1]["command"] and chain[-1]["config"]["preset"] == "builtin"
    index = json.loads((BUILTIN / "model_index.json").read_text())["_radsynth_defaults"]
    assert index["trained_steps"] == sum(r["steps"] for r in chain)
    assert "make_builtin_data.py" in record["shipped"]["data_command"]
    assert record["shipped"]["unet_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


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
