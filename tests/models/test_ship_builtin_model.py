"""scripts/ship_builtin_model.py: the chain of training records a shipped model carries, and
the script end to end, into a temporary folder in place of the package's."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.models import build_components
from radsynth.train.report import parent_record, record_chains, trained_steps, with_parents


def record(steps: int, parent_steps: int | None, init_from: str | None = None) -> dict:
    return {"steps": steps, "parent_steps": parent_steps, "config": {"init_from": init_from}}


def test_parent_record_is_the_one_whose_steps_the_run_continued(tmp_path: Path) -> None:
    # The built-in folder now holds model B (10 steps on A's 100), shipped after a run
    # had started from A in that same folder.
    builtin = tmp_path / "builtin"
    builtin.mkdir()
    a = record(100, None)
    b = {**record(10, 100, "elsewhere"), "parent": a}
    (builtin / "training.json").write_text(json.dumps(b))
    from_a = record(5, 100, str(builtin))
    assert parent_record(from_a) == a  # not B, which the folder holds by now
    from_b = record(5, 110, str(builtin))
    assert parent_record(from_b) == b
    assert parent_record(record(5, 7, str(builtin))) is None  # no record accounts for it
    # A run folder's record (RUN/training.json beside RUN/model) is found from RUN/model.
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "training.json").write_text(json.dumps(from_a))
    chained = with_parents(record(3, 105, str(run / "model")))
    assert chained["parent"]["steps"] == 5 and chained["parent"]["parent"] == a
    assert [trained_steps(r) for r in (chained, chained["parent"], a)] == [108, 105, 100]


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ship_builtin_model.py"


def ship_script(target: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ship_builtin_model", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.TARGET = target  # never the package's own built-in folder
    return module


def run_folder(root: Path, seed: int, steps: int) -> Path:
    components = build_components("tiny", seed=seed)
    components.defaults = {**components.defaults, "trained_steps": steps}
    components.save_pretrained(root / "model")
    run_record = {"steps": steps, "parent_steps": 0, "command": "radsynth-train --preset tiny"}
    (root / "training.json").write_text(json.dumps(run_record))
    return root


def ship(module: ModuleType, monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["ship_builtin_model.py", *args])
    module.main()


def test_an_average_ships_in_fp16_with_its_record_and_a_given_loss_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = run_folder(tmp_path / "a", 0, 5), run_folder(tmp_path / "b", 1, 7)
    curve = tmp_path / "b" / "loss.png"
    Image.fromarray(np.full((8, 12), 200, np.uint8)).save(curve)
    out = tmp_path / "soup"
    result = CliRunner().invoke(
        app, ["average", str(first / "model"), str(second / "model"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    target = tmp_path / "builtin"
    module = ship_script(target)
    ship(module, monkeypatch, str(out), "--data-command", "make data", "--loss-curve", str(curve))
    weights = target / "unet" / "diffusion_pytorch_model.safetensors"
    with safe_open(str(weights), framework="pt") as handle:
        assert {handle.get_slice(key).get_dtype() for key in handle.keys()} == {"F16"}  # noqa: SIM118 (safe_open is not a dict)
    shipped = json.loads((target / "training.json").read_text())
    assert shipped["kind"] == "weight average"
    assert shipped["shipped"]["data_command"] == "make data"
    assert shipped["shipped"]["unet_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert [[r["steps"] for r in chain] for chain in record_chains(shipped)] == [[0, 5], [0, 7]]
    assert (target / "loss.png").read_bytes() == curve.read_bytes()
    # Without --loss-curve an average ships none (it has no curve of its own); a missing
    # file is refused before anything is replaced.
    ship(module, monkeypatch, str(out), "--data-command", "make data")
    assert not (target / "loss.png").exists()
    with pytest.raises(SystemExit):
        ship(module, monkeypatch, str(out), "--data-command", "x", "--loss-curve", "nope.png")
    assert json.loads((target / "training.json").read_text())["shipped"]["data_command"] == (
        "make data"
    )
