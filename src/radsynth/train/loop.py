"""`train(config)`: denoising training of a radsynth model on a manifest folder.

Runs unchanged in one process or under `accelerate launch --num_processes N` (CPU or GPU): each
process draws its own batch, gradients are averaged by accelerate. The objective follows the
model's scheduler (x0-prediction for the built-in preset, v-prediction for the small presets,
epsilon for most Stable Diffusion checkpoints), weighted per timestep (`min_snr_weights`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from radsynth.io.png import write_png
from radsynth.models import (
    DiffusionComponents,
    MiniLMPromptEncoder,
    PromptEncoder,
    build_components,
)
from radsynth.pipelines import TextToImagePipeline
from radsynth.train.checkpoint import (
    checkpoint_dir,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_rng_state,
)
from radsynth.train.config import TrainConfig
from radsynth.train.data import ManifestImageDataset
from radsynth.train.report import (
    image_grid,
    machine_description,
    write_loss_curve,
    write_training_record,
)

LOSS_LOG = "loss.jsonl"


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The generator for one process's batch, noise and dropout at `step` (resumable)."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def min_snr_weights(
    alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, gamma: float | None, prediction: str
) -> torch.Tensor:
    """Per-sample loss weights.

    epsilon and v: Min-SNR-gamma, min(SNR, gamma) / SNR for epsilon and / (SNR + 1) for v.
    sample (x0-prediction): min(SNR + 1, gamma), the weight of the v-loss on an x0 error
    (|v - v_hat|^2 = (SNR + 1) |x0 - x0_hat|^2) capped at low noise, as in Li & He 2025
    ("x-prediction, v-loss"): high-noise steps keep weight 1, so layout is learnt first.
    No gamma: uniform weights in the model's own target.
    """
    if gamma is None:
        return torch.ones(timesteps.shape, dtype=torch.float32)
    alpha_bar = alphas_cumprod[timesteps].float()
    snr = alpha_bar / (1.0 - alpha_bar)
    if prediction == "sample":
        return torch.clamp(snr + 1.0, max=gamma)
    clipped = torch.clamp(snr, max=gamma)
    return clipped / (snr + 1.0) if prediction == "v_prediction" else clipped / snr


def initial_components(config: TrainConfig) -> DiffusionComponents:
    """Fine-tune `init_from` when given, else build the preset from `seed`; with
    `text_max_length`, the MiniLM text encoder keeps that many caption tokens."""
    if config.init_from is not None:
        components = DiffusionComponents.from_pretrained(config.init_from)
    else:
        components = build_components(config.preset or "tiny", seed=config.seed)
    wanted = config.text_max_length
    encoder = components.prompt_encoder
    if wanted is None or wanted == encoder.kept_tokens:
        return components
    if not isinstance(encoder, MiniLMPromptEncoder):
        raise ValueError(
            f"--text-max-length sets the tokens of radsynth's MiniLM text encoder; this model's "
            f"{type(encoder).__name__} keeps its tokenizer's {encoder.kept_tokens}"
        )
    # The UNet attends over however many tokens it is given: a longer encoding only adds
    # positions, the first ones are unchanged (MiniLM masks its padding).
    return dataclasses.replace(components, prompt_encoder=MiniLMPromptEncoder(wanted))


def captions_cut(encoder: PromptEncoder, captions: list[str]) -> tuple[int, int]:
    """(captions longer than the tokens `encoder` keeps, the most tokens of any caption)."""
    unique = list(dict.fromkeys(captions))
    counts = dict(zip(unique, encoder.token_counts(unique), strict=True))
    cut = sum(counts[caption] > encoder.kept_tokens for caption in captions)
    return cut, max(counts.values(), default=0)


def steps_before(components: DiffusionComponents) -> int:
    """Steps a run's starting model was already trained (its parent's, for a fine-tune; 0 for a
    preset): a fine-tune continues its parent's training, so its model counts them too."""
    return int(components.defaults.get("trained_steps", 0))


def diffusion_loss(
    components: DiffusionComponents,
    unet: Any,
    noise_scheduler: Any,  # a DDPMScheduler
    images: torch.Tensor,
    captions: list[str],
    generator: torch.Generator,
    config: TrainConfig,
    finding_masks: torch.Tensor | None = None,
    structure_masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """`p_losses`: noise the batch at random timesteps and regress the prediction target.

    `finding_masks` (B, 1, H, W) in [0, 1], with `config.finding_loss_weight`: the squared
    error is weighted `finding_loss_weight` inside the findings and 1 elsewhere
    (`mask_weights`), normalised per image so an image without a finding keeps its loss.
    `structure_masks` with `config.structure_loss_weight` add their weight the same way (a
    position in both gets 1 + (w_finding - 1) x its finding share + (w_structure - 1) x its
    structure share).
    """
    device = images.device
    batch = images.shape[0]
    dropped = torch.rand(batch, generator=generator) < config.prompt_dropout
    texts = ["" if drop else text for text, drop in zip(captions, dropped.tolist(), strict=True)]
    with torch.no_grad():
        latents = components.image_to_model(images)
        # Captions arrive normalised by the dataset (`training_caption`).
        embeds = components.prompt_encoder.encode(texts, device)
    noise = torch.randn(latents.shape, generator=generator).to(device)
    steps = noise_scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, steps, (batch,), generator=generator)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps.to(device))
    prediction = noise_scheduler.config.prediction_type
    if prediction == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps.to(device))
    elif prediction == "sample":
        target = latents
    else:
        target = noise
    predicted = unet(noisy, timesteps.to(device), encoder_hidden_states=embeds).sample
    squared = F.mse_loss(predicted.float(), target.float(), reduction="none")
    spatial: torch.Tensor | None = None
    if finding_masks is not None and config.finding_loss_weight != 1.0:
        spatial = mask_weights(finding_masks, squared.shape[-2:], config.finding_loss_weight)
    if structure_masks is not None and config.structure_loss_weight != 1.0:
        extra = mask_weights(structure_masks, squared.shape[-2:], config.structure_loss_weight)
        spatial = extra if spatial is None else spatial + extra - 1.0
    if spatial is not None:
        spatial = spatial.to(device)
        per_sample = (squared * spatial).mean(dim=(1, 2, 3)) / spatial.mean(dim=(1, 2, 3))
    else:
        per_sample = squared.mean(dim=(1, 2, 3))
    weights = min_snr_weights(
        noise_scheduler.alphas_cumprod, timesteps, config.snr_gamma, prediction
    ).to(device)
    return (per_sample * weights).mean()


def mask_weights(
    masks: torch.Tensor, size: tuple[int, ...] | torch.Size, weight: float
) -> torch.Tensor:
    """Per-position loss weights (B, 1, h, w) at the model's spatial size: 1 + (weight - 1) x
    the share of mask (finding or structure) pixels each position covers (an 8 x 8 patch of a
    patch model, a latent pixel of an autoencoder model)."""
    rows, cols = (int(n) for n in size)
    share = F.adaptive_avg_pool2d(masks.float(), (rows, cols))
    return 1.0 + (weight - 1.0) * share


@torch.no_grad()
def update_ema(ema_unet: Any, unet: Any, step: int, max_decay: float) -> None:
    """EMA of the weights; the decay warms up so early weights are not frozen in."""
    decay = min(max_decay, (1 + step) / (10 + step))
    for ema_param, param in zip(ema_unet.parameters(), unet.parameters(), strict=True):
        ema_param.lerp_(param.detach().to(ema_param.dtype), 1.0 - decay)


def write_samples(
    path: Path, components: DiffusionComponents, ema_unet: Any, prompts: list[str], seed: int
) -> Path:
    """A grid of images from the EMA weights, one per prompt, seeds seed, seed+1, ..."""
    sampler = dataclasses.replace(components, unet=ema_unet.eval())
    pipe = TextToImagePipeline(sampler)
    pipe.set_progress_bar_config(disable=True)
    images = [
        np.asarray(pipe(p, generator=torch.Generator().manual_seed(seed + i)).images[0])
        for i, p in enumerate(prompts)
    ]
    text = {"Prompts": json.dumps(prompts), "Seed": str(seed), "Synthetic": "YES"}
    return write_png(path, image_grid(np.stack(images)), text)


def _read_loss_log(output_dir: Path, up_to: int) -> list[dict[str, float]]:
    """The loss rows of steps 1..`up_to`, one per step, as the run that reached them logged it.

    The log is appended to, so a step logged twice (by a run killed after its last checkpoint,
    then by the run resumed from that checkpoint) counts as its last row.
    """
    path = output_dir / LOSS_LOG
    if not path.is_file():
        return []
    by_step: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by_step[int(row["step"])] = row
    return [by_step[step] for step in sorted(by_step) if step <= up_to]


def _rewrite_loss_log(output_dir: Path, rows: list[dict[str, float]]) -> None:
    """Replace the log with `rows`, atomically (a kill mid-write leaves the old file)."""
    path = output_dir / LOSS_LOG
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tmp.replace(path)


def _progress(accelerator: Accelerator) -> Progress:
    return Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        disable=not accelerator.is_main_process,
    )


class _Run:
    """The state of one training run across steps."""

    def __init__(self, config: TrainConfig, accelerator: Accelerator) -> None:
        self.config = config
        self.accelerator = accelerator
        self.components = initial_components(config).to(accelerator.device)
        self.parent_steps = steps_before(self.components)
        self.dataset = ManifestImageDataset(
            config.data_dir,
            self.components.sample_size,
            cache=config.cache_images,
            # Empty unless --structure-loss-weight is on (TrainConfig pairs the two).
            structures=config.loss_structures,
        )
        if config.cache_images:
            started = time.monotonic()
            self.dataset.preload(os.cpu_count() or 1, config.finding_loss_weight != 1.0)
            accelerator.print(
                f"--cache-images: {len(self.dataset)} records read in "
                f"{time.monotonic() - started:.1f} s"
            )
        if self.dataset.free_text:
            # The model learns these captions as written, so its pipelines must accept them:
            # the sample grids below, and every later prompt to the saved model.
            self.components.defaults = {**self.components.defaults, "free_text_prompts": True}
            accelerator.print(
                f"note: {len(self.dataset.free_text)} of {len(self.dataset)} captions are not in "
                "radsynth's vocabulary and are trained as written (first: "
                f"{', '.join(map(str, self.dataset.free_text[:3]))})"
            )
        captions = [self.dataset.caption(i) for i in range(len(self.dataset))]
        self.captions_cut, longest = captions_cut(self.components.prompt_encoder, captions)
        if self.captions_cut:
            encoder = self.components.prompt_encoder
            # The flag only applies to radsynth's MiniLM encoder, up to its 512 positions.
            hint = (
                f"; --text-max-length {longest} keeps them whole"
                if isinstance(encoder, MiniLMPromptEncoder) and longest <= encoder.max_positions
                else ""
            )
            accelerator.print(
                f"note: {self.captions_cut} of {len(captions)} captions are longer than the "
                f"{encoder.kept_tokens} tokens the text encoder keeps, and are cut (the longest "
                f"has {longest}{hint})"
            )
        unet = self.components.unet.train().requires_grad_(True)
        self.ema_unet = copy.deepcopy(unet).requires_grad_(False).eval()
        optimizer = torch.optim.AdamW(
            unet.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        # accelerate steps a prepared scheduler once per process, hence the factor.
        lr_scheduler = get_scheduler(
            "constant_with_warmup",
            optimizer,
            num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
        )
        self.unet, self.optimizer, self.lr_scheduler = accelerator.prepare(
            unet, optimizer, lr_scheduler
        )
        self.noise_scheduler = DDPMScheduler.from_config(self.components.scheduler.config)
        self.losses: list[dict[str, float]] = []
        self.step = 0
        self.elapsed_before = 0.0
        self.started = time.monotonic()
        self.stopped_early = False  # by max_minutes, before max_steps
        self.sample_prompts = list(dict.fromkeys(captions))[: config.num_samples]

    def resume(self) -> None:
        folder = latest_checkpoint(self.config.output_dir)
        if folder is None:
            raise ValueError(
                f"--resume: no checkpoint in {self.config.output_dir / 'checkpoints'}; "
                "start without --resume"
            )
        self._check_same_model(folder)
        state = load_checkpoint(
            folder,
            self.accelerator.unwrap_model(self.unet),
            self.ema_unet,
            self.optimizer,
            self.lr_scheduler,
            self.accelerator.process_index,
        )
        self.step = int(state["step"])
        self.elapsed_before = float(state.get("wall_seconds", 0.0))
        self._apply_learning_rate()
        self.losses = _read_loss_log(self.config.output_dir, self.step)
        if self.accelerator.is_main_process:
            # Rows past the checkpoint came from a run killed before its next checkpoint; this
            # run trains those steps again and logs them anew.
            _rewrite_loss_log(self.config.output_dir, self.losses)
        self.accelerator.wait_for_everyone()

    def _check_same_model(self, folder: Path) -> None:
        """A resumed run must build the network the checkpoint holds: the same preset,
        --init-from and text length (it loaded the weights into another network, or silently
        lost the fine-tune's parent from its record)."""
        saved = json.loads((folder / "state.json").read_text()).get("config", {})
        now = self.config.to_json()
        keys = ("preset", "init_from", "text_max_length")
        differ = [
            key
            for key in keys
            if key in saved
            and saved[key] != now[key]
            and not (key == "init_from" and _same_model(saved[key], now[key]))
        ]
        if differ:
            said = ", ".join(f"--{k.replace('_', '-')} {saved[k]} (now {now[k]})" for k in differ)
            raise ValueError(
                f"--resume: the checkpoint in {folder} was trained with {said}; resume with "
                "the options the run started with"
            )

    def _apply_learning_rate(self) -> None:
        """A resumed run trains at the --learning-rate it is given (a lower rate for the last
        steps is a common recipe), not silently at the rate stored in the checkpoint."""
        scheduler = getattr(self.lr_scheduler, "scheduler", self.lr_scheduler)  # accelerate's wrap
        wanted = float(self.config.learning_rate)
        if all(math.isclose(base, wanted) for base in scheduler.base_lrs):
            return
        self.accelerator.print(
            f"--resume: learning rate {scheduler.base_lrs[0]:g} of the checkpoint changed to "
            f"{wanted:g} as asked"
        )
        scheduler.base_lrs = [wanted] * len(scheduler.base_lrs)
        for group, factor in zip(self.optimizer.param_groups, scheduler.lr_lambdas, strict=True):
            group["initial_lr"] = wanted
            group["lr"] = wanted * factor(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def wall_seconds(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def train_step(self) -> float:
        rank = self.accelerator.process_index
        generator = step_generator(self.config.seed, self.step, rank)
        indices = torch.randint(
            0, len(self.dataset), (self.config.batch_size,), generator=generator
        )
        images, captions = self.dataset.batch(indices.tolist())
        masks = structures = None
        with_finding = self.config.finding_loss_weight != 1.0
        if with_finding or self.dataset.structures:
            per_image = [self.dataset.loss_masks(i, with_finding) for i in indices.tolist()]
            stacked = [torch.stack(kind) for kind in zip(*per_image, strict=True)]
            masks = stacked.pop(0) if with_finding else None
            structures = stacked.pop(0) if self.dataset.structures else None
        loss = diffusion_loss(
            self.components,
            self.unet,
            self.noise_scheduler,
            images.to(self.accelerator.device),
            captions,
            generator,
            self.config,
            masks,
            structures,
        )
        self.accelerator.backward(loss)
        if self.accelerator.sync_gradients:
            self.accelerator.clip_grad_norm_(self.unet.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        update_ema(
            self.ema_unet,
            self.accelerator.unwrap_model(self.unet),
            self.step,
            self.config.ema_decay,
        )
        self.step += 1
        return float(self.accelerator.gather(loss.detach()[None]).mean())

    def log(self, loss: float) -> None:
        row = {"step": self.step, "loss": loss, "lr": float(self.lr_scheduler.get_last_lr()[0])}
        self.losses.append(row)
        if self.accelerator.is_main_process:
            with (self.config.output_dir / LOSS_LOG).open("a") as handle:
                handle.write(json.dumps(row) + "\n")

    def checkpoint(self) -> None:
        self.accelerator.wait_for_everyone()
        folder = None
        if self.accelerator.is_main_process:
            folder = save_checkpoint(
                self.config.output_dir,
                self.step,
                self.accelerator.unwrap_model(self.unet),
                self.ema_unet,
                self.optimizer,
                self.lr_scheduler,
                {"wall_seconds": self.wall_seconds(), "config": self.config.to_json()},
            )
            write_loss_curve(
                self.config.output_dir / "loss.png",
                [int(r["step"]) for r in self.losses],
                [r["loss"] for r in self.losses],
            )
        self.accelerator.wait_for_everyone()
        save_rng_state(
            folder or checkpoint_dir(self.config.output_dir, self.step),
            self.accelerator.process_index,
        )

    def samples(self) -> None:
        if self.accelerator.is_main_process and self.sample_prompts:
            folder = self.config.output_dir / "samples"
            folder.mkdir(exist_ok=True)
            path = folder / f"step-{self.step:07d}.png"
            write_samples(
                path, self.components, self.ema_unet, self.sample_prompts, self.config.seed
            )
            self.ema_unet.requires_grad_(False)

    def finish(self) -> Path:
        """Save the EMA weights as the model and record how it was trained."""
        self.accelerator.wait_for_everyone()
        model_dir = self.config.output_dir / "model"
        if self.accelerator.is_main_process:
            final = dataclasses.replace(self.components, unet=self.ema_unet)
            final.defaults = {**final.defaults, "trained_steps": self.parent_steps + self.step}
            final.save_pretrained(model_dir)
            write_training_record(self.config.output_dir / "training.json", self.record())
        self.accelerator.wait_for_everyone()
        return model_dir

    def record(self) -> dict[str, Any]:
        return {
            "command": self.config.command,
            "config": self.config.to_json(),
            "data": {
                "folder": str(self.config.data_dir),
                "images": len(self.dataset),
                "captions_as_written": len(self.dataset.free_text),
                "captions_cut": self.captions_cut,
                "text_tokens_kept": self.components.prompt_encoder.kept_tokens,
            },
            "steps": self.step,
            "stopped_by_max_minutes": self.stopped_early,
            "parent_steps": self.parent_steps,
            "images_seen": self.step * self.config.batch_size * self.accelerator.num_processes,
            "final_loss": self.losses[-1]["loss"] if self.losses else None,
            "wall_seconds": round(self.wall_seconds(), 2),
            "machine": machine_description(
                self.accelerator.num_processes, str(self.accelerator.device)
            ),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def _same_model(saved: str | None, now: str | None) -> bool:
    """Whether two --init-from paths name one model: the same folder however written, or
    folders holding the same weights (a copy, a run started from another directory)."""
    if saved is None or now is None:
        return saved == now
    if Path(saved).resolve() == Path(now).resolve():
        return True
    from radsynth.datasets.weights import weights_sha256

    try:
        return weights_sha256(Path(saved)) == weights_sha256(Path(now))
    except (OSError, ValueError):
        return False


def train(config: TrainConfig) -> Path:
    """Train (or fine-tune, or resume) a model; return the folder of the final EMA model.

    Writes under `config.output_dir`: `model/` (diffusers layout, EMA weights),
    `checkpoints/step-*/`, `loss.jsonl`, `loss.png`, `samples/step-*.png` and `training.json`.
    """
    if not config.resume:
        earlier = latest_checkpoint(config.output_dir)
        if earlier is not None or (config.output_dir / "model").exists():
            raise ValueError(
                f"{config.output_dir} holds an earlier run ("
                + (f"its checkpoint {earlier.name}" if earlier else "its model/")
                + "): pass --resume to continue it, or give another --out"
            )
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(config, accelerator)
    if config.resume:
        run.resume()
    elif accelerator.is_main_process:
        (config.output_dir / LOSS_LOG).unlink(missing_ok=True)
    if run.step >= config.max_steps:
        raise ValueError(
            f"the checkpoint is at step {run.step}, not below max_steps={config.max_steps}; "
            "raise --max-steps to train further"
        )
    deadline = None if config.max_minutes is None else time.monotonic() + 60 * config.max_minutes
    sampled_at = None
    with _progress(accelerator) as progress:
        task = progress.add_task("train", total=config.max_steps, completed=run.step, loss=0.0)
        while run.step < config.max_steps:
            loss = run.train_step()
            run.log(loss)
            progress.update(task, completed=run.step, loss=loss)
            if deadline is not None and run.step < config.max_steps:
                # Every process stops at the same step: the first one out of time decides.
                out_of_time = torch.tensor([float(time.monotonic() >= deadline)])
                out_of_time = accelerator.reduce(out_of_time.to(accelerator.device), "max")
                run.stopped_early = bool(out_of_time.item() > 0)
            if (
                run.step % config.checkpoint_every == 0
                or run.step == config.max_steps
                or run.stopped_early
            ):
                run.checkpoint()
            if run.stopped_early:
                accelerator.print(
                    f"--max-minutes {config.max_minutes:g} spent: stopping at step {run.step} "
                    f"of {config.max_steps}"
                )
                break
            if config.sample_every and run.step % config.sample_every == 0:
                run.samples()
                sampled_at = run.step
    if sampled_at != run.step:
        run.samples()  # the last step's grid, unless one was just written
    return run.finish()
