"""Presets, building, saving and loading components, text encoders, image conversion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from radsynth.models import (
    MiniLMPromptEncoder,
    build_components,
    get_preset,
    list_presets,
    normalise_prompts,
)


def test_presets_are_listed_and_fetched_as_copies() -> None:
    assert {"tiny", "tiny-latent", "builtin"} <= set(list_presets())
    preset = get_preset("tiny")
    preset.resolution = 999
    preset.extra_unet_config["x"] = 1
    assert get_preset("tiny").resolution == 32
    assert get_preset("tiny").extra_unet_config == {}
    with pytest.raises(ValueError, match="choose one of"):
        get_preset("huge")


def test_builtin_preset_fits_its_budget() -> None:
    preset = get_preset("builtin")
    assert preset.resolution >= 256
    components = build_components(preset)
    assert components.sample_size == preset.resolution
    parameters = sum(p.numel() for p in components.unet.parameters())
    assert parameters * 2 < 40e6  # bytes in fp16: "a few tens of MB at most"


def test_tiny_presets_build_consistent_components() -> None:
    pixel = build_components("tiny")
    assert pixel.vae is None and pixel.model_channels == 1 and pixel.sample_size == 32
    latent = build_components("tiny-latent")
    assert latent.vae is not None and latent.vae_scale_factor == 2
    assert latent.unet.config.sample_size == 16 and latent.size_multiple == 4


def test_same_seed_same_weights() -> None:
    first, again, other = (build_components("tiny", seed=s) for s in (1, 1, 2))
    w1, w2, w3 = (c.unet.conv_in.weight for c in (first, again, other))
    assert torch.equal(w1, w2) and not torch.equal(w1, w3)


def test_save_writes_diffusers_layout_and_loads_back(tmp_path: Path) -> None:
    components = build_components("tiny-latent", seed=3)
    folder = components.save_pretrained(tmp_path / "model")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["text_encoder"] == ["radsynth", "MiniLMPromptEncoder"]
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(folder.rglob("*.bin"))
    loaded = type(components).from_pretrained(folder)
    for name, tensor in components.unet.state_dict().items():
        assert torch.equal(tensor, loaded.unet.state_dict()[name]), name
    assert loaded.defaults["preset"] == "tiny-latent"


def test_half_precision_save_is_smaller_and_loads_as_float32(tmp_path: Path) -> None:
    components = build_components("tiny")
    full = components.save_pretrained(tmp_path / "fp32")
    half = components.save_pretrained(tmp_path / "fp16", weights_dtype=torch.float16)
    size = lambda folder: (folder / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size  # noqa: E731
    assert size(half) < 0.6 * size(full)
    loaded = type(components).from_pretrained(half)
    assert loaded.unet.conv_in.weight.dtype == torch.float32
    assert components.unet.conv_in.weight.dtype == torch.float32  # the original is untouched


def test_minilm_encoder_gives_token_embeddings() -> None:
    encoder = MiniLMPromptEncoder(max_length=16)
    embeds = encoder.encode(
        ["fracture of the left femur", "pleural effusion", ""], torch.device("cpu")
    )
    assert embeds.shape == (3, 16, 384) and embeds.dtype == torch.float32
    assert not torch.allclose(embeds[0], embeds[1])
    again = encoder.encode(["fracture of the left femur"], torch.device("cpu"))
    assert torch.equal(again[0], embeds[0])
    # A batch mixing cached and new prompts that overflows the cache: the cached ones must
    # not be lost when the full cache is cleared (training crashed with a KeyError here).
    encoder.cache_size = 3
    mixed = encoder.encode(["pleural effusion", "a new prompt", ""], torch.device("cpu"))
    assert torch.equal(mixed[0], embeds[1]) and torch.equal(mixed[2], embeds[2])
    assert torch.equal(encoder.encode(["a new prompt"], torch.device("cpu"))[0], mixed[1])
    # [CLS], the word pieces (pl ##eur ##al e ##ff ##usion), [SEP].
    assert encoder.kept_tokens == 16 and encoder.token_counts(["pleural effusion"]) == [8]
    for wrong in (1, 513):
        with pytest.raises(ValueError, match="keeps 2 to 512 tokens per prompt"):
            MiniLMPromptEncoder(max_length=wrong)


def test_empty_prompt_stays_unconditional() -> None:
    assert normalise_prompts(["", "  "]) == ["", ""]


def test_pixel_model_space_round_trip_is_exact_enough() -> None:
    components = build_components("tiny")
    images = torch.rand(2, 1, 32, 32)
    model = components.image_to_model(images)
    assert model.min() >= -1.0 and model.max() <= 1.0
    assert torch.allclose(components.model_to_image(model), images, atol=1e-6)


def test_mismatched_text_width_is_refused() -> None:
    components = build_components("tiny")
    components.unet.register_to_config(cross_attention_dim=768)
    with pytest.raises(ValueError, match="384"):
        components.check()


def test_patched_pixel_model_folds_pixels_exactly_and_keeps_its_patch_size(
    tmp_path: Path,
) -> None:
    components = build_components("tiny-patch", seed=5)
    assert components.patch_size == 4 and components.model_channels == 16
    assert components.unet.config.sample_size == 8 and components.vae_scale_factor == 4
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    folded = components.image_to_model(images)
    assert folded.shape == (2, 16, 8, 8)
    # Channel k of a patch is pixel (k // 4, k % 4) of that patch, scaled to [-1, 1].
    assert torch.equal(folded[1, 6, 2, 3], images[1, 0, 2 * 4 + 1, 3 * 4 + 2] * 2 - 1)
    assert torch.allclose(components.model_to_image(folded), images, atol=1e-6)
    folder = components.save_pretrained(tmp_path / "model")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_radsynth_patch_size"] == 4 and index["vae"] == [None, None]
    loaded = type(components).from_pretrained(folder)
    assert loaded.patch_size == 4
    index["_radsynth_patch_size"] = 2  # 4 channels expected, the UNet takes 16
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="must take 4-channel input"):
        type(components).from_pretrained(folder)
    index["_radsynth_patch_size"] = "four"
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="positive integer"):
        type(components).from_pretrained(folder)


def test_snr_scale_multiplies_the_signal_to_noise_ratio_and_survives_saving(
    tmp_path: Path,
) -> None:
    from diffusers import DDIMScheduler, DDPMScheduler

    from radsynth.models.components import build_scheduler

    plain = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    preset = get_preset("tiny")
    preset.snr_scale = 1 / 16
    scheduler = build_scheduler(preset)

    def snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
        return alphas_cumprod.double() / (1 - alphas_cumprod.double())

    ratio = snr(scheduler.alphas_cumprod) / snr(plain.alphas_cumprod)
    assert torch.allclose(ratio[:995], torch.full((995,), 1 / 16, dtype=torch.float64), rtol=1e-4)
    # A plain preset keeps the named schedule; the builtin preset is shifted for its 256 px.
    assert build_scheduler(get_preset("tiny")).config.trained_betas is None
    assert get_preset("builtin").snr_scale == (64 / 256) ** 2
    # The shift lives in the saved config: training's DDPM and a swapped-in DDIM share it.
    scheduler.save_config(tmp_path)
    for other in (DDPMScheduler, DDIMScheduler):
        loaded = other.from_pretrained(tmp_path)
        assert torch.allclose(loaded.alphas_cumprod, scheduler.alphas_cumprod)
