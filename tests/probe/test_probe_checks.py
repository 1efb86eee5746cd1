"""The probe's checks before and after its work: a reader folder that is a stage, not a full
reader; --out naming a file; a re-used output folder; Figure 3's count target on cases with
nothing to count; and probe-compare's n, differing settings, pooling of runs that share
images and a malformed scores.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.evaluate.reader import Reader, ReaderConfig, ReaderNet, save_reader
from radsynth.evaluate.reader.findings import finding_config
from radsynth.evaluate.reader.groups import GROUPS
from radsynth.evaluate.reader.inference import WEIGHTS_DIR
from radsynth.evaluate.reader.model import check_full_reader, read_reader_config, stage_kind
from radsynth.probe.compare import compare_runs, load_run, markdown_table, pool_runs
from radsynth.probe.figures import FigureRow
from radsynth.probe.protocol import ProbeConfig, ProbeResult, check_probe_reader, run_probe
from radsynth.probe.report import clear_previous_run, write_report
from radsynth.probe.scorecard import edit_targets
from radsynth.probe.targets import rate_target

runner = CliRunner()
SMALL = (8, 8)  # encoder widths of the throwaway networks: two stages, cheap to build


def _plain(output: str) -> str:
    """A command's output with rich's error box and line wrapping taken out."""
    return " ".join(output.replace("│", " ").split())


def _finding_stage(folder: Path) -> Path:
    """What `radsynth train-finding-reader --out folder` writes: a finding stage."""
    save_reader(ReaderNet(finding_config(widths=SMALL, size=32)), folder, {"training": {}})
    return folder


# -- 1. a reader folder the probe cannot use is refused before the run ---------------------------
def test_the_shipped_stages_are_named_and_sent_to_their_subfolder() -> None:
    expected = {
        "findings": ("a finding stage", "train-finding-reader", "READER/findings/"),
        "carpals": ("a carpal stage", "train-carpal-reader", "READER/carpals/"),
        "body": ("a body stage", "train-body-reader", "READER/body/"),
    }
    for sub, words in expected.items():
        with pytest.raises(ValueError) as caught:
            check_probe_reader(WEIGHTS_DIR / sub)
        message = str(caught.value)
        assert all(word in message for word in words), message
        assert "not a full reader" in message and "the probe" in message
    check_probe_reader(WEIGHTS_DIR)  # the shipped full reader passes
    assert stage_kind(read_reader_config(WEIGHTS_DIR)) is None


def test_a_reader_lacking_a_group_the_checks_read_is_refused(tmp_path: Path) -> None:
    # Heads like a full reader's but no skull group: the run crashed on KeyError: 'skull'.
    config = ReaderConfig(size=32, widths=SMALL, groups=tuple(g for g in GROUPS if g != "skull"))
    save_reader(ReaderNet(config), tmp_path / "no_skull")
    with pytest.raises(ValueError, match="lacks what the probe reads .*structure groups skull"):
        check_probe_reader(tmp_path / "no_skull")
    # Groups the probe never reads are not required.
    other = ReaderConfig(size=32, widths=SMALL, groups=tuple(g for g in GROUPS if g != "liver"))
    save_reader(ReaderNet(other), tmp_path / "no_liver")
    assert check_full_reader(tmp_path / "no_liver", groups=("skull",)).groups == other.groups
    check_probe_reader(tmp_path / "no_liver")


def test_a_missing_or_broken_reader_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="expected config.json and reader.safetensors"):
        check_probe_reader(tmp_path)
    save_reader(ReaderNet(ReaderConfig(size=32, widths=SMALL)), tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"training": {}}))
    with pytest.raises(ValueError, match="is not a reader's config.json"):
        check_probe_reader(tmp_path)


def test_probe_refuses_a_finding_stage_as_reader_before_any_work(tmp_path: Path) -> None:
    stage = _finding_stage(tmp_path / "tiny_findings")
    out = tmp_path / "probe"
    result = runner.invoke(app, ["probe", "--out", str(out), "--reader", str(stage), "--quick"])
    assert result.exit_code != 0
    text = _plain(result.output)
    assert "a finding stage" in text and "READER/findings/" in text, text
    assert not out.exists()  # refused before anything was made


def test_run_probe_refuses_a_stage_reader_object_before_loading_the_model(tmp_path: Path) -> None:
    stage = Reader(ReaderNet(finding_config(widths=SMALL, size=32)))
    with pytest.raises(ValueError, match="the reader given holds a finding stage"):
        run_probe(tmp_path / "no model here", ProbeConfig.quick(), reader=stage)
    folder = _finding_stage(tmp_path / "stage")  # a folder is checked the same way
    with pytest.raises(ValueError, match="stage holds a finding stage"):
        run_probe(tmp_path / "no model here", ProbeConfig.quick(), reader=folder)


# -- 2. Figure 3's count target: a truth count of 0 is no evidence -------------------------------
def _fig3_row(truth: int, model: int, biharmonic: int) -> dict:
    def counts(filled: int) -> dict:
        return {
            "count_truth": truth,
            "count_reconstruction": filled,
            "count_match": truth == filled,
        }

    return {"region": "knee", "seed": 1, "model": counts(model), "biharmonic": counts(biharmonic)}


def test_cases_with_nothing_to_count_are_left_out_of_the_inpainting_targets() -> None:
    result = ProbeResult(model="m", config=ProbeConfig(), size=16)
    # A reader that sees nothing: three cases 0 == 0, two real cases missed.
    result.figure3 = [_fig3_row(0, 0, 0)] * 3 + [_fig3_row(3, 0, 0), _fig3_row(2, 0, 2)]
    count, beats = edit_targets(result, True, "")[:2]
    assert (count.value, count.n, count.met) == (0.0, 2, False)  # was 3/5 with every case
    assert count.details["cases_left_out_truth_count_0"] == 3
    assert "3 of 5 left out" in count.note and "truth count 0" in count.note
    assert beats.n == 2 and beats.value == pytest.approx(-50.0) and "3 of 5" in beats.note


def test_only_cases_with_nothing_to_count_leave_the_target_unmeasured() -> None:
    result = ProbeResult(model="m", config=ProbeConfig(), size=16)
    result.figure3 = [_fig3_row(0, 0, 0)] * 4  # was 1.0, met
    count, beats = edit_targets(result, True, "")[:2]
    assert count.value is None and count.n == 0 and not count.met
    assert count.note.startswith("not measured: no case shows a structure")
    assert beats.value is None and not beats.met
    result.figure3 = [_fig3_row(3, 3, 2)] * 2  # every case real: counted as before
    count, beats = edit_targets(result, True, "")[:2]
    assert (count.value, count.n, count.met) == (1.0, 2, True) and "0 of 2 left out" in count.note
    assert beats.value == pytest.approx(100.0) and beats.met


# -- 3. and 4. the output folder --------------------------------------------------------------
def test_probe_refuses_an_out_that_is_a_file_before_any_work(tmp_path: Path) -> None:
    file = tmp_path / "scores.txt"
    file.write_text("not a folder")
    result = runner.invoke(app, ["probe", "--out", str(file), "--quick", "--model", "nope"])
    assert result.exit_code != 0 and "is a file; give a folder" in _plain(result.output)
    assert file.read_text() == "not a folder"
    with pytest.raises(ValueError, match="is a file"):  # was FileExistsError after the run
        write_report(ProbeResult(model="m", config=ProbeConfig(), size=16), file)


def _result(config: ProbeConfig, figures: bool) -> ProbeResult:
    result = ProbeResult(model="m", config=config, size=16)
    result.targets = [rate_target("fibula_present", 3, 4)]
    if figures:
        images = [np.full((16, 16), 0.5, dtype=np.float32)] * 2
        result.figures["figure1"] = [FigureRow("knee", "An X-ray of the knee", images, [0, 1])]
    return result


def test_a_reused_folder_keeps_no_file_of_the_previous_run(tmp_path: Path) -> None:
    write_report(_result(ProbeConfig(), figures=True), tmp_path)
    assert (tmp_path / "figure1.png").is_file()
    assert (tmp_path / "images" / "figure1" / "knee-seed0.png").is_file()
    # A previous run's figures this run does not make, and a file of the researcher's own.
    for name in ("knee_to_full_body.png", "figure3.png", "images/anatomy.png"):
        (tmp_path / name).write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    write_report(_result(ProbeConfig.quick(), figures=False), tmp_path)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == ["notes.txt", "report.html", "scores.json"]
    assert json.loads((tmp_path / "scores.json").read_text())["config"]["n"] == 1
    # images/ with a file of someone else's is kept, with that file.
    (tmp_path / "images" / "figure2").mkdir(parents=True)
    (tmp_path / "images" / "mine.png").write_bytes(b"x")
    assert clear_previous_run(tmp_path) == ["scores.json", "report.html", "images/figure2/"]
    assert [p.name for p in (tmp_path / "images").iterdir()] == ["mine.png"]


def test_a_quick_run_says_so_in_its_header(tmp_path: Path) -> None:
    write_report(_result(ProbeConfig.quick(), figures=False), tmp_path / "quick")
    report = (tmp_path / "quick" / "report.html").read_text()
    assert "<h1>radsynth probe: quick (smoke) run</h1>" in report
    assert "not the model's scores" in report
    write_report(_result(ProbeConfig(), figures=False), tmp_path / "full")
    assert "smoke" not in (tmp_path / "full" / "report.html").read_text()


# -- 5. and 6. probe-compare -------------------------------------------------------------------
def _run(folder: Path, config: ProbeConfig, fibula: int, n: int, images: int = 0) -> Path:
    """A scores.json of a run with `config`, fibula seen in `fibula` of `n` knees and `images`
    generated image records (prompt and seed, from the config's seed)."""
    result = ProbeResult(model="m", config=config, size=16)
    result.targets = [rate_target("fibula_present", fibula, n)]
    scores = result.scores()
    scores["images"] = [{"prompt": "knee", "seed": config.seed + i} for i in range(images)]
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text(json.dumps(scores))
    return folder


def test_the_table_shows_each_value_s_n_and_the_settings_that_differ(tmp_path: Path) -> None:
    full = load_run(_run(tmp_path / "full", ProbeConfig(), 15, 16), "default")
    quick = load_run(_run(tmp_path / "quick", ProbeConfig.quick(seed=1000), 1, 1), "quick")
    table = markdown_table(compare_runs([full, quick]))
    assert "| >= 0.95 | 0.94 (n=16) | **1.00** (n=1) |" in table
    row = next(line for line in table.splitlines() if line.startswith("| settings that differ"))
    assert "n 4, seed 0, steps default" in row and "quick_run False" in row
    assert "n 1, seed 1000, steps 4" in row and "quick_run True" in row
    assert "full_body_cases 4" in row and "full_body_cases 1" in row
    assert "settings that differ" not in markdown_table(compare_runs([full]))


def test_runs_sharing_images_are_not_pooled(tmp_path: Path) -> None:
    same = [load_run(_run(tmp_path / f"s{i}", ProbeConfig(), 16, 16)) for i in (0, 1)]
    with pytest.raises(ValueError, match="not independent: .* both ran --seed 0"):
        pool_runs(same, "v1")
    # Seeds 0 and 1 with 4 images each share images 1 to 3 (seed S + i).
    near = [
        load_run(_run(tmp_path / f"n{seed}", ProbeConfig(seed=seed), 16, 16, images=4))
        for seed in (0, 1)
    ]
    with pytest.raises(ValueError, match="share 3 of their 4 and 4 images"):
        pool_runs(near, "v1")
    far = load_run(_run(tmp_path / "far", ProbeConfig(seed=1000), 12, 16, images=4))
    pooled = pool_runs([near[0], far], "v1")
    assert pooled.targets["fibula_present"]["n"] == 32
    assert pooled.scores["config"]["seed"] == [0, 1000] and pooled.scores["config"]["n"] == 4
    args = ["probe-compare", str(tmp_path / "s0"), str(tmp_path / "s1"), "--pool"]
    refused = runner.invoke(app, [*args, "--label", "a", "--label", "a"])
    assert refused.exit_code != 0 and "count the same images twice" in _plain(refused.output)


def test_targets_as_a_list_is_named(tmp_path: Path) -> None:
    (tmp_path / "scores.json").write_text(json.dumps({"targets": [{"name": "x", "value": 1}]}))
    with pytest.raises(ValueError, match="'targets' is a JSON list, but `radsynth probe` writes"):
        load_run(tmp_path)
    (tmp_path / "scores.json").write_text(json.dumps({"targets": {"x": 1}}))
    with pytest.raises(ValueError, match=r"'targets' entries \['x'\] are not objects"):
        load_run(tmp_path)
    (tmp_path / "scores.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="holds a JSON list, not an object"):
        load_run(tmp_path)
