"""`python -m radsynth.train` / `accelerate launch -m radsynth.train`: the training script."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from radsynth.train.config import TrainConfig


def structure_patterns(text: str) -> tuple[str, ...]:
    """The comma-separated mask-name patterns of --loss-structures."""
    patterns = tuple(p.strip() for p in text.split(",") if p.strip())
    if not patterns:
        raise argparse.ArgumentTypeError("no mask-name pattern given")
    return patterns


# TrainConfig fields whose flag is not the field's name with dashes.
RENAMED_FLAGS = {"data_dir": "--data", "output_dir": "--out"}


def as_flags(message: str) -> str:
    """A TrainConfig error with its field names written as the command's flags
    (max_minutes -> --max-minutes, output_dir -> --out)."""
    names = "|".join(f.name for f in fields(TrainConfig) if "_" in f.name)  # whole words only
    return re.sub(
        rf"\b({names})\b",
        lambda m: RENAMED_FLAGS.get(m.group(1), "--" + m.group(1).replace("_", "-")),
        message,
    )


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Command-line arguments to a TrainConfig (defaults from TrainConfig)."""
    from radsynth.models.presets import list_presets

    defaults = TrainConfig(data_dir=Path("."), output_dir=Path("."))
    parser = argparse.ArgumentParser(
        prog="radsynth-train", description="Train a radsynth diffusion model on a manifest folder."
    )
    parser.add_argument("--data", type=Path, required=True, help="folder with manifest.jsonl")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--preset",
        help="architecture of a model trained from scratch (default: tiny; one of "
        f"{', '.join(list_presets())})",
    )
    parser.add_argument("--init-from", type=Path, help="model folder to fine-tune")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps)
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this many minutes of this run, as at --max-steps (model written)",
    )
    parser.add_argument(
        "--text-max-length",
        type=int,
        help="caption tokens the MiniLM text encoder keeps (default: the starting model's)",
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--lr-warmup-steps", type=int, default=defaults.lr_warmup_steps)
    parser.add_argument("--prompt-dropout", type=float, default=defaults.prompt_dropout)
    parser.add_argument("--snr-gamma", type=float, default=defaults.snr_gamma)
    parser.add_argument(
        "--finding-loss-weight",
        type=float,
        default=defaults.finding_loss_weight,
        help="loss weight inside the records' finding masks (masks named finding_*), 1 elsewhere",
    )
    parser.add_argument(
        "--structure-loss-weight",
        type=float,
        default=defaults.structure_loss_weight,
        help="loss weight inside the masks named by --loss-structures, 1 elsewhere",
    )
    parser.add_argument(
        "--loss-structures",
        type=structure_patterns,
        default=(),
        help="comma-separated shell patterns over mask names for --structure-loss-weight, "
        "e.g. 'l[1-5],disc_l*,*_fibula'",
    )
    parser.add_argument("--ema-decay", type=float, default=defaults.ema_decay)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--sample-every", type=int, default=defaults.sample_every)
    parser.add_argument("--num-samples", type=int, default=defaults.num_samples)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--resume", action="store_true", help="continue the latest checkpoint")
    parser.add_argument(
        "--cache-images",
        action="store_true",
        help="keep decoded images in memory (4 bytes per pixel per record); for a fast GPU",
    )
    args = parser.parse_args(argv)
    if args.preset is not None and args.init_from is not None:
        parser.error(
            "--preset and --init-from both given: a fine-tune keeps the architecture of its "
            "--init-from folder; drop --preset"
        )
    command = shlex.join(["radsynth-train", *(sys.argv[1:] if argv is None else argv)])
    try:
        return TrainConfig(
            data_dir=args.data,
            output_dir=args.out,
            preset=args.preset,
            init_from=args.init_from,
            max_steps=args.max_steps,
            max_minutes=args.max_minutes,
            cache_images=args.cache_images,
            text_max_length=args.text_max_length,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            lr_warmup_steps=args.lr_warmup_steps,
            prompt_dropout=args.prompt_dropout,
            snr_gamma=args.snr_gamma if args.snr_gamma and args.snr_gamma > 0 else None,
            finding_loss_weight=args.finding_loss_weight,
            structure_loss_weight=args.structure_loss_weight,
            loss_structures=args.loss_structures,
            ema_decay=args.ema_decay,
            checkpoint_every=args.checkpoint_every,
            sample_every=args.sample_every,
            num_samples=args.num_samples,
            seed=args.seed,
            resume=args.resume,
            mixed_precision=args.mixed_precision,
            command=command,
        )
    except ValueError as error:  # TrainConfig checks the values; the message names the flags
        parser.error(as_flags(str(error)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run training; return the process exit status."""
    from radsynth.train.loop import train

    config = parse_args(argv)
    try:
        model_dir = train(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: the steps after the last checkpoint are not kept; continue with the "
            "same command and --resume",
            file=sys.stderr,
        )
        return 130
    if int(os.environ.get("RANK", "0")) == 0:  # once under `accelerate launch`
        print(f"model written to {model_dir}")
    return 0
