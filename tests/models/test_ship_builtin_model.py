"""The chain of training records a shipped model carries (scripts/ship_builtin_model.py)."""

from __future__ import annotations

import json
from pathlib import Path

from radsynth.train.report import parent_record, trained_steps, with_parents


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
