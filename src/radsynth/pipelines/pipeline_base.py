"""What every radsynth pipeline shares: loading, prompt encoding, image conversion, guidance.

Images cross the public boundary as grayscale: 2-D numpy float32 arrays in [0, 1] (uint8 and
uint16 arrays, PIL images and torch tensors are accepted and scaled; a single leading axis of
size 1, (1, H, W) or (1, 1, H, W), is dropped) or PIL "L" images. Inside, they are tensors of
shape (batch, 1, height, width) in [0, 1]. Masks also take 0/1 label maps of any integer type
(see `mask_to_tensor`). The pipelines compute in float32.

The call arguments follow diffusers' pipelines: `output_type` ("np", "pil" or "pt"),
`return_dict`, `negative_prompt`, `callback_on_step_end` with
`callback_on_step_end_tensor_inputs`, `set_progress_bar_config(...)`, and `latents` for
text-to-image.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
from collections.abc import Callable, Sequence
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

OutputType = Literal["np", "pil", "pt"]
OUTPUT_TYPES: tuple[str, ...] = ("np", "pil", "pt")
ImageInput = np.ndarray | Image.Image | torch.Tensor
# diffusers' `callback_on_step_end(pipe, step_index, timestep, callback_kwargs) -> dict`.
StepEndCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]
# The tensors a step-end callback may ask for (diffusers' `_callback_tensor_inputs`).
CALLBACK_TENSOR_INPUTS: tuple[str, ...] = ("latents", "prompt_embeds", "negative_prompt_embeds")
# diffusers hands `set_progress_bar_config`'s keywords to tqdm. radsynth draws its bar with
# rich: these four are honoured; the rest of tqdm's keywords only change how tqdm draws and are
# accepted without effect (a warning names them).
PROGRESS_BAR_OPTIONS = ("disable", "desc", "leave", "file")
TQDM_DRAWING_OPTIONS = (
    "ascii", "bar_format", "colour", "delay", "dynamic_ncols", "gui", "initial", "lock_args",
    "maxinterval", "mininterval", "miniters", "ncols", "nrows", "position", "postfix",
    "smoothing", "total", "unit", "unit_divisor", "unit_scale", "write_bytes",
)  # fmt: skip

logger = logging.getLogger("radsynth.pipelines")


@dataclass
class RadiologyPipelineOutput:
    """Generated images: `np` (N, H, W) float32 in [0, 1], a list of PIL "L" images, or `pt`
    a float32 tensor (N, 1, H, W) in [0, 1] on the pipeline's device."""

    images: np.ndarray | list[Image.Image] | torch.Tensor


@dataclass
class StepEnd:
    """A diffusers-style `callback_on_step_end` and the names of the tensors it is given.

    Called after every denoising step as `callback(pipe, step_index, timestep, kwargs)`, where
    `kwargs` maps each requested name to its tensor: `latents` (B, C, h, w), what the next step
    starts from; `prompt_embeds` (B, tokens, width); `negative_prompt_embeds`, the
    unconditional half under classifier-free guidance (None without guidance). It returns a
    dict; any of those tensors in it replaces the pipeline's for the following steps.
    """

    callback: StepEndCallback
    tensor_inputs: tuple[str, ...]

    def __call__(
        self,
        pipe: RadiologyPipeline,
        step_index: int,
        timestep: torch.Tensor,
        latents: torch.Tensor,
        embeds: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the callback; return the latents and embeddings to go on with."""
        batch = latents.shape[0]
        guided = embeds.shape[0] == 2 * batch
        tensors: dict[str, Any] = {
            "latents": latents,
            "prompt_embeds": embeds[batch:] if guided else embeds,
            "negative_prompt_embeds": embeds[:batch] if guided else None,
        }
        given = {name: tensors[name] for name in self.tensor_inputs}
        returned = self.callback(pipe, step_index, timestep, given)
        if not isinstance(returned, dict):
            raise TypeError(
                "callback_on_step_end must return a dict (the callback_kwargs it was given, "
                f"changed or not), got {type(returned).__name__}"
            )
        for name in CALLBACK_TENSOR_INPUTS:
            if name in returned and returned[name] is not tensors[name]:
                tensors[name] = _same_shape(returned[name], tensors[name], name)
        if guided:
            embeds = torch.cat([tensors["negative_prompt_embeds"], tensors["prompt_embeds"]])
        else:
            embeds = tensors["prompt_embeds"]
        return tensors["latents"], embeds


def _same_shape(value: Any, before: torch.Tensor | None, name: str) -> torch.Tensor:
    """A tensor a step-end callback returned, checked against the one it replaces."""
    if before is None:
        raise ValueError(f"callback_on_step_end returned {name}, which exists only with guidance")
    if not isinstance(value, torch.Tensor) or value.shape != before.shape:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"callback_on_step_end returned {name} of shape {shape}; it must keep the shape "
            f"{tuple(before.shape)} it was given"
        )
    return value.to(before.device, torch.float32)


class RadiologyPipeline:
    """Base class: holds the components and the steps every task shares."""

    def __init__(self, components: DiffusionComponents) -> None:
        # The UNet's weights are laid out channels-last (NHWC), which oneDNN's CPU convolutions
        # run faster (`benchmarks/bench_generate.py --compare-layout`). Every pipeline does it,
        # so the same components and seed give the same images however the pipeline was made.
        components.unet.to(memory_format=torch.channels_last)
        self.components = components
        self._progress_bar_config: dict[str, Any] = {}

    @property
    def guidance_cutoff(self) -> float:
        """Classifier-free guidance runs only at timesteps t >= cutoff * T (0 = at every step).

        Below it the step runs the conditional half alone, at half the cost: guidance shapes
        the layout at high noise and adds little at low noise (Kynkaanniemi et al. 2024).
        Defaults to the value saved with the model; assign to change it, e.g. 0.0.

        The value is one of the model's sampling defaults (`components.defaults`): assigning
        it changes it for every pipeline built from the same components
        (`InpaintPipeline(pipe.components)`), and `save_pretrained` saves it with the model.
        """
        return float(self.components.defaults.get("guidance_cutoff", 0.0))

    @guidance_cutoff.setter
    def guidance_cutoff(self, value: float) -> None:
        if (
            not isinstance(value, numbers.Real)
            or isinstance(value, bool)
            or not 0.0 <= value <= 1.0
        ):
            raise ValueError(f"guidance_cutoff must be a number in [0, 1], got {value!r}")
        # A new dict, as training does: components copied with dataclasses.replace keep theirs.
        self.components.defaults = {**self.components.defaults, "guidance_cutoff": float(value)}

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
        """Write the model in diffusers' folder layout (safetensors weights), with its sampling
        defaults as they are now (a `guidance_cutoff` assigned to the pipeline included)."""
        return self.components.save_pretrained(folder, weights_dtype=weights_dtype)

    def to(
        self,
        device: torch.device | str | torch.dtype | None = None,
        dtype: torch.dtype | None = None,
    ) -> RadiologyPipeline:
        """Move the networks to `device`, as `pipe.to("cuda")`. The pipelines compute in
        float32, so a dtype other than torch.float32 is refused (`.to(torch.float16)` and
        `.to("cuda", torch.bfloat16)` raise ValueError)."""
        self.components.to(device, dtype)
        return self

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Configure the denoising progress bar with diffusers' (tqdm's) keywords; each call
        replaces the previous configuration, as in diffusers.

        `disable=True` hides it, `desc` labels it ("Denoising"), `leave=True` keeps it on screen
        when done (default: it vanishes), `file` writes it there instead of stderr. The bar is
        drawn only on a terminal. tqdm's drawing options (`ncols`, `position`, `mininterval`,
        ...) are accepted and have no effect: radsynth draws the bar with rich.
        """
        unknown = sorted(set(kwargs) - set(PROGRESS_BAR_OPTIONS) - set(TQDM_DRAWING_OPTIONS))
        if unknown:
            raise TypeError(
                f"set_progress_bar_config got unknown keyword(s) {', '.join(unknown)}; it takes "
                f"{', '.join(PROGRESS_BAR_OPTIONS)} and tqdm's drawing options"
            )
        unused = sorted(set(kwargs) & set(TQDM_DRAWING_OPTIONS))
        if unused:
            logger.warning(
                "radsynth draws its progress bar with rich: %s have no effect (it uses %s)",
                ", ".join(unused),
                ", ".join(PROGRESS_BAR_OPTIONS),
            )
        self._progress_bar_config = dict(kwargs)

    @property
    def progress_bar_disabled(self) -> bool:
        """Whether `set_progress_bar_config(disable=True)` hid the progress bar."""
        return bool(self._progress_bar_config.get("disable") or False)

    def progress_bar(self, timesteps: torch.Tensor) -> Any:
        config = self._progress_bar_config
        file = config.get("file")
        console = Console(stderr=True) if file is None else Console(file=file)
        # Off when its stream is not a terminal: a log file gets no half-drawn bars.
        disable = self.progress_bar_disabled or not console.is_terminal
        return track(
            timesteps,
            description=str(config.get("desc") or "Denoising"),
            disable=disable,
            transient=not config.get("leave", False),
            console=console,
        )

    # -- 1. Check inputs -------------------------------------------------------------------

    def default(self, name: str, value: Any) -> Any:
        """`value`, or the model's saved default for `name` when `value` is None."""
        fallback = {"num_inference_steps": 20, "guidance_scale": 3.0}
        return value if value is not None else self.components.defaults.get(name, fallback[name])

    def check_common(
        self,
        prompt: str | Sequence[str],
        num_inference_steps: int | None,
        guidance_scale: float | None,
        num_images_per_prompt: int,
        output_type: str,
    ) -> tuple[list[str], int, float]:
        """Validate the arguments every pipeline takes, the model's defaults filling in steps
        and guidance left at None; return the prompts as a list, the steps and the guidance."""
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, Sequence) and not isinstance(prompt, bytes | bytearray):
            prompts = list(prompt)
        else:
            raise ValueError(
                'prompt must be a string or a non-empty list of strings ("" for an '
                f"unconditional image), got {type(prompt).__name__}"
            )
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompt must be a string or a non-empty list of strings")
        steps = self.default("num_inference_steps", num_inference_steps)
        train_steps = int(self.scheduler.config.num_train_timesteps)
        if not _is_whole_number(steps):
            raise ValueError(f"num_inference_steps must be an integer, got {steps!r}")
        if not 1 <= steps <= train_steps:
            raise ValueError(
                f"num_inference_steps must be between 1 and the scheduler's {train_steps} "
                f"training timesteps, got {steps}"
            )
        guidance = self.default("guidance_scale", guidance_scale)
        if not isinstance(guidance, numbers.Real) or isinstance(guidance, bool):
            raise ValueError(f"guidance_scale must be a number, got {guidance!r}")
        if not math.isfinite(guidance) or guidance < 0:
            raise ValueError(
                f"guidance_scale must be a finite number >= 0 (1 = no guidance), got {guidance}"
            )
        if not _is_whole_number(num_images_per_prompt) or num_images_per_prompt < 1:
            raise ValueError(
                f"num_images_per_prompt must be an integer >= 1, got {num_images_per_prompt!r}"
            )
        if output_type not in OUTPUT_TYPES:
            raise ValueError(
                "output_type must be 'np' (numpy float32 in [0, 1]), 'pil' (PIL \"L\" images) or "
                f"'pt' (a float32 torch tensor (B, 1, H, W) in [0, 1]), got {output_type!r}"
            )
        return prompts, int(steps), float(guidance)

    def check_negative_prompt(
        self, negative_prompt: str | Sequence[str] | None, prompts: list[str], guidance: float
    ) -> list[str] | None:
        """The negative prompts, one per prompt (a string applies to all), or None.

        A negative prompt replaces the empty prompt as the unconditional input of classifier-
        free guidance, steering away from it. Without guidance (guidance_scale <= 1), and at
        the steps past `guidance_cutoff`, there is no unconditional input, so it has no effect
        (a warning says so for guidance_scale <= 1), as in diffusers.
        """
        if negative_prompt is None:
            return None
        if isinstance(negative_prompt, str):
            negatives = [negative_prompt] * len(prompts)
        elif isinstance(negative_prompt, Sequence) and not isinstance(
            negative_prompt, bytes | bytearray
        ):
            negatives = list(negative_prompt)
        else:
            raise ValueError(
                "negative_prompt must be a string or a list of strings, one per prompt, got "
                f"{type(negative_prompt).__name__}"
            )
        if not all(isinstance(n, str) for n in negatives):
            raise ValueError("negative_prompt must be a string or a list of strings")
        if len(negatives) != len(prompts):
            raise ValueError(
                f"negative_prompt has {len(negatives)} prompts but prompt has {len(prompts)}; "
                "give one negative prompt per prompt, or a single string for all"
            )
        if guidance <= 1.0:
            logger.warning(
                "negative_prompt has no effect without classifier-free guidance "
                "(guidance_scale %g <= 1); set guidance_scale > 1 to use it",
                guidance,
            )
            return None
        return negatives

    def check_callback(
        self,
        callback_on_step_end: StepEndCallback | None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None,
    ) -> StepEnd | None:
        """The step-end callback with the tensors it asks for (default: `latents`), or None."""
        names = (
            ["latents"]
            if callback_on_step_end_tensor_inputs is None
            else list(callback_on_step_end_tensor_inputs)
        )
        unknown = [name for name in names if name not in CALLBACK_TENSOR_INPUTS]
        if unknown or isinstance(callback_on_step_end_tensor_inputs, str):
            raise ValueError(
                "callback_on_step_end_tensor_inputs must be a list of names among "
                f"{list(CALLBACK_TENSOR_INPUTS)}, got {callback_on_step_end_tensor_inputs!r}"
            )
        if callback_on_step_end is None:
            return None
        if not callable(callback_on_step_end):
            raise ValueError(
                "callback_on_step_end must be a function (pipe, step_index, timestep, "
                f"callback_kwargs) -> dict, got {type(callback_on_step_end).__name__}"
            )
        return StepEnd(callback_on_step_end, tuple(names))

    def check_size(self, height: int, width: int, what: str = "image") -> None:
        """Raise unless height and width are positive multiples of the model's size step."""
        step = self.components.size_multiple
        if not (_is_whole_number(height) and _is_whole_number(width)):
            raise ValueError(
                f"{what}: height and width must be integers, got {height!r}, {width!r}"
            )
        if height < step or width < step or height % step or width % step:
            raise ValueError(
                f"{what} is {height}x{width} pixels (HxW); this model needs sizes that are "
                f"multiples of {step} (native size {self.components.sample_size}); crop or resize"
            )

    # -- 2. Encode prompt ------------------------------------------------------------------

    def encode_prompt(
        self,
        prompts: list[str],
        num_images_per_prompt: int,
        do_guidance: bool,
        negative_prompts: list[str] | None = None,
    ) -> torch.Tensor:
        """Text embeddings for the batch; with guidance, the unconditional half comes first:
        the empty prompt's embedding, or that of each prompt's negative prompt."""
        free_text = bool(self.components.defaults.get("free_text_prompts", False))
        # A model radsynth trained carries its defaults; a folder without them (a user's
        # Stable Diffusion model) takes its prompts as written.
        vocabulary = self.components.trained_by_radsynth
        texts = normalise_prompts(prompts, free_text=free_text, vocabulary=vocabulary)
        negatives = None
        if do_guidance and negative_prompts is not None:
            negatives = normalise_prompts(
                negative_prompts, free_text=free_text, vocabulary=vocabulary
            )
        for text in dict.fromkeys(texts + (negatives or [])):
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
        if negatives is not None:
            uncond = self.components.prompt_encoder.encode(negatives, self.device)
            return torch.cat([uncond.repeat_interleave(num_images_per_prompt, dim=0), embeds])
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
        # `strength` is rounded to whole steps; below half a step it still runs one.
        keep = min(max(round(num_inference_steps * strength), 1), len(timesteps))
        if keep - num_inference_steps * strength > 0.5:
            logger.warning(
                "strength %g runs %d of %d steps, an effective strength of %.2f: strengths "
                "are rounded to whole steps; raise num_inference_steps for a finer one",
                strength,
                keep,
                num_inference_steps,
                keep / num_inference_steps,
            )
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

    def check_latents(self, latents: Any, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """User-given initial noise (diffusers' `latents`) as float32 on the device, checked
        against the shape the call needs."""
        factor = self.components.vae_scale_factor
        if not isinstance(latents, torch.Tensor):
            raise ValueError(
                f"latents must be a torch tensor of shape {shape}, got {type(latents)}"
            )
        if tuple(latents.shape) != shape:
            raise ValueError(
                f"latents must have shape {shape} (prompts x num_images_per_prompt, the "
                f"model's {shape[1]} channels, height / {factor}, width / {factor}), got "
                f"{tuple(latents.shape)}"
            )
        if not latents.is_floating_point():
            raise ValueError(
                f"latents must be a float tensor (standard normal noise), got {latents.dtype}"
            )
        return latents.to(self.device, torch.float32)

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
        step_end: StepEnd | None = None,
    ) -> torch.Tensor:
        """Denoise, replacing the known region (`keep` = 1) by the known latents noised to the
        next timestep after every step, so the generated region grows out of its context.
        `step_end` is called after each step, on the blended latents.
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
            if step_end is not None:
                latents, embeds = step_end(self, i, t, latents, embeds)
        return latents

    # -- 6. Postprocess --------------------------------------------------------------------

    def output(
        self, images: torch.Tensor, output_type: str, return_dict: bool
    ) -> RadiologyPipelineOutput | tuple[Any, ...]:
        """(B, 1, H, W) images in [0, 1] as the call asked: a RadiologyPipelineOutput, or with
        `return_dict=False` a tuple whose only item is the images (diffusers' `[0]`)."""
        if output_type == "pt":
            images = images.to(self.device)
        result = postprocess(images, output_type)
        return result if return_dict else (result.images,)

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


def _is_whole_number(value: Any) -> bool:
    """An int (Python or numpy), not a bool nor a float."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# PIL modes read as they are stored; any other mode (RGB, P, LA...) is converted to "L".
_PIL_16BIT = ("I;16", "I;16B", "I;16L")


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """A PIL image's pixels as a numpy array of its own type: bool ("1"), uint8 ("L" and
    modes converted to it), uint16 ("I;16*"), int32 ("I") or float32 ("F")."""
    if image.mode in _PIL_16BIT:
        return np.asarray(image).astype(np.uint16)
    if image.mode in ("1", "L", "I", "F"):
        return np.array(image)  # a writable copy: torch warns on read-only arrays
    return np.array(image.convert("L"))


def _int_as_16bit(array: np.ndarray, name: str) -> np.ndarray:
    """A 32-bit integer image (PIL mode "I") as uint16 where its values fit 0..65535."""
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0 or high > 65535:
        raise ValueError(
            f'{name} is a 32-bit integer image (PIL mode "I") with values {low}..{high}, '
            "outside 16-bit 0..65535; give a float array in [0, 1] (or uint8/uint16) instead"
        )
    return array.astype(np.uint16)


def image_to_tensor(image: ImageInput, name: str = "image") -> torch.Tensor:
    """A grayscale image as a float32 tensor (1, 1, H, W) in [0, 1].

    Numpy arrays: float in [0, 1], uint8 (/255), uint16 (/65535) or bool. PIL images: "L" and
    modes converted to it, 16-bit "I;16", 32-bit "I" read as 16-bit where its values fit
    0..65535, float "F" in [0, 1].
    """
    if isinstance(image, Image.Image):
        array = _pil_to_array(image)
        if image.mode == "I":
            array = _int_as_16bit(array, name)
        array = _array_to_unit(array, name)
    elif isinstance(image, np.ndarray | torch.Tensor):
        array = _array_to_unit(_one_image(image, name), name)
    else:
        raise ValueError(
            f"{name} must be a 2-D numpy array or a PIL image (or a torch tensor), got "
            f"{type(image)}"
        )
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]


def _one_image(image: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """A numpy array or torch tensor of one grayscale image as a 2-D numpy array: (H, W), or
    (1, H, W) and (1, 1, H, W) with the leading axes dropped, or (H, W, 1) with its channel."""
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.float()  # half precision: numpy has no bfloat16
        array = tensor.numpy()
    else:
        array = image
    if array.ndim in (3, 4) and all(size == 1 for size in array.shape[:-2]):
        array = array.reshape(array.shape[-2:])
    elif array.ndim == 3 and array.shape[-1] == 1:  # (H, W, 1): an image library's channel axis
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D grayscale array (H, W), (1, H, W), (1, 1, H, W) or (H, W, 1), "
            f"got shape {tuple(array.shape)}; pass one grayscale image (num_images_per_prompt "
            "makes more)"
        )
    return array


def _warn_if_few_bits(array: np.ndarray, name: str) -> None:
    """Warn when 16-bit data never exceed 12 bits (or 8): read /65535 they look nearly black."""
    high = int(array.max()) if array.size else 0
    if high == 0 or high > 4095:
        return
    bits, top = (8, 255) if high <= 255 else (12, 4095)
    logger.warning(
        "%s is 16-bit data whose values never exceed %d: they look like %d-bit data (e.g. a "
        "DICOM pixel_array), which reads as nearly black on the 16-bit scale (brightest pixel "
        "%.3f of white); scale them to [0, 1] first, e.g. image / %.1f",
        name,
        high,
        bits,
        high / 65535.0,
        top,
    )


def _array_to_unit(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        _warn_if_few_bits(array, name)
        return array.astype(np.float32) / 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{name} must be float in [0, 1], uint8, uint16 or bool, got {array.dtype}; "
            "scale other types to float in [0, 1] first"
        )
    if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
        raise ValueError(f"{name} values must be finite and in [0, 1]; rescale it first")
    return array.astype(np.float32, copy=False)


MASK_CONVENTIONS = (
    "mark the area to change with 1 (float in [0, 1], bool, or a 0/1 label map of any integer "
    "type) or with white (255 in uint8, 65535 in uint16 or other integer types); pixels up to "
    "half of that are kept"
)


def _mask_to_unit(mask_image: ImageInput) -> np.ndarray:
    """A mask as float32 in [0, 1]: integer masks whose values are only 0 and 1 are label maps
    (1 = regenerate), other integer masks are scaled from 0..255 (uint8, or values up to 255)
    or 0..65535 (uint16, or values up to 65535); bool and float [0, 1] as they are."""
    name = "mask_image"
    if isinstance(mask_image, Image.Image):
        array = _pil_to_array(mask_image)
    elif isinstance(mask_image, np.ndarray | torch.Tensor):
        array = _one_image(mask_image, name)
    else:
        raise ValueError(
            f"{name} must be a 2-D numpy array or a PIL image (or a torch tensor), got "
            f"{type(mask_image)}"
        )
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        return _array_to_unit(array, name)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be bool, float in [0, 1], or an integer type (uint8, uint16, int32, "
            f"int64...: a 0/1 label map, or white = 255/65535), got {array.dtype}"
        )
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low >= 0 and high <= 1:
        return array.astype(np.float32)  # a label map: 1 = change
    if low < 0 or high > 65535:
        raise ValueError(
            f"{name} has values {low}..{high}; an integer mask is a 0/1 label map or white on "
            "black in 0..255 or 0..65535"
        )
    top = (
        255.0 if array.dtype == np.uint8 or (array.dtype != np.uint16 and high <= 255) else 65535.0
    )
    return array.astype(np.float32) / np.float32(top)


def mask_to_tensor(mask_image: ImageInput, height: int, width: int) -> torch.Tensor:
    """A mask as a bool tensor (1, 1, H, W): True = regenerate.

    Float masks in [0, 1] select where > 0.5, bool masks where True. Integer masks (uint8,
    uint16, int32, int64, PIL "L", "I;16", "I") whose values are only 0 and 1 are label maps
    selecting the 1s, as a segmentation mask; others are white on black: uint8 (or values up
    to 255) selects > 127.5, uint16 (or values up to 65535) > 32767.5.
    """
    array = _mask_to_unit(mask_image)
    if array.ndim != 2:
        raise ValueError(
            f"mask_image must be a 2-D grayscale array (H, W), got shape {array.shape}"
        )
    mask = torch.from_numpy(np.ascontiguousarray(array))[None, None] > 0.5
    if tuple(mask.shape[-2:]) != (height, width):
        raise ValueError(
            f"mask_image is {tuple(mask.shape[-2:])} (H, W) but image is {(height, width)}; "
            "give a mask of the same size"
        )
    if not mask.any():
        raise ValueError(f"mask_image selects no pixels; {MASK_CONVENTIONS}")
    return mask


def postprocess(images: torch.Tensor, output_type: str) -> RadiologyPipelineOutput:
    """(B, 1, H, W) tensors in [0, 1] to the public output type ("pt": as they are, float32)."""
    if output_type == "pt":
        return RadiologyPipelineOutput(images=images.detach().to(torch.float32))
    arrays = images[:, 0].detach().cpu().numpy().astype(np.float32, copy=False)
    if output_type == "np":
        return RadiologyPipelineOutput(images=arrays)
    pil = [Image.fromarray(np.round(a * 255.0).astype(np.uint8), mode="L") for a in arrays]
    return RadiologyPipelineOutput(images=pil)
