"""Checkpoints that a run can resume from exactly.

`checkpoints/step-0000500/` holds `unet/` and `ema_unet/` (diffusers layout, safetensors), the
optimizer and learning-rate scheduler states (`*.pt`, plain tensors and numbers, read back with
`torch.load(weights_only=True)`, so no pickled code is ever executed), each process's torch RNG
state and `state.json` with the step. Batches, noise and caption dropout are drawn from
generators seeded by (seed, step, process), so a resumed run sees what an uninterrupted one would.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

CHECKPOINTS = "checkpoints"


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / CHECKPOINTS / f"step-{step:07d}"


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    folder = output_dir / CHECKPOINTS
    done = (
        [p for p in folder.glob("step-*") if (p / "state.json").is_file()]
        if folder.is_dir()
        else []
    )
    return max(done, key=lambda p: p.name) if done else None


def save_checkpoint(
    output_dir: Path,
    step: int,
    unet: Any,
    ema_unet: Any,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    state: dict[str, Any],
    keep: int = 3,
) -> Path:
    """Write a checkpoint atomically (temporary folder, then rename); keep the last `keep`."""
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    unet.save_pretrained(tmp / "unet", safe_serialization=True)
    ema_unet.save_pretrained(tmp / "ema_unet", safe_serialization=True)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(lr_scheduler.state_dict(), tmp / "lr_scheduler.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted((output_dir / CHECKPOINTS).glob("step-???????"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_rng_state(folder: Path, rank: int) -> None:
    """Each process's global torch RNG state (used by dropout layers, if any)."""
    torch.save({"torch": torch.get_rng_state()}, folder / f"rng-{rank}.pt")


def load_checkpoint(
    folder: Path,
    unet: Any,
    ema_unet: Any,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    rank: int,
) -> dict[str, Any]:
    """Restore everything `save_checkpoint` wrote into the given objects; return state.json."""
    unet.load_state_dict(load_unet_weights(folder / "unet"))
    ema_unet.load_state_dict(load_unet_weights(folder / "ema_unet"))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    lr_scheduler.load_state_dict(torch.load(folder / "lr_scheduler.pt", weights_only=True))
    rng = folder / f"rng-{rank}.pt"
    if rng.is_file():
        torch.set_rng_state(torch.load(rng, weights_only=True)["torch"])
    return dict(json.loads((folder / "state.json").read_text()))


def load_unet_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All safetensors weights in a checkpoint's `unet/` or `ema_unet/` folder, as one dict."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"checkpoint {folder} has no safetensors weights; it is incomplete")
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(file))
    return weights
