"""The summary page of a built data set: counts per split, prompt and label, a grid per prompt."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from radsynth.io.png import write_png

SUMMARY_NAME = "summary.html"
GRID_DIR = "grids"
GRID_IMAGES = 8  # images shown per prompt: the first ones by index
THUMBNAIL = 128  # pixels per grid cell
LABEL_FIELDS = ("modality", "region", "view", "laterality", "sex", "sequence", "window")


class SummaryCollector:
    """Takes records one at a time (memory: counters and a few file names per prompt)."""

    def __init__(self, prompts: list[str]) -> None:
        self.prompts = prompts
        self.total = 0
        self.splits: Counter[str] = Counter()
        self.per_prompt: Counter[int] = Counter()
        self.labels: dict[str, Counter[str]] = {name: Counter() for name in LABEL_FIELDS}
        self.findings: Counter[str] = Counter()
        self.ages: Counter[str] = Counter()
        self.examples: dict[int, list[str]] = {}

    def add(self, record: dict[str, Any]) -> None:
        self.total += 1
        self.splits[record["split"]] += 1
        self.per_prompt[record["prompt_index"]] += 1
        labels = record["labels"]
        for name in LABEL_FIELDS:
            self.labels[name][str(labels.get(name) or "(not given)")] += 1
        if labels.get("age") is not None:
            decade = int(labels["age"]) // 10 * 10
            self.ages[f"{decade}-{decade + 9}"] += 1
        kinds = [finding["kind"] for finding in labels.get("findings", [])]
        self.findings.update(kinds or ["(none)"])
        shown = self.examples.setdefault(record["prompt_index"], [])
        if len(shown) < GRID_IMAGES:
            shown.append(record.get("image_8bit") or record["image"])


def write_summary(out: Path, records: Iterable[dict[str, Any]], prompts: list[str]) -> Path:
    """Write `summary.html` and one grid PNG per prompt under `out/grids`; return the page."""
    collector = SummaryCollector(prompts)
    for record in records:
        collector.add(record)
    (out / GRID_DIR).mkdir(exist_ok=True)
    sections = []
    for number, prompt in enumerate(prompts):
        grid = f"{GRID_DIR}/prompt-{number:03d}.png"
        write_png(out / grid, _grid([out / name for name in collector.examples.get(number, [])]))
        sections.append(
            f"<h3>{html.escape(prompt)} ({collector.per_prompt[number]} images)</h3>"
            f'<img src="{grid}" alt="first images of prompt {number}">'
        )
    tables = [_table("split", collector.splits)]
    tables += [_table(name, counts) for name, counts in collector.labels.items()]
    tables += [_table("age (years)", collector.ages), _table("finding", collector.findings)]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>radsynth data set</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "display:inline-table;margin:0 2em 1em 0;vertical-align:top}td,th{border:1px solid #ccc;"
        "padding:2px 8px}td.n{text-align:right}img{image-rendering:pixelated}</style></head><body>"
        f"<h1>radsynth data set: {collector.total} synthetic images</h1>"
        "<p>Every image is synthetic (PNG text Synthetic=YES, DICOM SyntheticData=YES).</p>"
        f"<h2>Counts per label</h2>{''.join(tables)}<h2>Images per prompt</h2>"
        f"{''.join(sections)}</body></html>\n"
    )
    path = out / SUMMARY_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def _table(title: str, counts: Counter[str]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(value))}</td><td class='n'>{count}</td></tr>"
        for value, count in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    )
    return f"<table><tr><th>{html.escape(title)}</th><th>images</th></tr>{rows}</table>"


def _thumbnail(path: Path) -> np.ndarray:
    """An image file as a THUMBNAIL x THUMBNAIL uint8 array (DICOM through radsynth.io)."""
    if path.suffix == ".png":
        with Image.open(path) as image:
            pixels = np.asarray(image, dtype=np.float32)
            scale = 65535.0 if image.mode.startswith("I") else 255.0
        unit = pixels / scale
    else:
        from radsynth.io.reader import read_image

        unit = read_image(path).windowed()
    small = Image.fromarray(np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8))
    return np.asarray(small.resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR))


def _grid(paths: list[Path], columns: int = 4, gap: int = 2) -> np.ndarray:
    """Thumbnails of `paths` in rows of `columns`, on black, as one uint8 image."""
    if not paths:
        return np.zeros((THUMBNAIL, THUMBNAIL), dtype=np.uint8)
    columns = min(columns, len(paths))
    rows = -(-len(paths) // columns)
    cell = THUMBNAIL + gap
    grid = np.zeros((rows * cell - gap, columns * cell - gap), dtype=np.uint8)
    for i, path in enumerate(paths):
        y, x = (i // columns) * cell, (i % columns) * cell
        grid[y : y + THUMBNAIL, x : x + THUMBNAIL] = _thumbnail(path)
    return grid
