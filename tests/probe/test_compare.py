"""`radsynth probe-compare`: probe runs' scores.json side by side, written by the probe's own
bookkeeping (ProbeResult.scores, rate_target, the finding effect of real arrays)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.probe.compare import (
    compare_runs,
    finding_effect_table,
    load_run,
    markdown_table,
    pool_runs,
)
from radsynth.probe.protocol import ProbeConfig, ProbeResult
from radsynth.probe.scorecard import finding_effect_row, summarise_finding_effect
from radsynth.probe.targets import lateral_within_ap, rate_target, target

runner = CliRunner()
# Each written run its own seed, as independent runs are (runs sharing a seed are not pooled).
_SEEDS = itertools.count(0, 1000)


def _write_run(
    folder: Path,
    fibula: int,
    modality: int,
    effect_gain: float | None,
    lateral: int | None = None,
    knee_error: float | None = None,
    steps: int | None = None,
    reader: str | None = None,
) -> Path:
    """A probe run's scores.json: fibula seen in `fibula` of 16 knees, the modality in
    `modality` of 108 images; a finding effect whose change inside the place is `effect_gain`
    (None: not measured); with `lateral`, AP passing 4 of 8 and lateral `lateral` of 8, 13 of
    14 erased joints restored and a knee-to-body ratio error of `knee_error`; with `steps`, the
    sampler it ran; with `reader`, the reader that scored it."""
    config = ProbeConfig(seed=next(_SEEDS))
    result = ProbeResult(model="m", config=config, size=16, reader=reader)
    if steps is not None:  # the sampler as the probe records it
        result.sampler = {
            "scheduler": "DPMSolverMultistepScheduler",
            "num_inference_steps": steps,
            "guidance_scale": 3.0,
            "guidance_cutoff": 0.5,
        }
    result.targets = [
        rate_target("fibula_present", fibula, 16),
        rate_target("modality_as_asked", modality, 108),
    ]
    if lateral is not None:
        result.targets += [
            lateral_within_ap(4, 8, lateral, 8),
            rate_target("inpaint_structure_count", 13, 14),
            target("knee_full_body_ratio", knee_error, 1),
        ]
    if effect_gain is not None:
        rng = np.random.default_rng(1)
        plain = rng.random((2, 16, 16))
        place = np.zeros((16, 16), dtype=bool)
        place[2:6, 2:6] = True
        other = np.zeros((16, 16), dtype=bool)
        other[2:6, 10:14] = True  # where the finding would be on the other side
        shown = plain + 0.01 + effect_gain * place
        prompts = ("PA chest with effusion", "PA chest")
        row = finding_effect_row("effusion", *prompts, shown, plain, place, other)
        result.finding_effect = summarise_finding_effect([row], places=1)
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text(json.dumps(result.scores()))
    return folder


def test_runs_side_by_side(tmp_path: Path) -> None:
    old = _write_run(tmp_path / "v6-seed0", fibula=13, modality=108, effect_gain=0.0)
    new = _write_run(tmp_path / "v8-seed0", fibula=16, modality=108, effect_gain=0.09)
    comparison = compare_runs([load_run(old), load_run(new, "v8")])
    assert [run.label for run in comparison.runs] == ["v6-seed0", "v8"]
    assert comparison.met_counts() == [1, 2]  # 16/16 fibulae meets >= 0.95, 13/16 does not
    assert comparison.differs == ("fibula_present",)
    assert comparison.rows["fibula_present"]["cells"] == [(13 / 16, False), (1.0, True)]
    table = markdown_table(comparison)
    assert (
        "| fibula present in knee X-rays (differs) | >= 0.95 | 0.81 (n=16) | **1.00** (n=16) |"
        in (table)
    )
    assert "**1 of 2**" in table and "**2 of 2**" in table
    assert "| finding effect, inside / outside (not a target) | | 1.00 " in table
    assert "10.00 (0.1000 / 0.0100)" in table  # 0.01 + 0.09 inside, 0.01 outside
    assert "| finding on the side asked, asked / other side (not a target) | | 1.00 " in table
    assert "10.00 (0.1000 / 0.0100) |" in table.splitlines()[-1]
    per_prompt = finding_effect_table(comparison)
    assert "| effusion | 0.0100 / 0.0100 = 1.00; other side 0.0100, asked / other = 1.00 | " in (
        per_prompt
    )
    assert "0.1000 / 0.0100 = 10.00; other side 0.0100, asked / other = 10.00 |" in per_prompt


def test_a_run_without_a_target_or_finding_effect(tmp_path: Path) -> None:
    old = _write_run(tmp_path / "a", fibula=16, modality=108, effect_gain=None)
    new = tmp_path / "b"
    new.mkdir()
    scores = json.loads((old / "scores.json").read_text())
    del scores["targets"]["modality_as_asked"]
    (new / "scores.json").write_text(json.dumps(scores))
    comparison = compare_runs([load_run(old), load_run(new / "scores.json")])
    assert comparison.rows["modality_as_asked"]["cells"] == [(1.0, True), None]
    assert comparison.differs == ("modality_as_asked",)
    assert "not measured" in markdown_table(comparison)
    assert "finding effect" not in markdown_table(comparison)
    assert finding_effect_table(comparison) == ""


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no probe scores"):
        load_run(tmp_path)
    (tmp_path / "scores.json").write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        load_run(tmp_path)
    (tmp_path / "scores.json").write_text(json.dumps({"metrics": {}}))
    with pytest.raises(ValueError, match="not a `radsynth probe` scores.json"):
        load_run(tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        compare_runs([])


def test_probe_compare_command(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", fibula=13, modality=100, effect_gain=0.0)
    b = _write_run(tmp_path / "b", fibula=16, modality=108, effect_gain=0.05)
    result = runner.invoke(
        app, ["probe-compare", str(a), str(b), "--label", "v6", "--label", "v8", "--findings"]
    )
    assert result.exit_code == 0, result.output
    assert "| target | threshold | v6 | v8 |" in result.output
    assert "| modality as asked (differs) | >= 0.98 | 0.93 (n=108) | **1.00** (n=108) |" in (
        result.output
    )
    assert "| effusion | " in result.output
    wrong = runner.invoke(app, ["probe-compare", str(a), str(b), "--label", "v6"])
    assert wrong.exit_code != 0 and "give one per run" in wrong.output
    missing = runner.invoke(app, ["probe-compare", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "no probe scores" in missing.output


def test_runs_of_several_seeds_pool_into_one_column(tmp_path: Path) -> None:
    a = load_run(_write_run(tmp_path / "s0", 16, 100, effect_gain=0.09, lateral=4, knee_error=0.40))
    b = load_run(_write_run(tmp_path / "s1", 13, 108, effect_gain=0.0, lateral=3, knee_error=0.3))
    assert (a.met, b.met) == (3, 2)  # fibula, lateral, inpainting; modality, inpainting
    pooled = pool_runs([a, b], "v10")
    assert pooled.label == "v10 (2 runs: 3/2)"
    fibula = pooled.targets["fibula_present"]
    assert (fibula["value"], fibula["n"], fibula["met"]) == (29 / 32, 32, False)
    low, high = fibula["details"]["wilson_95"]
    assert low < 29 / 32 < high and fibula["details"]["per_run"] == [1.0, 13 / 16]
    assert pooled.targets["modality_as_asked"]["value"] == 208 / 216
    # AP 8 of 16 against lateral 7 of 16: 6.25 points, though run a alone was within 3.
    lateral = pooled.targets["lateral_within_3_points_of_ap"]
    assert lateral["value"] == pytest.approx(6.25) and not lateral["met"]
    # Fixed-seed cases are the same in every run: not counted twice, the worst run is kept.
    inpaint = pooled.targets["inpaint_structure_count"]
    assert (inpaint["value"], inpaint["n"], inpaint["met"]) == (13 / 14, 14, True)
    knee = pooled.targets["knee_full_body_ratio"]
    assert (knee["value"], knee["n"]) == (0.40, 1) and "worst of 2" in knee["note"]
    assert pooled.met == 1 and pooled.scores["pooled"]["targets_met"] == [3, 2]
    effect = pooled.scores["finding_effect"]
    assert effect["inside_to_outside"] == pytest.approx(5.5)  # (0.10 + 0.01) / 2 over 0.01
    assert effect["sided"]["asked_to_other_side"] == pytest.approx(5.5)  # the other side: 0.01
    assert effect["per_prompt"][0]["asked_to_other_side"] == pytest.approx(5.5)
    assert finding_effect_table(compare_runs([pooled])).count("| effusion | 0.0550 / 0.0100") == 1
    with pytest.raises(ValueError, match="at least one"):
        pool_runs([])


def test_probe_compare_pools_runs_that_share_a_label(tmp_path: Path) -> None:
    runs = [
        _write_run(tmp_path / name, fibula, 108, effect_gain=None)
        for name, fibula in (("a0", 16), ("a1", 14), ("b0", 12))
    ]
    args = ["probe-compare", *map(str, runs), "--pool"]
    result = runner.invoke(app, [*args, "--label", "A", "--label", "A", "--label", "B"])
    assert result.exit_code == 0, result.output
    assert "| target | threshold | A (2 runs: 2/1) | B (1 run: 1) |" in result.output
    assert (
        "| fibula present in knee X-rays | >= 0.95 | 0.94 (n=32) | 0.75 (n=16) |" in result.output
    )
    unlabelled = runner.invoke(app, args)
    assert unlabelled.exit_code != 0 and "needs a --label per run" in unlabelled.output


def test_the_sampler_of_each_run_is_shown_and_never_pooled_across(tmp_path: Path) -> None:
    six = [_write_run(tmp_path / f"six{i}", 16, 108, effect_gain=None, steps=6) for i in (0, 1)]
    eight = _write_run(tmp_path / "eight", 16, 108, effect_gain=None, steps=8)
    older = _write_run(tmp_path / "older", 16, 108, effect_gain=None)  # before samplers were kept
    runs = [load_run(path) for path in (*six, eight, older)]
    table = markdown_table(compare_runs(runs[1:]))
    assert table.splitlines()[2] == (
        "| sampler | | 6 steps, guidance 3 at t >= 0.5 T | 8 steps, guidance 3 at t >= 0.5 T | "
        "not recorded |"
    )
    assert "| sampler |" not in markdown_table(compare_runs([runs[3]]))
    pooled = pool_runs(runs[:2], "v23")
    assert pooled.scores["sampler"]["num_inference_steps"] == 6
    assert "| sampler | | 6 steps, guidance 3 at t >= 0.5 T |" in markdown_table(
        compare_runs([pooled])
    )
    with pytest.raises(ValueError, match="used different samplers"):
        pool_runs(runs[:3], "v23")
    args = ["probe-compare", *map(str, (*six, eight)), "--pool"]
    mixed = runner.invoke(app, [*args, "--label", "v23", "--label", "v23", "--label", "v23"])
    assert mixed.exit_code != 0 and "different samplers" in mixed.output
    apart = runner.invoke(app, [*args, "--label", "v23", "--label", "v23", "--label", "v23 8"])
    assert apart.exit_code == 0, apart.output
    assert "| v23 (2 runs: 2/2) | v23 8 (1 run: 2) |" in apart.output


def test_runs_read_by_different_readers_are_named_and_never_pooled(tmp_path: Path) -> None:
    old = [_write_run(tmp_path / f"old{i}", 16, 108, None, reader="reader sha 1") for i in (0, 1)]
    new = _write_run(tmp_path / "new", 16, 108, None, reader="reader sha 2")
    runs = [load_run(path) for path in (*old, new)]
    assert "| reader |" not in markdown_table(compare_runs(runs[:2]))  # one reader: no row
    table = markdown_table(compare_runs(runs[1:]))
    assert "| reader | | reader sha 1 | reader sha 2 |" in table
    assert pool_runs(runs[:2], "v23").scores["reader"] == "reader sha 1"
    with pytest.raises(ValueError, match="read by different readers"):
        pool_runs(runs, "v23")
    args = ["probe-compare", *map(str, (*old, new)), "--pool"]
    mixed = runner.invoke(app, [*args, "--label", "v23", "--label", "v23", "--label", "v23"])
    assert mixed.exit_code != 0 and "different readers" in mixed.output


def test_a_small_threshold_keeps_its_digits() -> None:
    from radsynth.probe.compare import _value

    # The memorization target's threshold 0.005 read "< 0.01".
    assert (_value(0.005), _value(0.0), _value(0.25), _value(12.34)) == (
        "0.005", "0.00", "0.25", "12.3",
    )  # fmt: skip
