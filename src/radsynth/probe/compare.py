"""Probe runs side by side: the targets of several `scores.json` (models, seeds, checkpoints),
which are met in each, and what changed; and the finding effect of each run.

`load_run` reads one run's folder (or its `scores.json`), `compare_runs` lines the targets up
by key, `markdown_table` writes them as a Markdown table (what the docs' tables are made from).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Comparison",
    "ProbeRun",
    "compare_runs",
    "finding_effect_table",
    "load_run",
    "markdown_table",
]


@dataclass(frozen=True)
class ProbeRun:
    """One probe run: its label, its folder and its parsed `scores.json`."""

    label: str
    path: Path
    scores: dict[str, Any]

    @property
    def targets(self) -> dict[str, dict[str, Any]]:
        return dict(self.scores.get("targets", {}))

    @property
    def met(self) -> int:
        return sum(bool(t.get("met")) for t in self.targets.values())


@dataclass(frozen=True)
class Comparison:
    """Targets lined up over runs: `rows` holds per target key its name, threshold, comparison
    and per run (value, met); `differs` the keys whose met state is not the same in every run."""

    runs: tuple[ProbeRun, ...]
    rows: dict[str, dict[str, Any]]
    differs: tuple[str, ...]

    def met_counts(self) -> list[int]:
        return [run.met for run in self.runs]


def load_run(path: Path | str, label: str | None = None) -> ProbeRun:
    """A probe run from its output folder or its `scores.json`; clear errors otherwise."""
    path = Path(path)
    file = path / "scores.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"no probe scores at {file}: pass a folder written by `radsynth probe` "
            "or its scores.json"
        )
    try:
        scores = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not JSON: {error}") from None
    if not isinstance(scores, dict) or not isinstance(scores.get("targets"), dict):
        raise ValueError(f"{file} has no 'targets': not a `radsynth probe` scores.json")
    folder = file.parent
    return ProbeRun(label or folder.name, folder, scores)


def compare_runs(runs: list[ProbeRun]) -> Comparison:
    """Line up the targets of `runs` (at least one) by key, in the first run's order, then any
    key only later runs have."""
    if not runs:
        raise ValueError("nothing to compare: give at least one probe run")
    keys: list[str] = []
    for run in runs:
        keys.extend(k for k in run.targets if k not in keys)
    rows: dict[str, dict[str, Any]] = {}
    differs = []
    for key in keys:
        spec = next(run.targets[key] for run in runs if key in run.targets)
        cells = []
        for run in runs:
            entry = run.targets.get(key)
            cells.append(None if entry is None else (entry.get("value"), bool(entry.get("met"))))
        rows[key] = {
            "name": spec.get("name", key),
            "threshold": spec.get("threshold"),
            "comparison": spec.get("comparison", ""),
            "cells": cells,
        }
        if len({None if c is None else c[1] for c in cells}) > 1:
            differs.append(key)
    return Comparison(tuple(runs), rows, tuple(differs))


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def markdown_table(comparison: Comparison) -> str:
    """The comparison as a Markdown table: a row per target (value, bold where met), a row of
    targets met, and a row of the pooled finding effect (inside/outside ratio) where measured."""
    labels = [run.label for run in comparison.runs]
    lines = [
        "| target | threshold | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    for key, row in comparison.rows.items():
        cells = []
        for cell in row["cells"]:
            if cell is None:
                cells.append("not measured")
            else:
                value, met = cell
                cells.append(f"**{_value(value)}**" if met else _value(value))
        mark = " (differs)" if key in comparison.differs else ""
        lines.append(
            f"| {row['name']}{mark} | {row['comparison']} {_value(row['threshold'])} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append(
        "| **targets met** | | "
        + " | ".join(f"**{run.met} of {len(run.targets)}**" for run in comparison.runs)
        + " |"
    )
    effects = [run.scores.get("finding_effect", {}) for run in comparison.runs]
    if any("inside_to_outside" in e for e in effects):
        cells = []
        for e in effects:
            if "inside_to_outside" not in e:
                cells.append("not measured")
            else:
                inside, outside = e.get("mean_change_inside"), e.get("mean_change_outside")
                cells.append(
                    f"{_value(e.get('inside_to_outside'))} ({_fmt4(inside)} / {_fmt4(outside)})"
                )
        lines.append(
            "| finding effect, inside / outside (not a target) | | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def _fmt4(value: Any) -> str:
    return "—" if value is None else f"{float(value):.4f}"


def finding_effect_table(comparison: Comparison) -> str:
    """Per pathology prompt and run: mean |change| inside the finding's place, outside it, and
    their ratio (`radsynth.probe.scorecard.finding_effect_row`), as a Markdown table; empty
    when no run measured the finding effect."""
    per_run = [
        {r["title"]: r for r in run.scores.get("finding_effect", {}).get("per_prompt", [])}
        for run in comparison.runs
    ]
    titles: list[str] = []
    for rows in per_run:
        titles.extend(t for t in rows if t not in titles)
    if not titles:
        return ""
    labels = [run.label for run in comparison.runs]
    lines = [
        "| finding (inside / outside = ratio) | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for title in titles:
        cells = []
        for rows in per_run:
            r = rows.get(title)
            cells.append(
                "not measured"
                if r is None
                else f"{_fmt4(r.get('mean_change_inside'))} / "
                f"{_fmt4(r.get('mean_change_outside'))} = {_value(r.get('inside_to_outside'))}"
            )
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
