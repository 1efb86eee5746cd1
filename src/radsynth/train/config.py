"""The training configuration: one dataclass, every field explained."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass
class TrainConfig:
    """What to train, on what, for how long, and where to write it."""

    data_dir: Path  # a folder with manifest.jsonl (keys id, image, caption)
    output_dir: Path  # model/, checkpoints/, samples/, loss.png, training.json go here
    # Architecture for training from scratch (see list_presets()); None with `init_from`, whose
    # folder decides the architecture ("tiny" when neither is given).
    preset: str | None = None
    init_from: Path | None = None  # fine-tune this model folder (radsynth or Stable Diffusion)
    max_steps: int = 1000  # optimizer steps (each sees batch_size images per process)
    # Wall-clock budget of this run in minutes (None = none): once spent, the run stops after
    # the step in flight and ends as at max_steps (checkpoint, samples, model), for a lease on a
    # borrowed machine. The steps done are recorded in training.json.
    max_minutes: float | None = None
    # Keep each decoded image (and finding mask) in memory after its first read: a fast
    # accelerator otherwise waits on PNG decoding. Costs 4 bytes per pixel per record.
    cache_images: bool = False
    # Tokens of each caption the text encoder keeps (special tokens included), for radsynth's
    # MiniLM encoder; None keeps the starting model's. Tokens past it are cut, so a finding
    # named at the end of a long caption is never seen; the run counts the captions cut.
    text_max_length: int | None = None
    batch_size: int = 8  # images per process and step
    learning_rate: float = 1e-4  # AdamW; 1e-4 is the usual rate for UNets of this size
    lr_warmup_steps: int = 100  # linear warm-up avoids early divergence of attention layers
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    # Captions replaced by "" this often, so the model also learns the unconditional
    # distribution that classifier-free guidance needs.
    prompt_dropout: float = 0.1
    # Min-SNR-gamma weighting (Hang et al. 2023): caps the weight of low-noise timesteps, which
    # otherwise dominate and slow convergence about threefold; 5 is the paper's value.
    snr_gamma: float | None = 5.0
    # Loss weight of the pixels inside a record's finding masks (mask names starting with
    # "finding_" in its `masks` file, as radsynth phantoms write them), against 1 elsewhere. A
    # finding covers a few per cent of its image, so under a uniform loss a model can learn the
    # anatomy and ignore the finding words; > 1 makes the finding count. 1 = off.
    finding_loss_weight: float = 1.0
    # Loss weight of the pixels inside the masks named by `loss_structures` (shell patterns over
    # mask names, e.g. "l[1-5]", "disc_l*", "*_fibula"), added to the finding weight. A fine
    # structure with little contrast (a vertebra on a lateral lumbar film, the fibula) costs a
    # uniform loss little when smoothed away; > 1 makes it count. 1 = off.
    structure_loss_weight: float = 1.0
    loss_structures: tuple[str, ...] = ()
    ema_decay: float = 0.999  # EMA of the weights, warmed up as min(decay, (1+s)/(10+s))
    checkpoint_every: int = 500  # steps between checkpoints (and always at the last step)
    sample_every: int = 500  # steps between sample grids (0 = only at the end)
    num_samples: int = 4  # images in a sample grid, one per caption taken from the data
    seed: int = 0  # weights, batch order, noise and dropout all derive from it
    resume: bool = False  # continue from the latest checkpoint in output_dir/checkpoints
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    command: str = ""  # the command line, recorded in training.json
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes for training.json

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.output_dir = Path(self.output_dir)
        if self.init_from is not None:
            self.init_from = Path(self.init_from)
            # Records written before 2026-12-03 hold the CLI's default preset beside init_from;
            # it was never used, so it is dropped rather than recorded as the architecture.
            self.preset = None
        elif self.preset is None:
            self.preset = "tiny"
        if self.max_steps < 1 or self.batch_size < 1:
            raise ValueError("max_steps and batch_size must be at least 1")
        if not 0.0 <= self.prompt_dropout < 1.0:
            raise ValueError(f"prompt_dropout must be in [0, 1), got {self.prompt_dropout}")
        if not (math.isfinite(self.finding_loss_weight) and self.finding_loss_weight > 0):
            raise ValueError(
                f"finding_loss_weight must be a positive number, got {self.finding_loss_weight}"
            )
        self.loss_structures = tuple(self.loss_structures)
        if not (math.isfinite(self.structure_loss_weight) and self.structure_loss_weight > 0):
            raise ValueError(
                f"structure_loss_weight must be a positive number, got {self.structure_loss_weight}"
            )
        if (self.structure_loss_weight != 1.0) != bool(self.loss_structures):
            raise ValueError(
                "structure_loss_weight and loss_structures go together: name the structures "
                "(mask-name patterns) and a weight other than 1, or neither"
            )
        if self.max_minutes is not None and not (
            math.isfinite(self.max_minutes) and self.max_minutes > 0
        ):
            raise ValueError(f"max_minutes must be a positive number, got {self.max_minutes}")
        if self.text_max_length is not None and self.text_max_length < 2:
            raise ValueError(f"text_max_length must be at least 2, got {self.text_max_length}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready copy (paths as strings)."""
        return {
            k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
            for k, v in asdict(self).items()
        }
