"""The reader's carpal stage: box geometry, crops, training cases, a real tiny training run
through the command line, the stage inside `Reader.structures`, and the shipped stage on
phantom hands and wrists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.evaluate.anatomy import check_anatomy
from radsynth.evaluate.reader import count_peaks, load_reader
from radsynth.evaluate.reader.carpals import (
    CROP,
    Box,
    _case_kind,
    carpal_box,
    crop,
    render_carpal_case,
    training_example,
)
from radsynth.evaluate.reader.inference import CARPAL_STAGE, WEIGHTS_DIR
from radsynth.evaluate.reader.variant_cases import variant_case
from radsynth.phantoms.cases import make_case


def test_box_maps_points_to_the_crop_and_back() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 256, (20, 2))
    for angle, flip in ((0.0, False), (0.4, False), (-0.3, True)):
        box = Box(120.3, 97.8, 64.0, angle, flip)
        back = box.to_source(box.to_crop(points))
        np.testing.assert_allclose(back, points, atol=1e-9)
    # The box's centre lands in the middle of the crop; its corners on the crop's edges.
    box = Box(100.0, 50.0, 40.0)
    centre = box.to_crop(np.array([[100.0, 50.0]]))[0]
    np.testing.assert_allclose(centre, [(CROP - 1) / 2] * 2)
    corner = box.to_crop(np.array([[80.0, 30.0]]))[0]
    np.testing.assert_allclose(corner, [-0.5, -0.5])


@pytest.mark.parametrize(("angle", "flip"), [(0.0, False), (0.35, True)])
def test_crop_puts_an_image_point_where_the_box_maps_it(angle: float, flip: bool) -> None:
    image = torch.zeros(1, 200, 180)
    image[0, 70:73, 101:104] = 1.0  # a 3x3 dot centred on (71, 102)
    box = Box(80.0, 95.0, 48.0, angle, flip)
    picture = crop(image, box)
    assert picture.shape == (1, CROP, CROP)
    values = picture[0].numpy()
    rows, cols = np.nonzero(values > 0.5 * values.max())  # the dot, 2x larger in the crop
    expected = box.to_crop(np.array([[71.0, 102.0]]))[0]
    assert np.hypot(rows.mean() - expected[0], cols.mean() - expected[1]) <= 0.75


def test_carpal_box_covers_the_carpals_and_ignores_a_distant_speck() -> None:
    mask = np.zeros((160, 160), dtype=bool)
    mask[60:80, 50:76] = True  # the carpals: 20 rows, 26 columns
    mask[150:152, 5:7] = True  # a speck far away
    box = carpal_box(mask, (256, 256))
    assert box is not None
    scale = 256 / 160
    assert box.row == pytest.approx(70 * scale - 0.5)
    assert box.col == pytest.approx(63 * scale - 0.5)
    assert box.side == pytest.approx(26 * scale * 1.5)
    assert carpal_box(np.zeros((160, 160), dtype=bool), (256, 256)) is None


def test_training_cases_show_the_carpals_their_kind_leaves() -> None:
    kinds: dict[str, int] = {}
    for index in range(40):
        kind = _case_kind(0, "train", index)[1]
        kinds.setdefault(kind, index)
        if len(kinds) == 3:
            break
    assert set(kinds) == {"normal", "missing_carpal", "fused_carpals"}
    expected = {"normal": 8, "missing_carpal": 7, "fused_carpals": 7}
    for kind, index in kinds.items():
        case = render_carpal_case(0, "train", index)
        shown = int((~np.isnan(case["points"][:, 0])).sum())
        assert shown == expected[kind], kind
        data = {key: value[None] for key, value in case.items()}
        picture, mask, heat = training_example(data, 0, None)
        assert picture.shape == mask.shape == heat.shape == (1, CROP, CROP)
        assert len(count_peaks(heat[0].numpy())) == shown  # every carpal's peak inside the box
        assert 0.05 < float(mask.mean()) < 0.6


def _tiny_stage(tmp_path: Path) -> Path:
    out = tmp_path / "stage"
    result = CliRunner().invoke(
        app,
        [
            "train-carpal-reader",
            "--out",
            str(out),
            "--n",
            "4",
            "--heldout",
            "3",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--checkpoint-every",
            "1",
            "--tiny",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "carpal stage and held-out figures written" in result.output
    return out


def test_train_carpal_reader_command_trains_saves_scores_and_resumes(tmp_path: Path) -> None:
    out = _tiny_stage(tmp_path)
    assert {"config.json", "reader.safetensors", "heldout.json"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "heldout.json").read_text())
    assert record["train"]["steps"] == 2
    held = record["heldout"]
    assert held["n"] == 3
    shown = held["eight_shown"]["with_stage"]["n"] + held["seven_shown"]["with_stage"]["n"]
    assert shown == 3
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 2
    # Asked for more steps, the run resumes at step 2 from its checkpoint.
    result = CliRunner().invoke(
        app,
        ["train-carpal-reader", "--out", str(out), "--n", "4", "--heldout", "3"]
        + ["--steps", "3", "--batch-size", "2", "--tiny"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 3
    # Cached cases are reused and extended (case i depends on the seed and i only); cases of
    # another seed under the same name are refused.
    cases = out / "cases-train.npz"
    with np.load(cases) as data:
        first = data["image"].copy()
    result = CliRunner().invoke(
        app,
        ["train-carpal-reader", "--out", str(out), "--n", "5", "--heldout", "3"]
        + ["--steps", "3", "--batch-size", "2", "--tiny"],
    )
    assert result.exit_code == 0, result.output
    with np.load(cases) as data:
        assert len(data["image"]) == 5
        np.testing.assert_array_equal(data["image"][:4], first)
        np.testing.assert_array_equal(data["image"][4], render_carpal_case(0, "train", 4)["image"])
    result = CliRunner().invoke(
        app,
        ["train-carpal-reader", "--out", str(out), "--seed", "1", "--n", "4", "--tiny"],
    )
    assert result.exit_code != 0
    assert "holds other carpal cases (seed 0" in " ".join(result.output.replace("│", " ").split())


def test_a_reader_folder_with_a_stage_reads_carpals_through_it(tmp_path: Path) -> None:
    stage_out = _tiny_stage(tmp_path)
    plain_folder, staged_folder = tmp_path / "plain", tmp_path / "staged"
    for folder in (plain_folder, staged_folder):
        shutil.copytree(WEIGHTS_DIR, folder, ignore=shutil.ignore_patterns(CARPAL_STAGE))
    shutil.copytree(stage_out, staged_folder / CARPAL_STAGE, ignore=shutil.ignore_patterns("*.npz"))
    plain = load_reader(plain_folder)
    assert plain.carpals is None
    staged = load_reader(staged_folder)
    assert staged.carpals is not None
    image = make_case(3, modality="xray", region="hand", view="pa", size=256).image.image
    base_map = plain.structures(image)[0]
    staged_map = staged.structures(image)[0]
    # Only the carpal centres change; they lie in the reader's map, near its carpal mask.
    assert set(staged_map.centres) == set(base_map.centres)
    for group in base_map.centres:
        if group != "carpals":
            assert staged_map.centres[group] == base_map.centres[group]
    np.testing.assert_array_equal(staged_map.masks["carpals"], base_map.masks["carpals"])
    expected = staged.carpals.centres(image, base_map.masks["carpals"])
    assert staged_map.centres["carpals"] == expected
    rows, cols = np.nonzero(base_map.masks["carpals"])
    for row, col in staged_map.centres["carpals"]:
        assert 0 <= row < 160 and 0 <= col < 160
        assert rows.min() - 30 <= row <= rows.max() + 30
        assert cols.min() - 30 <= col <= cols.max() + 30


@pytest.mark.skipif(
    not (WEIGHTS_DIR / CARPAL_STAGE / "reader.safetensors").is_file(),
    reason="no carpal stage shipped",
)
def test_shipped_stage_counts_eight_carpals_and_sees_one_missing() -> None:
    reader = load_reader()
    assert reader.carpals is not None
    hands = [
        make_case(7_000_000 + i, modality="xray", region=region, view="pa", laterality="left")
        for i in range(3)
        for region in ("hand", "wrist")
    ]
    counts = [len(m.centres["carpals"]) for m in reader.structures([c.image.image for c in hands])]
    assert sum(c == 8 for c in counts) >= 5, counts
    missing = [variant_case(9_100_000 + i, 256, kind="missing_carpal") for i in range(3)]
    maps = reader.structures([image.image for image, _ in missing])
    assert sum(len(m.centres["carpals"]) == 7 for m in maps) >= 2
    checks = check_anatomy(maps[0], str(missing[0][1]["region"]), "pa")
    assert checks["carpals_count"].value == len(maps[0].centres["carpals"])
