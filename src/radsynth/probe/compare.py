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
    "settings_that_differ",
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
    problem = _scores_problem(scores)
    if problem is not None:
        raise ValueError(f"{file}: {problem}")
    folder = file.parent
    return ProbeRun(label or folder.name, folder, scores)


def _scores_problem(scores: Any) -> str | None:
    """What keeps parsed JSON from being a `radsynth probe` scores.json, or None."""
    if not isinstance(scores, dict):
        return (
            f"the file holds a JSON {type(scores).__name__}, not an object: not a "
            "`radsynth probe` scores.json"
        )
    if "targets" not in scores:
        return "has no 'targets': not a `radsynth probe` scores.json"
    targets = scores["targets"]
    if not isinstance(targets, dict):
        return (
            f"'targets' is a JSON {type(targets).__name__}, but `radsynth probe` writes an "
            'object keyed by target (e.g. {"fibula_present": {"value": ..., "n": ..., '
            '"met": ...}}): not a `radsynth probe` scores.json, or one edited by hand; '
            "re-run `radsynth probe` or restore the file"
        )
    bad = [key for key, entry in targets.items() if not isinstance(entry, dict)]
    if bad:
        return (
            f"'targets' entries {bad[:3]} are not objects with name, value, n and met: not a "
            "`radsynth probe` scores.json, or one edited by hand"
        )
    return None


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
        cells, ns = [], []
        for run in runs:
            entry = run.targets.get(key)
            cells.append(None if entry is None else (entry.get("value"), bool(entry.get("met"))))
            ns.append(None if entry is None else entry.get("n"))
        rows[key] = {
            "name": spec.get("name", key),
            "threshold": spec.get("threshold"),
            "comparison": spec.get("comparison", ""),
            "cells": cells,
            "n": ns,  # the sample count of each run's value
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
    _check_independent(runs, name)
    models = {run.scores.get("model") for run in runs}
    scores = {
        "model": models.pop() if len(models) == 1 else None,
        "config": _merged_config(runs),
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


def _image_keys(run: ProbeRun) -> set[tuple[str, int]]:
    """(prompt, seed) of every image the run generated (`scores.json`'s "images")."""
    images = run.scores.get("images")
    if not isinstance(images, list):
        return set()
    return {
        (str(image["prompt"]), int(image["seed"]))
        for image in images
        if isinstance(image, dict) and "prompt" in image and isinstance(image.get("seed"), int)
    }


def _config(run: ProbeRun) -> dict[str, Any]:
    config = run.scores.get("config")
    return config if isinstance(config, dict) else {}


def _shared(a: ProbeRun, b: ProbeRun) -> str | None:
    """How two runs of one model share generated images, or None where they share none: the
    same (prompt, seed) in both runs' image records or, for runs without them, the same seed."""
    keys_a, keys_b = _image_keys(a), _image_keys(b)
    if keys_a and keys_b:
        common = len(keys_a & keys_b)
        if common:
            return f"share {common} of their {len(keys_a)} and {len(keys_b)} images (same seeds)"
        return None
    seed_a, seed_b = _config(a).get("seed"), _config(b).get("seed")
    if seed_a is not None and seed_a == seed_b:
        return f"both ran --seed {seed_a}"
    return None


def _check_independent(runs: list[ProbeRun], name: str) -> None:
    """Refuse to pool runs of one model that generated the same images (the same seed, or
    seeds closer than a run's number of images): pooling them would count each image twice,
    doubling n without new evidence."""
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            if a.scores.get("model") != b.scores.get("model"):
                continue
            shared = _shared(a, b)
            if shared is not None:
                raise ValueError(
                    f"the runs pooled as {name!r} are not independent: {a.path} and {b.path} "
                    f"(model {a.scores.get('model')}) {shared}, so pooling would count the same "
                    "images twice. Pool runs on seeds at least a run's number of images apart "
                    "(e.g. --seed 0, --seed 1000, --seed 2000), or give them different --label"
                )


def _merged_config(runs: list[ProbeRun]) -> dict[str, Any]:
    """The settings of pooled runs: each setting all runs share, and the list of the runs'
    values of one they do not (the seeds)."""
    configs = [_config(run) for run in runs]
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for config in configs for k in config):
        values = [config.get(key) for config in configs]
        same = len({json.dumps(v, sort_keys=True) for v in values}) == 1
        merged[key] = values[0] if same else values
    return merged


# A setting a run made before it was recorded reads as this (not "not recorded").
_SETTING_DEFAULTS: dict[str, Any] = {"quick_run": False}


def settings_that_differ(runs: tuple[ProbeRun, ...] | list[ProbeRun]) -> list[str]:
    """The `config` keys (the settings each run was asked for) whose values are not the same
    in every run, in the first run's order; empty for one run or runs alike."""
    configs = [_config(run) for run in runs]
    if len(configs) < 2 or not any(configs):
        return []
    keys = dict.fromkeys(k for config in configs for k in config)
    differ = []
    for key in keys:
        values = {
            json.dumps(config.get(key, _SETTING_DEFAULTS.get(key, "not recorded")), sort_keys=True)
            for config in configs
        }
        if len(values) > 1:
            differ.append(key)
    return differ


def _setting(config: dict[str, Any], key: str) -> str:
    """One setting of a run for the table, e.g. "n 1", "steps default", "seed 0/1000"."""
    value = config[key] if key in config else _SETTING_DEFAULTS.get(key, "not recorded")
    if value is None:
        text = "default"
    elif isinstance(value, list) and key == "seed":
        text = "/".join(map(str, value))
    elif isinstance(value, list | tuple):
        text = ", ".join(map(str, value))
    else:
        text = str(value)
    return f"{key} {text}"


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
    of each where the runs were read by different ones, the settings (`config`) that differ
    between runs where any do, a row per target (value, bold where met, and its sample count
    n), a row of targets met, and rows of the pooled finding
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
    differ = settings_that_differ(comparison.runs)
    if differ:  # e.g. a --quick run (1 image per prompt) beside a default one
        cells = [
            ", ".join(_setting(_config(run), key) for key in differ) for run in comparison.runs
        ]
        lines.append("| settings that differ | | " + " | ".join(cells) + " |")
    for key, row in comparison.rows.items():
        cells = []
        for cell, n in zip(row["cells"], row.get("n") or [None] * len(row["cells"]), strict=True):
            if cell is None:
                cells.append("not measured")
            else:
                value, met = cell
                text = f"**{_value(value)}**" if met else _value(value)
                cells.append(text if n is None else f"{text} (n={n})")
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
