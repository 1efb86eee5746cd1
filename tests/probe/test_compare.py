"""`radsynth probe-compare`: probe runs' scores.json side by side, written by the probe's own
bookkeeping (ProbeResult.scores, rate_target, the finding effect of real arrays)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.probe.compare import compare_runs, finding_effect_table, load_run, markdown_table
from radsynth.probe.protocol import ProbeConfig, ProbeResult
from radsynth.probe.scorecard import finding_effect_row, summarise_finding_effect
from radsynth.probe.targets import rate_target

runner = CliRunner()


def _write_run(folder: Path, fibula: int, modality: int, effect_gain: float | None) -> Path:
    """A probe run's scores.json: fibula seen in `fibula` of 16 knees, the modality in
    `modality` of 108 images; a finding effect whose change inside the place is `effect_gain`
    (None: not measured)."""
    result = ProbeResult(model="m", config=ProbeConfig(), size=16)
    result.targets = [
        rate_target("fibula_present", fibula, 16),
        rate_target("modality_as_asked", modality, 108),
    ]
    if effect_gain is not None:
        rng = np.random.default_rng(1)
        plain = rng.random((2, 16, 16))
        place = np.zeros((16, 16), dtype=bool)
        place[2:6, 2:6] = True
        shown = plain + 0.01 + effect_gain * place
        prompts = ("PA chest with effusion", "PA chest")
        row = finding_effect_row("effusion", *prompts, shown, plain, place)
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
    assert "| fibula present in knee X-rays (differs) | >= 0.95 | 0.81 | **1.00** |" in table
    assert "**1 of 2**" in table and "**2 of 2**" in table
    assert "| finding effect, inside / outside (not a target) | | 1.00 " in table
    assert "10.00 (0.1000 / 0.0100)" in table  # 0.01 + 0.09 inside, 0.01 outside
    per_prompt = finding_effect_table(comparison)
    assert "| effusion | 0.0100 / 0.0100 = 1.00 | 0.1000 / 0.0100 = 10.00 |" in per_prompt


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
    assert "| modality as asked (differs) | >= 0.98 | 0.93 | **1.00** |" in result.output
    assert "| effusion | " in result.output
    wrong = runner.invoke(app, ["probe-compare", str(a), str(b), "--label", "v6"])
    assert wrong.exit_code != 0 and "give one per run" in wrong.output
    missing = runner.invoke(app, ["probe-compare", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "no probe scores" in missing.output
