"""Probe runs side by side: the targets of several `scores.json` (models, seeds, checkpoints),
which are met in each, and what changed; and the finding effect of each run.

`load_run` reads one run's folder (or its `scores.json`), `compare_runs` lines the targets up
by key, `markdown_table` writes them as a Markdown table (what the docs' tables are made from).
`pool_runs` makes one column of several runs of the same model and settings on independent
seeds: proportions pooled over all their images, the rest at its worst run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radsynth.probe.targets import TARGET_SPECS, lateral_within_ap, rate_target, target

__all__ = [
    "Comparison",
    "ProbeRun",
    "compare_runs",
    "finding_effect_table",
    "load_run",
    "markdown_table",
    "pool_runs",
    "sampler_text",
]


@dataclass(frozen=True)
class ProbeRun:
    """One probe run: its label, its folder and its parsed `scores.json`."""

    label: str
    path: Path
    scores: dict[str, Any]

    @property
    def targets(self) -> Mapping[str, dict[str, Any]]:
        return self.scores.get("targets", {})

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


def sampler_text(sampler: Mapping[str, Any] | None) -> str | None:
    """A run's sampler (`scores.json`'s "sampler"), e.g. "6 steps, guidance 3 at t >= 0.5 T";
    None for a run probed before `scores.json` recorded it."""
    if not sampler:
        return None
    steps = int(sampler["num_inference_steps"])
    text = f"{steps} step{'' if steps == 1 else 's'}, "
    text += f"guidance {float(sampler['guidance_scale']):g}"
    if sampler.get("guidance_cutoff"):
        text += f" at t >= {float(sampler['guidance_cutoff']):g} T"
    return text


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


# Targets measured on cases with fixed seeds of their own (Figure 3's erased joints, the knee
# grown to a body): every run repeats the same cases, so pooling them would count each twice.
FIXED_CASE_TARGETS = frozenset(
    {
        "inpaint_structure_count",
        "inpaint_beats_biharmonic",
        "knee_full_body_ratio",
        "knee_full_body_lumbar",
    }
)


def _pooled_target(key: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One target over several runs: a proportion (successes of n in every run) pooled over
    all samples, with its Wilson interval; the lateral-vs-AP difference from the pooled pass
    rates; any other target (a largest error, a fixed-seed case) at its worst run's value and
    n, so it is met only where every run meets it."""
    per_run = [entry.get("value") for entry in entries]
    details = [entry.get("details") or {} for entry in entries]
    if any(value is None for value in per_run):
        missing = sum(value is None for value in per_run)
        pooled = target(key, None, 0, f"not measured in {missing} of {len(entries)} runs")
    elif key not in FIXED_CASE_TARGETS and all(
        isinstance(d.get("successes"), int) and e.get("n")
        for d, e in zip(details, entries, strict=True)
    ):
        pooled = rate_target(
            key, sum(d["successes"] for d in details), sum(int(e["n"]) for e in entries)
        )
    elif all("ap_passed" in d for d in details):
        ap_passed, ap_n, lateral_passed, lateral_n = (
            sum(int(d[k]) for d in details)
            for k in ("ap_passed", "ap_n", "lateral_passed", "lateral_n")
        )
        pooled = lateral_within_ap(ap_passed, ap_n, lateral_passed, lateral_n)
    else:
        pick = min if TARGET_SPECS[key].comparison in (">=", ">") else max
        worst = pick(entries, key=lambda entry: float(entry["value"]))
        note = f"worst of {len(entries)} runs"
        pooled = target(key, float(worst["value"]), int(worst.get("n", 0)), note)
    out = pooled.to_dict()
    out.setdefault("details", {})["per_run"] = per_run
    return out


def _pooled_effect(runs: list[ProbeRun]) -> dict[str, Any]:
    """The finding effect over runs: mean change inside and outside averaged over the runs
    (each run has the same prompts and places), per prompt likewise, and their ratios."""
    effects = [run.scores.get("finding_effect", {}) for run in runs]
    if not all("inside_to_outside" in e for e in effects):
        return {}

    def averaged(rows: list[dict[str, Any]], against: str = "outside") -> dict[str, Any]:
        inside = sum(float(r["mean_change_inside"]) for r in rows) / len(rows)
        there = sum(float(r[f"mean_change_{against}"]) for r in rows) / len(rows)
        ratio = inside / there if there > 0 else math.nan
        name = "inside_to_outside" if against == "outside" else "asked_to_other_side"
        return {"mean_change_inside": inside, f"mean_change_{against}": there, name: ratio}

    def side(rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The side check averaged where every row measured it (runs before it: nothing)."""
        keys = ("mean_change_inside", "mean_change_other_side")
        if not rows or any(r.get(key) is None for r in rows for key in keys):
            return {}
        return averaged(rows, "other_side")

    per_title: dict[str, list[dict[str, Any]]] = {}
    for effect in effects:
        for row in effect.get("per_prompt", []):
            per_title.setdefault(row["title"], []).append(row)
    per_prompt = [
        {"title": title, **averaged(rows), **side(rows)}
        for title, rows in per_title.items()
        if len(rows) == len(effects)
    ]
    pooled = {**averaged(effects), "per_prompt": per_prompt}
    sided = side([e.get("sided", {}) for e in effects])
    if sided:
        pooled["sided"] = {"prompts": effects[0]["sided"].get("prompts"), **sided}
    return pooled


def pool_runs(runs: list[ProbeRun], label: str | None = None) -> ProbeRun:
    """Several runs of one model and sampler on independent seeds as one run: each target all
    of them measured pooled (`_pooled_target`), the finding effect averaged, and in
    `scores["pooled"]` the runs' folders and the targets each met. The label says how many
    runs and what each met, e.g. "v10 (3 runs: 11/10/9)"."""
    if not runs:
        raise ValueError("nothing to pool: give at least one probe run")
    # Targets every run measured and this radsynth knows (its thresholds judge the pool).
    targets = {
        key: _pooled_target(key, [run.targets[key] for run in runs])
        for key in runs[0].targets
        if key in TARGET_SPECS and all(key in run.targets for run in runs[1:])
    }
    met_per_run = [run.met for run in runs]
    name = label or runs[0].label
    # One column is one sampler: runs that recorded different ones are not pooled.
    samplers = [run.scores.get("sampler") or None for run in runs]
    known = {json.dumps(sampler, sort_keys=True) for sampler in samplers if sampler}
    if len(known) > 1:
        used = "; ".join(
            f"{run.path}: {sampler_text(sampler)}"
            for run, sampler in zip(runs, samplers, strict=True)
        )
        raise ValueError(
            f"the runs pooled as {name!r} used different samplers ({used}): pool runs of one "
            "model and sampler, and give the others another --label"
        )
    # Nor are runs scored by different readers (a reader's weights change what it counts).
    readers = [run.scores.get("reader") for run in runs]
    if len({reader for reader in readers if reader}) > 1:
        used = "; ".join(f"{run.path}: {reader}" for run, reader in zip(runs, readers, strict=True))
        raise ValueError(
            f"the runs pooled as {name!r} were read by different readers ({used}): pool runs "
            "scored by one reader, and give the others another --label"
        )
    scores = {
        "targets": targets,
        "targets_met": sum(bool(t["met"]) for t in targets.values()),
        "targets_total": len(targets),
        "finding_effect": _pooled_effect(runs),
        "pooled": {"runs": [str(run.path) for run in runs], "targets_met": met_per_run},
        "sampler": samplers[0] if known and all(samplers) else {},
        "reader": readers[0] if len(set(readers)) == 1 else None,
    }
    count = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    title = f"{name} ({count}: {'/'.join(map(str, met_per_run))})"
    return ProbeRun(title, runs[0].path, scores)


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if value and abs(value) < 0.01:
            return f"{value:.2g}"  # a threshold of 0.005 is not "0.01"
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def markdown_table(comparison: Comparison) -> str:
    """The comparison as a Markdown table: the sampler of each run where recorded, the reader
    of each where the runs were read by different ones, a row per
    target (value, bold where met), a row of targets met, and rows of the pooled finding
    effect (inside/outside ratio) and of its side check (asked side / other side) where
    measured."""
    labels = [run.label for run in comparison.runs]
    lines = [
        "| target | threshold | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    samplers = [sampler_text(run.scores.get("sampler")) for run in comparison.runs]
    if any(samplers):
        lines.append("| sampler | | " + " | ".join(s or "not recorded" for s in samplers) + " |")
    readers = [run.scores.get("reader") for run in comparison.runs]
    if len(set(readers)) > 1:  # named only where the columns were read by different readers
        lines.append("| reader | | " + " | ".join(r or "not recorded" for r in readers) + " |")
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
    sides = [e.get("sided") or {} for e in effects]
    if any(s.get("asked_to_other_side") is not None for s in sides):
        cells = [
            "not measured"
            if s.get("asked_to_other_side") is None
            else f"{_value(s['asked_to_other_side'])} ({_fmt4(s.get('mean_change_inside'))} / "
            f"{_fmt4(s.get('mean_change_other_side'))})"
            for s in sides
        ]
        lines.append(
            "| finding on the side asked, asked / other side (not a target) | | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def _fmt4(value: Any) -> str:
    return "—" if value is None else f"{float(value):.4f}"


def finding_effect_table(comparison: Comparison) -> str:
    """Per pathology prompt and run: mean |change| inside the finding's place, outside it, and
    their ratio (`radsynth.probe.scorecard.finding_effect_row`), with the side check for a
    prompt that names a side, as a Markdown table; empty when no run measured the effect."""
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
            if r is None:
                cells.append("not measured")
                continue
            cell = (
                f"{_fmt4(r.get('mean_change_inside'))} / "
                f"{_fmt4(r.get('mean_change_outside'))} = {_value(r.get('inside_to_outside'))}"
            )
            if r.get("asked_to_other_side") is not None:
                cell += (
                    f"; other side {_fmt4(r.get('mean_change_other_side'))}, asked / other "
                    f"= {_value(r['asked_to_other_side'])}"
                )
            cells.append(cell)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
