"""What a training run leaves behind for people: a loss curve, sample grids, a run record."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from radsynth.io.png import write_png


def image_grid(images: np.ndarray, columns: int = 4) -> np.ndarray:
    """Tile (N, H, W) images in [0, 1] into one uint8 grid, `columns` wide, 2 px gaps."""
    count, height, width = images.shape
    columns = min(columns, count)
    rows = -(-count // columns)
    gap = 2
    grid = np.zeros((rows * (height + gap) - gap, columns * (width + gap) - gap), dtype=np.uint8)
    for i, image in enumerate(images):
        y, x = (i // columns) * (height + gap), (i % columns) * (width + gap)
        grid[y : y + height, x : x + width] = np.round(np.clip(image, 0, 1) * 255)
    return grid


def write_loss_curve(path: Path, steps: Sequence[int], losses: Sequence[float]) -> Path:
    """Plot loss against step (with a running mean) as a 640 x 360 PNG."""
    width, height, margin = 640, 360, 40
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([margin, margin // 2, width - margin // 2, height - margin], outline=0)
    if steps:
        values = np.asarray(losses, dtype=np.float64)
        window = max(1, len(values) // 20)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        low, high = float(values.min()), float(values.max())
        span = high - low or 1.0
        first, last = steps[0], max(steps[-1], steps[0] + 1)

        def point(step: float, value: float) -> tuple[float, float]:
            x = margin + (step - first) / (last - first) * (width - 1.5 * margin)
            y = height - margin - (value - low) / span * (height - 1.5 * margin)
            return x, y

        draw.line([point(s, v) for s, v in zip(steps, values, strict=True)], fill=170)
        smooth_steps = steps[window - 1 :]
        draw.line([point(s, v) for s, v in zip(smooth_steps, smooth, strict=True)], fill=0, width=2)
        draw.text((margin + 4, margin // 2 + 4), f"loss {high:.4g} .. {low:.4g}", fill=0)
        draw.text((margin, height - margin + 6), f"step {first}", fill=0)
        draw.text((width - 3 * margin, height - margin + 6), f"step {steps[-1]}", fill=0)
    return write_png(path, np.asarray(canvas), {"Title": "training loss", "Software": "radsynth"})


def machine_description(num_processes: int, device: str) -> dict[str, Any]:
    """Where the run happened, for the run record."""
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "device": device,
        "num_processes": num_processes,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_training_record(path: Path, record: dict[str, Any]) -> Path:
    """Write `training.json` (how the model was trained), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


def trained_steps(record: dict[str, Any]) -> int:
    """Steps of the model a run wrote: its parent's and its own."""
    return int(record.get("parent_steps") or 0) + int(record["steps"])


def parent_record(record: dict[str, Any]) -> dict[str, Any] | None:
    """The training record of the model a fine-tune started from: the model folder's own
    (a shipped model) or its run folder's (`radsynth train --out RUN` writes RUN/model and
    RUN/training.json); None when it was not kept.

    A path can hold another model by now (the built-in folder is replaced at every ship), so
    the record must account for the run's `parent_steps`: where the folder's record does not,
    the one in its own chain of parents that does is taken (the built-in folder of a later
    ship still carries the earlier model's record), and None where none does."""
    init_from = record.get("config", {}).get("init_from")
    if not init_from:
        return None
    found = folder_record(Path(init_from))
    if found is None or record.get("parent_steps") is None:
        return found
    while found is not None and trained_steps(found) != record["parent_steps"]:
        found = found.get("parent")
    return found


def with_parents(record: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """`record` with its chain of parent records attached, as far as they can be found."""
    if "parent" not in record and depth < 32:
        parent = parent_record(record)
        if parent is not None:
            record["parent"] = with_parents(parent, depth + 1)
    return record


def folder_record(folder: Path) -> dict[str, Any] | None:
    """The training record kept with a model folder: FOLDER/training.json (a shipped model) or
    the run's, beside it (RUN/model and RUN/training.json); None when there is none."""
    for candidate in (folder / "training.json", folder.parent / "training.json"):
        if candidate.is_file():
            found: dict[str, Any] = json.loads(candidate.read_text())
            return found
    return None


def record_chains(record: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Every chain of training records behind a model, from its own record to a run that
    started from a preset: one for a trained model, and for a weight average one per chain of
    each averaged model (a fine-tune of an average continues through all of them)."""
    if record.get("kind") == "weight average":
        return [
            [record, *chain]
            for entry in record["averaged"]
            if entry.get("record") is not None
            for chain in record_chains(entry["record"])
        ]
    parent = record.get("parent")
    if parent is None:
        return [[record]]
    return [[record, *chain] for chain in record_chains(parent)]
