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
