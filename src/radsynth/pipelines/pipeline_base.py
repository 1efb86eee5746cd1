"""What every radsynth pipeline shares: loading, prompt encoding, image conversion, guidance.

Images cross the public boundary as grayscale: 2-D numpy float32 arrays in [0, 1] (uint8 and
uint16 arrays and PIL images are accepted and scaled) or PIL "L" images. Inside, they are
tensors of shape (batch, 1, height, width) in [0, 1].
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from rich.console import Console
from rich.progress import track

from radsynth.models import DiffusionComponents, normalise_prompts

OutputType = Literal["np", "pil"]
ImageInput = np.ndarray | Image.Image

logger = logging.getLogger("radsynth.pipelines")


@dataclass
class RadiologyPipelineOutput:
    """Generated images: `np` (N, H, W) float32 in [0, 1], or a list of PIL "L" images."""

    images: np.ndarray | list[Image.Image]


class RadiologyPipeline:
    """Base class: holds the components and the steps every task shares."""

    def __init__(self, components: DiffusionComponents) -> None:
        # The UNet's weights are laid out channels-last (NHWC), which oneDNN's CPU convolutions
        # run faster (`benchmarks/bench_generate.py --compare-layout`). Every pipeline does it,
        # so the same components and seed give the same images however the pipeline was made.
        components.unet.to(memory_format=torch.channels_last)
        self.components = components
        self.progress_bar_disabled = False
        self._guidance_cutoff: float | None = None

    @property
    def guidance_cutoff(self) -> float:
        """Classifier-free guidance runs only at timesteps t >= cutoff * T (0 = at every step).

        Below it the step runs the conditional half alone, at half the cost: guidance shapes
        the layout at high noise and adds little at low noise (Kynkaanniemi et al. 2024).
        Defaults to the value saved with the model; assign to override, e.g. 0.0.
        """
        if self._guidance_cutoff is not None:
            return self._guidance_cutoff
        return float(self.components.defaults.get("guidance_cutoff", 0.0))

    @guidance_cutoff.setter
    def guidance_cutoff(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"guidance_cutoff must be in [0, 1], got {value}")
        self._guidance_cutoff = float(value)

    # Diffusers-style access to the parts; assigning `pipe.scheduler` swaps the sampler, e.g.
    # `pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)`.
    @property
    def unet(self) -> Any:
        return self.components.unet

    @property
    def vae(self) -> Any:
        return self.components.vae

    @property
    def scheduler(self) -> Any:
        return self.components.scheduler

    @scheduler.setter
    def scheduler(self, scheduler: Any) -> None:
        self.components.scheduler = scheduler

    @property
    def device(self) -> torch.device:
        return self.components.device

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> RadiologyPipeline:
        """Load a radsynth model folder or a local Stable Diffusion folder; never downloads."""
        return cls(DiffusionComponents.from_pretrained(folder))

    def save_pretrained(self, folder: str | Path, weights_dtype: torch.dtype | None = None) -> Path:
        """Write the model in diffusers' folder layout (safetensors weights)."""
        return self.components.save_pretrained(folder, weights_dtype=weights_dtype)

    def to(self, device: torch.device | str) -> RadiologyPipeline:
        self.components.to(device)
        return self

    def set_progress_bar_config(self, disable: bool = False) -> None:
        """Show (default) or hide the denoising progress bar."""
        self.progress_bar_disabled = disable

    def progress_bar(self, timesteps: torch.Tensor) -> Any:
        console = Console(stderr=True)
        # Off when stderr is not a terminal: a log file gets no half-drawn bars.
        disable = self.progress_bar_disabled or not console.is_terminal
        return track(
            timesteps, description="Denoising", disable=disable, transient=True, console=console
        )

    # -- 1. Check inputs -------------------------------------------------------------------

    def default(self, name: str, value: Any) -> Any:
        """`value`, or the model's saved default for `name` when `value` is None."""
        fallback = {"num_inference_steps": 20, "guidance_scale": 3.0}
        return value if value is not None else self.components.defaults.get(name, fallback[name])

    def check_common(
        self,
        prompt: str | Sequence[str],
        num_inference_steps: int,
        guidance_scale: float,
        num_images_per_prompt: int,
        output_type: str,
    ) -> list[str]:
        """Validate the arguments every pipeline takes; return the prompts as a list."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompt must be a string or a non-empty list of strings")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0 (1 = no guidance), got {guidance_scale}")
        if num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be >= 1, got {num_images_per_prompt}")
        if output_type not in ("np", "pil"):
            raise ValueError(f"output_type must be 'np' or 'pil', got {output_type!r}")
        return prompts

    def check_size(self, height: int, width: int, what: str = "image") -> None:
        """Raise unless height and width are positive multiples of the model's size step."""
        step = self.components.size_multiple
        if height < step or width < step or height % step or width % step:
            raise ValueError(
                f"{what} is {height}x{width} pixels (HxW); this model needs sizes that are "
                f"multiples of {step} (native size {self.components.sample_size}); crop or resize"
            )

    # -- 2. Encode prompt ------------------------------------------------------------------

    def encode_prompt(
        self, prompts: list[str], num_images_per_prompt: int, do_guidance: bool
    ) -> torch.Tensor:
        """Text embeddings for the batch; with guidance, the unconditional half comes first."""
        free_text = bool(self.components.defaults.get("free_text_prompts", False))
        # A model radsynth trained carries its defaults; a folder without them (a user's
        # Stable Diffusion model) takes its prompts as written.
        texts = normalise_prompts(
            prompts, free_text=free_text, vocabulary=bool(self.components.defaults)
        )
        for text in dict.fromkeys(texts):
            cut = self.components.prompt_encoder.cut_text(text)
            if cut:
                # As diffusers does for CLIP's 77 tokens: the model never sees these words.
                logger.warning(
                    "the text encoder keeps %d tokens of a prompt, so it does not see the end "
                    "of %r: %r",
                    self.components.prompt_encoder.kept_tokens,
                    text,
                    cut,
                )
        embeds = self.components.prompt_encoder.encode(texts, self.device)
        embeds = embeds.repeat_interleave(num_images_per_prompt, dim=0)
        if not do_guidance:
            return embeds
        # An empty prompt is the unconditional input: training drops captions to "".
        empty = self.components.prompt_encoder.encode([""], self.device)
        return torch.cat([empty.expand_as(embeds), embeds])

    # -- 3. Prepare timesteps --------------------------------------------------------------

    def prepare_timesteps(self, num_inference_steps: int, strength: float = 1.0) -> torch.Tensor:
        """The sampling timesteps; `strength` < 1 keeps only the last part (partial noising)."""
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        timesteps = self.scheduler.timesteps
        keep = min(max(round(num_inference_steps * strength), 1), len(timesteps))
        start = len(timesteps) - keep
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start)
        return timesteps[start:]

    # -- 4. Prepare latents ----------------------------------------------------------------

    def model_shape(self, batch: int, height: int, width: int) -> tuple[int, int, int, int]:
        factor = self.components.vae_scale_factor
        return (batch, self.components.model_channels, height // factor, width // factor)

    def random_latents(
        self, shape: tuple[int, ...], generator: torch.Generator | None
    ) -> torch.Tensor:
        if isinstance(generator, list) and len(generator) != shape[0]:
            raise ValueError(
                f"pass one generator per image: got {len(generator)} for a batch of {shape[0]} "
                "(prompts x num_images_per_prompt), or a single generator"
            )
        return randn_tensor(shape, generator=generator, device=self.device, dtype=torch.float32)

    # -- 5. Denoising ----------------------------------------------------------------------

    def guided_model_output(
        self, latents: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, guidance_scale: float
    ) -> torch.Tensor:
        """UNet output with classifier-free guidance: uncond + scale * (cond - uncond)."""
        do_guidance = embeds.shape[0] == 2 * latents.shape[0]
        train_steps = int(self.scheduler.config.num_train_timesteps)
        if do_guidance and float(t) < self.guidance_cutoff * train_steps:
            # Past the guidance interval: the conditional half (second) alone.
            embeds, do_guidance = embeds[latents.shape[0] :], False
        model_input = torch.cat([latents] * 2) if do_guidance else latents
        model_input = self.scheduler.scale_model_input(model_input, t)
        with torch.no_grad():
            output = self.unet(model_input, t, encoder_hidden_states=embeds).sample
        if not do_guidance:
            return output
        uncond, cond = output.chunk(2)
        return uncond + guidance_scale * (cond - uncond)

    def step_kwargs(self, generator: torch.Generator | None) -> dict[str, Any]:
        """Extra arguments for `scheduler.step` (stochastic samplers take the generator)."""
        accepted = inspect.signature(self.scheduler.step).parameters
        return {"generator": generator} if "generator" in accepted else {}

    def denoise_masked(
        self,
        latents: torch.Tensor,
        known: torch.Tensor,
        keep: torch.Tensor,
        timesteps: torch.Tensor,
        embeds: torch.Tensor,
        guidance_scale: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Denoise, replacing the known region (`keep` = 1) by the known latents noised to the
        next timestep after every step, so the generated region grows out of its context.
        """
        noise = self.random_latents(tuple(known.shape), generator)
        extra = self.step_kwargs(generator)
        for i, t in enumerate(self.progress_bar(timesteps)):
            model_output = self.guided_model_output(latents, t, embeds, guidance_scale)
            latents = self.scheduler.step(model_output, t, latents, **extra).prev_sample
            if i + 1 < len(timesteps):
                known_now = self.scheduler.add_noise(known, noise, timesteps[i + 1 : i + 2])
            else:
                known_now = known
            latents = keep * known_now + (1.0 - keep) * latents
        return latents

    # -- 6. Postprocess --------------------------------------------------------------------

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.components.model_to_image(latents).float()

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.components.image_to_model(images.to(self.device))

    def keep_mask_for_model(self, regenerate: torch.Tensor) -> torch.Tensor:
        """Pixel mask (1 = regenerate) to model resolution; a model pixel touching any pixel to
        regenerate is regenerated. Returns the complementary keep mask."""
        factor = self.components.vae_scale_factor
        mask = regenerate.float().to(self.device)
        if self.components.vae is None and factor > 1:
            # Patches fold pixels into channels one to one: the mask folds the same way, exactly.
            return 1.0 - torch.nn.functional.pixel_unshuffle(mask, factor)
        if factor > 1:
            mask = torch.nn.functional.max_pool2d(mask, factor)
        return 1.0 - mask


def image_to_tensor(image: ImageInput, name: str = "image") -> torch.Tensor:
    """A grayscale image as a float32 tensor (1, 1, H, W) in [0, 1]."""
    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            array = np.asarray(image, dtype=np.float32) / 65535.0
        else:
            array = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    elif isinstance(image, np.ndarray):
        array = _array_to_unit(image, name)
    else:
        raise ValueError(f"{name} must be a 2-D numpy array or a PIL image, got {type(image)}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grayscale array (H, W), got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]


def _array_to_unit(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be float in [0, 1], uint8 or uint16, got {array.dtype}")
    if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
        raise ValueError(f"{name} values must be finite and in [0, 1]; rescale it first")
    return array.astype(np.float32, copy=False)


def mask_to_tensor(mask_image: ImageInput, height: int, width: int) -> torch.Tensor:
    """A mask as a bool tensor (1, 1, H, W): True (mask > 0.5) = regenerate."""
    mask = image_to_tensor(mask_image, "mask_image") > 0.5
    if tuple(mask.shape[-2:]) != (height, width):
        raise ValueError(
            f"mask_image is {tuple(mask.shape[-2:])} (H, W) but image is {(height, width)}; "
            "give a mask of the same size"
        )
    if not mask.any():
        raise ValueError(
            "mask_image selects no pixels (all <= 0.5); mark the area to change with 1"
        )
    return mask


def postprocess(images: torch.Tensor, output_type: str) -> RadiologyPipelineOutput:
    """(B, 1, H, W) tensors in [0, 1] to the public output type."""
    arrays = images[:, 0].detach().cpu().numpy().astype(np.float32, copy=False)
    if output_type == "np":
        return RadiologyPipelineOutput(images=arrays)
    pil = [Image.fromarray(np.round(a * 255.0).astype(np.uint8), mode="L") for a in arrays]
    return RadiologyPipelineOutput(images=pil)
