"""The reference study's figures, made by any radsynth model: prompts, images, labelled grids.

Figure 1 of the study asked DALL-E 2 for "An X-ray of the <region>" for eight regions and kept
all four images of each prompt. `figure1` does the same: every image is kept, each with its own
seed, so any single image can be made again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from radsynth.io.manifest import generated_record, write_manifest
from radsynth.io.png import write_png
from radsynth.vocabulary import STUDY_XRAY_REGIONS

FIGURE1_TEMPLATE = "An X-ray of the {region}"


@dataclass
class FigureRow:
    """One prompt's images (float32 in [0, 1]) and the seed of each."""

    title: str
    prompt: str
    images: list[np.ndarray]
    seeds: list[int]


def figure1_prompts(regions: Sequence[str] = STUDY_XRAY_REGIONS) -> list[tuple[str, str]]:
    """(region, prompt) pairs of the study's Figure 1, in the study's order."""
    return [(region, FIGURE1_TEMPLATE.format(region=region)) for region in regions]


def generate_rows(
    pipe: Callable[..., object],
    prompts: Sequence[tuple[str, str]],
    images_per_prompt: int = 4,
    seed: int = 0,
    on_row: Callable[[int, int], None] | None = None,
    **call: object,
) -> list[FigureRow]:
    """Generate `images_per_prompt` images per prompt in one batch; image j of prompt i has the
    seed seed + i * images_per_prompt + j (one generator per image)."""
    rows = []
    for i, (title, prompt) in enumerate(prompts):
        seeds = [seed + i * images_per_prompt + j for j in range(images_per_prompt)]
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        output = pipe(prompt, num_images_per_prompt=images_per_prompt, generator=generators, **call)
        images = [np.asarray(image, dtype=np.float32) for image in output.images]  # type: ignore[attr-defined]
        rows.append(FigureRow(title, prompt, images, seeds))
        if on_row is not None:
            on_row(i + 1, len(prompts))
    return rows


MIN_FONT_PX = 7  # labels shrink to fit a narrow figure down to this size, then are shortened


def _draw_fitting(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, room: float, size: float, fill: int
) -> None:
    """Draw `text` in the default font at `size`, or smaller down to MIN_FONT_PX, so that it
    fits in `room` pixels; a text still too long is cut and ends in an ellipsis."""
    font = ImageFont.load_default(size=size)
    while size > MIN_FONT_PX and draw.textlength(text, font=font) > room:
        size -= 1
        font = ImageFont.load_default(size=size)
    if draw.textlength(text, font=font) > room:
        while len(text) > 1 and draw.textlength(text + "…", font=font) > room:
            text = text[:-1]
        text += "…"
    draw.text(xy, text, fill=fill, font=font)


def labelled_grid(rows: Sequence[FigureRow], title: str = "", gap: int = 4) -> np.ndarray:
    """One uint8 image: a row per prompt with the prompt written above it."""
    if not rows or not rows[0].images:
        raise ValueError("a figure needs at least one row with one image")
    height, width = rows[0].images[0].shape
    columns = max(len(row.images) for row in rows)
    label_h = max(16, height // 12)
    title_h = label_h + 6 if title else 0
    # Three quarters of the label's height leaves room for descenders (g, p, y) at any size.
    font_px = max(10, label_h * 3 // 4)
    canvas = Image.new(
        "L",
        (columns * (width + gap) - gap, title_h + len(rows) * (label_h + height + gap)),
        16,
    )
    draw = ImageDraw.Draw(canvas)
    room = canvas.width - 8
    if title:
        _draw_fitting(draw, (4, 2), title, room, font_px, 255)
    for r, row in enumerate(rows):
        y = title_h + r * (label_h + height + gap)
        _draw_fitting(draw, (4, y + 1), f'"{row.prompt}"', room, font_px, 235)
        for c, image in enumerate(row.images):
            if image.shape != (height, width):
                raise ValueError(f"all images must be {height}x{width}, got {image.shape}")
            tile = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
            canvas.paste(tile, (c * (width + gap), y + label_h))
    return np.asarray(canvas)


def write_figure(
    out: Path, name: str, rows: Sequence[FigureRow], info: dict[str, str], title: str = ""
) -> Path:
    """Write every single image (with prompt, seed and model in PNG text, marked synthetic),
    their `out/<name>/manifest.jsonl` (so `radsynth evaluate` reads the folder grouped by
    prompt) and the labelled grid `out/<name>.png`; return the grid's path."""
    (out / name).mkdir(parents=True, exist_ok=True)
    records = []
    for row in rows:
        slug = row.title.replace(" ", "_")
        for image, seed in zip(row.images, row.seeds, strict=True):
            pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
            text = {**info, "Prompt": row.prompt, "Seed": str(seed), "Synthetic": "YES"}
            file = f"{slug}-seed{seed}.png"
            write_png(out / name / file, pixels, text)
            records.append(
                generated_record(file, row.prompt, seed, "generate", info.get("Model", ""))
            )
    write_manifest(out / name, records)
    return write_png(out / f"{name}.png", labelled_grid(rows, title), {**info, "Synthetic": "YES"})
