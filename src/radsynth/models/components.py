"""The parts of a radsynth diffusion model, built from a preset or loaded from a folder.

A model folder uses diffusers' layout: `model_index.json` naming each component, one
sub-folder per component with its `config.json` and `*.safetensors` weights. The same loader
reads a user's local Stable Diffusion folder (RGB autoencoder, CLIP text encoder); images stay
grayscale on radsynth's side and are converted at the model's edge.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, SchedulerMixin, UNet2DConditionModel

from radsynth.models.presets import ModelPreset, get_preset
from radsynth.models.text_encoders import (
    CLIPPromptEncoder,
    MiniLMPromptEncoder,
    PromptEncoder,
)

MODEL_INDEX = "model_index.json"
# Sampling defaults a user may set on a pipeline (`pipe.guidance_cutoff = x`): saved in
# `_radsynth_defaults` like a trained model's, without making a folder a radsynth-trained one.
SAMPLING_DEFAULTS = ("num_inference_steps", "guidance_scale", "guidance_cutoff")
# ITU-R BT.601 luma: how an RGB decoder's output becomes one gray value.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass
class DiffusionComponents:
    """A denoiser, its noise scheduler, a frozen prompt encoder and an optional autoencoder."""

    # diffusers classes are typed Any: diffusers' lazy imports hide their attributes from mypy.
    unet: Any  # UNet2DConditionModel
    scheduler: Any  # a diffusers SchedulerMixin
    prompt_encoder: PromptEncoder
    vae: Any = None  # AutoencoderKL, or None for a pixel-space model
    # Sampling defaults saved with the model (steps, guidance) and the preset it came from.
    defaults: dict[str, Any] = field(default_factory=dict)
    # Pixel-space models only: the image is folded into patch_size x patch_size blocks
    # (pixel_unshuffle) before the UNet, and unfolded after it.
    patch_size: int = 1

    @property
    def trained_by_radsynth(self) -> bool:
        """Whether radsynth built or trained the model (its defaults name more than sampling
        settings: its preset, trained steps...), so prompts go through radsynth's vocabulary;
        a user's Stable Diffusion folder takes its prompts as written."""
        return any(name not in SAMPLING_DEFAULTS for name in self.defaults)

    @property
    def diffusers_class_name(self) -> str:
        """The `_class_name` written to model_index.json: "StableDiffusionPipeline" for a
        model diffusers can run (a CLIP text encoder and an RGB autoencoder, as a Stable
        Diffusion folder), so `diffusers.DiffusionPipeline.from_pretrained` loads the folder;
        "TextToImagePipeline" for radsynth's own models. radsynth reads both."""
        rgb_vae = self.vae is not None and self.vae.config.in_channels == 3
        if rgb_vae and isinstance(self.prompt_encoder, CLIPPromptEncoder):
            return "StableDiffusionPipeline"
        return "TextToImagePipeline"

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per model pixel along one axis (the patch size without an autoencoder)."""
        if self.vae is None:
            return self.patch_size
        return int(2 ** (len(self.vae.config.block_out_channels) - 1))

    @property
    def sample_size(self) -> int:
        """The model's native image size in pixels."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def size_multiple(self) -> int:
        """Image heights and widths must be multiples of this (UNet and autoencoder steps)."""
        levels = len(self.unet.config.block_out_channels) - 1
        return self.vae_scale_factor * 2**levels

    @property
    def model_channels(self) -> int:
        """Channels of the tensors the UNet denoises."""
        return int(self.unet.config.in_channels)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def image_to_model(self, images: torch.Tensor) -> torch.Tensor:
        """Map grayscale images (B, 1, H, W) in [0, 1] to the space the UNet denoises."""
        pixels = images * 2.0 - 1.0
        if self.vae is None:
            if self.patch_size > 1:
                return torch.nn.functional.pixel_unshuffle(pixels, self.patch_size)
            return pixels
        if self.vae.config.in_channels == 3:
            pixels = pixels.expand(-1, 3, -1, -1)
        # The mode, not a sample: known regions must encode the same way every time.
        latents = self.vae.encode(pixels).latent_dist.mode()
        shift = self.vae.config.get("shift_factor") or 0.0
        return (latents - shift) * self.vae.config.scaling_factor

    def model_to_image(self, latents: torch.Tensor) -> torch.Tensor:
        """Map denoised UNet tensors back to grayscale images (B, 1, H, W) in [0, 1]."""
        if self.vae is None:
            pixels = latents
            if self.patch_size > 1:
                pixels = torch.nn.functional.pixel_shuffle(pixels, self.patch_size)
        else:
            shift = self.vae.config.get("shift_factor") or 0.0
            pixels = self.vae.decode(latents / self.vae.config.scaling_factor + shift).sample
            if pixels.shape[1] == 3:
                weights = torch.tensor(LUMA_WEIGHTS, dtype=pixels.dtype, device=pixels.device)
                pixels = (pixels * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        return ((pixels + 1.0) / 2.0).clamp(0.0, 1.0)

    def to(
        self,
        device: torch.device | str | torch.dtype | None = None,
        dtype: torch.dtype | None = None,
    ) -> DiffusionComponents:
        """Move the trainable networks to `device` (the prompt encoder follows on use).

        radsynth's pipelines compute in float32 (training's mixed precision casts on the fly,
        the weights stay float32): a dtype, given alone (`.to(torch.float16)`) or after the
        device, must be torch.float32.
        """
        if isinstance(device, torch.dtype):
            if dtype is not None:
                raise ValueError("give .to(device, dtype) or .to(dtype), not two dtypes")
            device, dtype = None, device
        if dtype is not None and dtype != torch.float32:
            raise ValueError(
                f"radsynth's pipelines compute in float32 and cannot run in {dtype}: use "
                ".to(device) alone; to store smaller weights, use "
                "save_pretrained(..., weights_dtype=torch.float16)"
            )
        if device is not None:
            self.unet.to(device)
            if self.vae is not None:
                self.vae.to(device)
        return self

    def save_pretrained(self, folder: str | Path, weights_dtype: torch.dtype | None = None) -> Path:
        """Write the model in diffusers' folder layout; `weights_dtype` e.g. torch.float16
        stores the UNet, autoencoder and a CLIP text encoder in it (read back as float32).

        The sampling defaults (`defaults`, a `guidance_cutoff` set on a pipeline included) go
        to `_radsynth_defaults`. A Stable Diffusion model is written as a
        "StableDiffusionPipeline" folder that diffusers loads too (`diffusers_class_name`).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        class_name = self.diffusers_class_name
        index: dict[str, Any] = {
            "_class_name": class_name,
            "_diffusers_version": _diffusers_version(),
            "_radsynth_defaults": self.defaults,
            "_radsynth_patch_size": self.patch_size,
        }
        if class_name == "StableDiffusionPipeline":
            # The parts radsynth does not keep, named absent as diffusers writes them.
            index.update(
                safety_checker=[None, None],
                feature_extractor=[None, None],
                image_encoder=[None, None],
                requires_safety_checker=False,
            )
        for name, model in (("unet", self.unet), ("vae", self.vae)):
            if model is None:
                index[name] = [None, None]
                continue
            saved: Any = copy.deepcopy(model).to(weights_dtype) if weights_dtype else model
            saved.save_pretrained(folder / name, safe_serialization=True)
            index[name] = ["diffusers", type(model).__name__]
        self.scheduler.save_pretrained(folder / "scheduler")
        index["scheduler"] = ["diffusers", type(self.scheduler).__name__]
        encoder = self.prompt_encoder
        if weights_dtype and isinstance(encoder, CLIPPromptEncoder):
            # The CLIP text encoder's weights are stored like the UNet's (MiniLM is a reference).
            half = copy.deepcopy(encoder.text_encoder).to(weights_dtype)
            encoder = CLIPPromptEncoder(half, encoder.tokenizer)
        index.update(encoder.save_pretrained(folder))
        (folder / MODEL_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> DiffusionComponents:
        """Load a radsynth model folder or a local Stable Diffusion folder (float32, CPU)."""
        folder = Path(folder)
        if folder.is_file() and folder.suffix in (".safetensors", ".ckpt"):
            raise ValueError(
                f"{folder} is a single-file checkpoint; radsynth reads diffusers model folders: "
                "convert it once with diffusers (StableDiffusionPipeline.from_single_file(...)"
                ".save_pretrained(DIR, safe_serialization=True))"
            )
        index = read_model_index(folder)
        try:
            unet = _load_diffusers_model(UNet2DConditionModel, folder, "unet")
            vae = None
            if (index.get("vae") or [None])[0] is not None:
                vae = _load_diffusers_model(AutoencoderKL, folder, "vae")
            components = cls(
                unet=unet,
                scheduler=_load_scheduler(folder, index),
                prompt_encoder=_load_prompt_encoder(folder, index),
                vae=vae,
                defaults=dict(index.get("_radsynth_defaults") or {}),
                patch_size=_patch_size(index, folder),
            )
        except (OSError, RuntimeError) as error:  # a damaged or mismatched file
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ValueError(
                f"{folder} could not be loaded ({first[:300]}); the folder is incomplete or "
                "damaged: copy the complete model folder again"
            ) from None
        components.check()
        return components

    def check(self) -> None:
        """Raise ValueError when the parts do not fit together."""
        cross = self.unet.config.cross_attention_dim
        if cross != self.prompt_encoder.hidden_size:
            raise ValueError(
                f"the UNet expects text embeddings {cross} wide but the text encoder gives "
                f"{self.prompt_encoder.hidden_size}; use a UNet built for this encoder"
            )
        if self.vae is not None and self.vae.config.latent_channels != self.model_channels:
            raise ValueError(
                f"the autoencoder makes {self.vae.config.latent_channels}-channel latents but the "
                f"UNet takes {self.model_channels} channels; the folder mixes two models"
            )
        if self.vae is not None and self.patch_size != 1:
            raise ValueError("patches fold pixels; a model with an autoencoder has patch size 1")
        if self.vae is None and self.model_channels != self.patch_size**2:
            raise ValueError(
                f"a pixel-space UNet with {self.patch_size} x {self.patch_size} patches must take "
                f"{self.patch_size**2}-channel input, this one takes {self.model_channels}; "
                "add the autoencoder (vae/) it was trained with, or fix _radsynth_patch_size"
            )


def _patch_size(index: dict[str, Any], folder: Path) -> int:
    value = index.get("_radsynth_patch_size", 1)
    if not isinstance(value, int) or value < 1:
        raise ValueError(
            f"_radsynth_patch_size in {folder / MODEL_INDEX} must be a positive integer, "
            f"got {value!r}"
        )
    return value


def _diffusers_version() -> str:
    import diffusers

    return str(diffusers.__version__)


# Pipelines whose folders hold a plain text-to-image UNet, an optional VAE and one text encoder.
READABLE_PIPELINES = (
    "TextToImagePipeline",
    "StableDiffusionPipeline",
    "StableDiffusionImg2ImgPipeline",
)


def read_model_index(folder: Path) -> dict[str, Any]:
    """Read `model_index.json`, with errors that say what a model folder must contain."""
    if not folder.is_dir():
        raise ValueError(
            f"no model folder at {folder}; pass a folder written by save_pretrained "
            "or a local Stable Diffusion folder (nothing is downloaded)"
        )
    path = folder / MODEL_INDEX
    if not path.is_file():
        raise ValueError(
            f"{folder} has no {MODEL_INDEX}; it is not a diffusers model folder "
            "(write one with save_pretrained)"
        )
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error.msg}); rewrite the folder") from None
    kind = str(index.get("_class_name") or "")
    if kind and kind not in READABLE_PIPELINES:
        raise ValueError(
            f"{path} is a {kind} folder; radsynth reads its own models and Stable Diffusion "
            f"1.x/2.x text-to-image folders ({', '.join(READABLE_PIPELINES)}): SDXL, ControlNet "
            "and inpainting-UNet (9-channel) models are not supported"
        )
    for name in ("unet", "scheduler", "text_encoder"):
        if (index.get(name) or [None])[0] is None:
            raise ValueError(
                f"{path} names no {name}; a radsynth model needs unet, scheduler and text_encoder"
            )
    return dict(index)


def _check_weights(subfolder: Path) -> None:
    if not subfolder.is_dir():
        raise ValueError(f"the model folder lacks {subfolder.name}/ ({subfolder}); copy it in")
    if not (subfolder / "config.json").is_file():
        raise ValueError(f"the model folder lacks {subfolder.name}/config.json ({subfolder})")
    weights = list(subfolder.glob("*.safetensors"))
    if weights and all(".fp16." in w.name or ".bf16." in w.name for w in weights):
        raise ValueError(
            f"{subfolder} holds only half-precision variant weights ({weights[0].name}); "
            "radsynth reads the plain file: rename it without the variant part "
            f"({weights[0].name.replace('.fp16', '').replace('.bf16', '')}; it is read as "
            "float32) or save the model again without a variant"
        )
    if weights:
        return
    if any(subfolder.glob("*.bin")) or any(subfolder.glob("*.ckpt")) or any(subfolder.glob("*.pt")):
        raise ValueError(
            f"{subfolder} holds only pickle weights (.bin/.ckpt/.pt), which radsynth never loads; "
            "convert them to .safetensors first (e.g. with diffusers' save_pretrained)"
        )
    raise ValueError(f"{subfolder} has no *.safetensors weights; copy the complete model folder")


def _load_diffusers_model(model_class: Any, folder: Path, name: str) -> Any:
    _check_weights(folder / name)
    return model_class.from_pretrained(
        folder,
        subfolder=name,
        use_safetensors=True,
        local_files_only=True,
        torch_dtype=torch.float32,
    ).eval()


def _load_scheduler(folder: Path, index: dict[str, Any]) -> Any:
    import diffusers

    class_name = index["scheduler"][1]
    scheduler_class = getattr(diffusers, str(class_name), None)
    if not (isinstance(scheduler_class, type) and issubclass(scheduler_class, SchedulerMixin)):
        raise ValueError(f"unknown scheduler {class_name!r} in {folder / MODEL_INDEX}")
    if not (folder / "scheduler").is_dir():
        raise ValueError(f"the model folder lacks scheduler/ ({folder}); copy it in")
    if not (folder / "scheduler" / "scheduler_config.json").is_file():
        raise ValueError(f"the model folder lacks scheduler/scheduler_config.json ({folder})")
    return scheduler_class.from_pretrained(folder, subfolder="scheduler")


def _load_prompt_encoder(folder: Path, index: dict[str, Any]) -> PromptEncoder:
    library, class_name = index["text_encoder"]
    if class_name == MiniLMPromptEncoder.class_name:
        if not (folder / "text_encoder" / "config.json").is_file():
            raise ValueError(f"the model folder lacks text_encoder/config.json ({folder})")
        return MiniLMPromptEncoder.from_pretrained(folder)
    if library == "transformers" and class_name == "CLIPTextModel":
        _check_weights(folder / "text_encoder")
        tokenizer = folder / "tokenizer"
        if not tokenizer.is_dir():
            raise ValueError(f"the model folder lacks tokenizer/ ({folder}); copy it in")
        if not (tokenizer / "tokenizer.json").is_file() and not (
            (tokenizer / "vocab.json").is_file() and (tokenizer / "merges.txt").is_file()
        ):
            raise ValueError(
                f"{tokenizer} has neither tokenizer.json nor vocab.json and merges.txt; copy "
                "the complete tokenizer folder"
            )
        encoder = CLIPPromptEncoder.from_pretrained(folder)
        # transformers keeps the stored dtype (half-precision weights load as such); radsynth
        # computes in float32, as for the UNet and autoencoder (`torch_dtype=torch.float32`).
        encoder.text_encoder.to(torch.float32)
        return encoder
    raise ValueError(
        f"unsupported text encoder {library}.{class_name} in {folder / MODEL_INDEX}; radsynth "
        "reads all-MiniLM-L6-v2 references and CLIPTextModel"
    )


def build_components(preset: ModelPreset | str, seed: int = 0) -> DiffusionComponents:
    """Build untrained components for `preset`, with weights initialised from `seed`."""
    if isinstance(preset, str):
        preset = get_preset(preset)
    if preset.architecture == "latent" and preset.patch_size != 1:
        raise ValueError(f"preset {preset.name}: patches apply to pixel-space models only")
    if preset.resolution % preset.vae_scale_factor:
        raise ValueError(
            f"preset resolution {preset.resolution} is not divisible by "
            f"its autoencoder factor {preset.vae_scale_factor}"
        )
    prompt_encoder = MiniLMPromptEncoder(max_length=preset.text_max_length)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = _build_vae(preset) if preset.architecture == "latent" else None
        patch = preset.patch_size if vae is None else 1
        channels = preset.latent_channels if vae is not None else patch**2
        unet: Any = UNet2DConditionModel(
            sample_size=preset.resolution // preset.vae_scale_factor,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=preset.block_out_channels,
            down_block_types=preset.down_block_types,
            up_block_types=preset.up_block_types,
            layers_per_block=preset.layers_per_block,
            attention_head_dim=preset.attention_head_dim,
            norm_num_groups=preset.norm_num_groups,
            cross_attention_dim=prompt_encoder.hidden_size,
            **preset.extra_unet_config,
        )
    components = DiffusionComponents(
        unet=unet.eval(),
        scheduler=build_scheduler(preset),
        prompt_encoder=prompt_encoder,
        vae=vae,
        defaults={
            "preset": preset.name,
            "num_inference_steps": preset.num_inference_steps,
            "guidance_scale": preset.guidance_scale,
            "guidance_cutoff": preset.guidance_cutoff,
        },
        patch_size=patch,
    )
    components.check()
    return components


def _build_vae(preset: ModelPreset) -> Any:
    levels = len(preset.vae_block_out_channels)
    vae: Any = AutoencoderKL(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=preset.vae_block_out_channels,
        latent_channels=preset.latent_channels,
        norm_num_groups=min(preset.vae_block_out_channels[0], 32),
        sample_size=preset.resolution,
    )
    return vae.eval()


def scaled_snr_betas(beta_schedule: str, num_train_timesteps: int, snr_scale: float) -> list[float]:
    """Betas whose SNR(t) = alpha_bar / (1 - alpha_bar) is `snr_scale` times the schedule's."""
    from diffusers import DDPMScheduler

    base: Any = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule)
    alpha_bar = base.alphas_cumprod.double()
    snr = alpha_bar / (1.0 - alpha_bar) * snr_scale
    scaled = snr / (1.0 + snr)
    previous = torch.cat([torch.ones(1, dtype=torch.float64), scaled[:-1]])
    betas = torch.clamp(1.0 - scaled / previous, max=0.999)
    return [float(b) for b in betas]


def build_scheduler(preset: ModelPreset) -> Any:
    """The sampling scheduler named by the preset, with the preset's noise schedule."""
    import diffusers

    scheduler_class = getattr(diffusers, preset.scheduler)
    options: dict[str, Any] = {
        "num_train_timesteps": preset.num_train_timesteps,
        "beta_schedule": preset.beta_schedule,
        "prediction_type": preset.prediction_type,
        # "trailing" starts sampling at t = T: with few steps the first step sees pure noise.
        "timestep_spacing": "trailing",
    }
    if preset.snr_scale != 1.0:
        # Saved as trained_betas in scheduler_config.json: any diffusers scheduler rebuilt
        # from the config (training's DDPM, a swapped-in DDIM) gets the same noise levels.
        options["trained_betas"] = scaled_snr_betas(
            preset.beta_schedule, preset.num_train_timesteps, preset.snr_scale
        )
    if preset.scheduler == "DPMSolverMultistepScheduler":
        options["algorithm_type"] = "dpmsolver++"
        options["solver_order"] = 2
    return scheduler_class(**options)
