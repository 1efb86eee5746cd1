"""Named model presets: the architecture of a radsynth diffusion model, fetched as copies.

A preset says what to build; the built components carry their own diffusers configs, which are
what `save_pretrained` writes, so a saved model never depends on the preset table again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

Architecture = Literal["pixel", "latent"]
PredictionType = Literal["v_prediction", "epsilon", "sample"]


@dataclass
class ModelPreset:
    """Architecture and sampling defaults of a radsynth diffusion model."""

    name: str
    # "pixel": the UNet denoises 1-channel images directly; "latent": an AutoencoderKL with
    # 1-channel input compresses first (cheaper at large sizes, but needs a trained autoencoder).
    architecture: Architecture
    resolution: int  # native output size in pixels (square)
    block_out_channels: tuple[int, ...]
    down_block_types: tuple[str, ...]
    up_block_types: tuple[str, ...]
    layers_per_block: int = 1
    # Pixel space only: the UNet sees the image folded into patch_size x patch_size blocks
    # (space-to-depth, channels = patch_size**2), so it runs at resolution / patch_size. Exact and
    # invertible, unlike an autoencoder, and nothing extra to train (Hoogeboom et al. 2023).
    patch_size: int = 1
    attention_head_dim: int = 8
    norm_num_groups: int = 8
    # Autoencoder (latent architecture only): each extra block halves the size once.
    vae_block_out_channels: tuple[int, ...] = (16, 32)
    latent_channels: int = 4
    # v-prediction stays well conditioned at both ends of the noise schedule and is what fast
    # few-step solvers are tuned for; epsilon is kept for fine-tuning epsilon checkpoints.
    prediction_type: PredictionType = "v_prediction"
    # Cosine betas leave almost no signal at t = T, so pixel-space samples start from true noise.
    beta_schedule: str = "squaredcos_cap_v2"
    num_train_timesteps: int = 1000
    # Multiplies the schedule's signal-to-noise ratio at every timestep (Hoogeboom et al. 2023,
    # "simple diffusion"): a large image keeps its layout visible through noise that hides a
    # small one, so at 256 px the plain cosine schedule leaves the layout to the last few
    # timesteps near t = T, which training barely visits. (64 / resolution)**2 gives a 256 px
    # image the noise levels a 64 px image has under the plain schedule. 1 = unshifted.
    snr_scale: float = 1.0
    # DPM-Solver++ (2nd order, multistep) reaches DDPM-50 quality in few steps.
    scheduler: str = "DPMSolverMultistepScheduler"
    num_inference_steps: int = 20
    guidance_scale: float = 3.0
    # Guidance only at timesteps t >= guidance_cutoff * T; later steps cost half (0 = always).
    guidance_cutoff: float = 0.0
    text_max_length: int = 64  # prompt tokens kept; radiology prompts are short
    description: str = ""
    extra_unet_config: dict[str, object] = field(default_factory=dict)

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per model pixel along one axis (the patch size in pixel space)."""
        if self.architecture == "pixel":
            return self.patch_size
        return 2 ** (len(self.vae_block_out_channels) - 1)


_PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(
        name="tiny",
        architecture="pixel",
        resolution=32,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=4,
        norm_num_groups=4,
        num_inference_steps=2,
        text_max_length=16,
        description="Tests only: 32 px, about 110k UNet parameters, a 2-step pipeline in ~0.1 s.",
    ),
    "tiny-latent": ModelPreset(
        name="tiny-latent",
        architecture="latent",
        resolution=32,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=4,
        norm_num_groups=4,
        vae_block_out_channels=(8, 8),
        num_inference_steps=2,
        text_max_length=16,
        description="Tests only: the autoencoder path, 32 px images as 16 px latents.",
    ),
    "tiny-patch": ModelPreset(
        name="tiny-patch",
        architecture="pixel",
        resolution=32,
        patch_size=4,
        block_out_channels=(16, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=4,
        norm_num_groups=4,
        prediction_type="sample",
        num_inference_steps=2,
        text_max_length=16,
        extra_unet_config={"addition_embed_type": "text", "addition_embed_type_num_heads": 4},
        description="Tests only: the built-in layout (4 x 4 patches, pooled text, x0-prediction) "
        "at 32 px.",
    ),
    "builtin": ModelPreset(
        name="builtin",
        architecture="pixel",
        resolution=256,
        # 8 x 8 patches: the UNet runs at 32 x 32 with 64 channels in, so a CPU step of a CFG
        # pair costs about a sixth of the same UNet on 256 x 256 pixels.
        patch_size=8,
        block_out_channels=(64, 128, 192),
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        layers_per_block=2,
        attention_head_dim=32,
        norm_num_groups=32,
        # Cross-attention only at 8 x 8, where it is cheap; the prompt also reaches every
        # residual block as an attention-pooled embedding added to the timestep embedding, which
        # carries the global facts (modality, region, view, sex) to full resolution.
        extra_unet_config={"addition_embed_type": "text", "addition_embed_type_num_heads": 4},
        # x0-prediction: the UNet outputs the clean image, not the 64-dimensional noise of each
        # patch, which a net this size cannot reproduce exactly (v0 was trained with v and
        # sampled as noise; Li & He 2025 show the same for large pixel patches).
        prediction_type="sample",
        snr_scale=(64 / 256) ** 2,
        # 10 DPM-Solver++ steps, guidance 4.0 only while t >= T/2: model v10 meets 30 probe
        # targets over seeds 0, 1000, 2000 with them (v9 with 6 steps at 2.5: 25; v10 with 6
        # steps at 2.5: 9 and 9 on seeds 0 and 1000, against 11 and 10), at 2.84 images/s on
        # a quiet 2-core CPU (v1 chose 6 steps at 2.5 by benchmarks/sweep_sampler.py; closing
        # note of the v10 model). v13 keeps them: 29 targets over the three seeds, 11 pooled;
        # v15: 30 over the three seeds, 10 pooled; v16: 31, 10 pooled; v17: 30, 10 pooled;
        # v18: 32, 10 pooled; v19: 36, 12 pooled. Since 2026-12-06 (v19 shipped with 10 at
        # 4.0): 8 steps at guidance 3.0, still guided while t >= T/2 (4 of the 8 steps). On
        # v19 they meet the same targets as 10 steps at 4.0 (12 on each of seeds 0, 1000,
        # 2000, 12 pooled), with images of a prompt less alike (MS-SSIM 0.877 against
        # 0.882), a stronger side check (4.41 against 4.21) and inpainting (23.2 dB against
        # 22.7), 1.3-1.4x faster (sweep_sampler, alternating: 1.64 and 1.78 images/s against
        # 1.26 and 1.24). 7 steps lost a target on seed 0. Since v23: 6 steps at 3.0, guided
        # while t >= T/2 (3 of the 6). On v23 they meet the same 12 targets as 8 steps on each
        # of seeds 0, 1000 and 2000 and pooled, and the same 10 on seed 3000 (7 and 5 steps
        # also keep the 12), 1.4x faster (sweep_sampler, alternating: 2.97, 2.57, 2.69 images/s
        # against 1.64, 2.01, 1.90), with images of a prompt a little more alike (MS-SSIM
        # 0.864/0.852/0.871 against 0.848/0.837/0.856; 5 steps 0.873/0.861/0.881) and joint
        # inpainting 23.1 dB against 23.3.
        num_inference_steps=6,
        guidance_scale=3.0,
        guidance_cutoff=0.5,
        # 48 tokens: the phantoms' longest captions have 37 (a haemorrhage on a sagittal MRI of
        # the head); at 32, 83 of 246 haemorrhage captions of the v16 data lost the word
        # "haemorrhage". v17 is the first model trained with 48.
        text_max_length=48,
        description=(
            "The shipped model: 256 px grayscale in pixel space folded into 8 x 8 patches "
            "(no autoencoder to train), about 14M UNet parameters, fp16 on disk."
        ),
    ),
}


def list_presets() -> list[str]:
    """Names of the model presets, sorted."""
    return sorted(_PRESETS)


def get_preset(name: str) -> ModelPreset:
    """Return a copy of the preset `name`; changing it does not change the table."""
    try:
        preset = _PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown model preset {name!r}; choose one of {', '.join(list_presets())}"
        ) from None
    return dataclasses.replace(preset, extra_unet_config=dict(preset.extra_unet_config))
