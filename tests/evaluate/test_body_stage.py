"""The reader's body stage: fitting a whole body into the stage's shape, the training cases'
answer key, augmentation that keeps image and key together, a real tiny training run through
the command line, the stage inside a reader folder and the probe, and the shipped stage on the
probe's own knee-to-body phantoms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.evaluate.anatomy import truth_structure_map
from radsynth.evaluate.reader import (
    Reader,
    ReaderConfig,
    ReaderNet,
    StructureMap,
    count_peaks,
    load_reader,
)
from radsynth.evaluate.reader.body import (
    BODY_SHAPE,
    GROUPS,
    BodyStage,
    body_config,
    body_truth,
    case_masks,
    case_points,
    draw_body_reading,
    fit_body,
    fit_geometry,
    render_body_case,
    training_example,
    truth_map,
)
from radsynth.evaluate.reader.inference import BODY_STAGE, WEIGHTS_DIR
from radsynth.io.png import read_png_text
from radsynth.probe.protocol import ProbeConfig, _Probe, full_body_case
from radsynth.probe.report import write_report
from radsynth.probe.scoring import femur_tibia, regional_plane

runner = CliRunner()


@pytest.mark.parametrize("shape", [(1088, 256), (300, 200), (100, 600)])
def test_fit_puts_an_image_point_where_the_fit_maps_it(shape: tuple[int, int]) -> None:
    height, width = shape
    image = torch.zeros(1, height, width)
    r, c = int(height * 0.3), int(width * 0.6)
    image[0, r - 4 : r + 5, c - 4 : c + 5] = 1.0  # a 9 x 9 square centred on (r, c)
    fitted, fit = fit_body(image)
    assert fitted.shape == (1, *BODY_SHAPE)
    rows, cols = fit.padded
    assert rows * BODY_SHAPE[1] == pytest.approx(cols * BODY_SHAPE[0], rel=0.01)
    assert rows >= height and cols >= width and (rows == height or cols == width)
    values = fitted[0].numpy()
    weights = values / values.sum()
    centre = (
        (weights.sum(1) * np.arange(BODY_SHAPE[0])).sum(),
        (weights.sum(0) * np.arange(BODY_SHAPE[1])).sum(),
    )
    expected = fit.to_stage(np.array([[r, c]]))[0]
    assert np.hypot(centre[0] - expected[0], centre[1] - expected[1]) <= 1.0
    assert fit_geometry(height, width) == fit


def test_training_case_keeps_the_bodys_answer_key() -> None:
    case = render_body_case(0, "train", 0)
    assert case["image"].shape == BODY_SHAPE and case["image"].dtype == np.uint8
    data = {key: value[None] for key, value in case.items()}
    masks, points = case_masks(data, 0), case_points(data, 0)
    assert masks.shape == (len(GROUPS), *BODY_SHAPE)
    assert len(points) == 5  # five lumbar vertebrae, each inside the lumbar mask
    lumbar = masks[GROUPS.index("lumbar_vertebrae")]
    assert all(lumbar[int(round(r)), int(round(c))] for r, c, _ in points)
    # Lumbar vertebrae lie above the femora, which lie above the tibiae.
    rows = {g: np.nonzero(masks[GROUPS.index(g)].any(1))[0] for g in ("femur", "tibia")}
    assert points[:, 0].max() < rows["femur"].min() < rows["tibia"].min()
    # The femur/tibia ratio survives the fit: the same as at the body's own pixels.
    from radsynth.evaluate.reader.body import _case_draw

    draw = _case_draw(0, "train", 0)
    plane = regional_plane(draw["seed"], "knee", "ap", draw["side"], draw["sex"], draw["knee_px"])
    _, body, _ = plane.full_body(draw["width"], draw["min_width"])
    at_own_size = femur_tibia(truth_structure_map(body.masks))["ratio"]
    fitted = femur_tibia(truth_map(masks, points))["ratio"]
    assert fitted == pytest.approx(at_own_size, rel=0.03)
    groups, own_points = body_truth(body.masks)
    assert groups.shape[1:] == body.image.shape and len(own_points) == 5


def test_augmented_examples_keep_image_masks_and_centres_together() -> None:
    cases = [render_body_case(1, "train", i) for i in range(2)]
    data = {key: np.stack([c[key] for c in cases]) for key in cases[0]}
    plain = training_example(data, 0, None)
    assert [t.shape for t in plain] == [
        (1, *BODY_SHAPE),
        (len(GROUPS), *BODY_SHAPE),
        (1, *BODY_SHAPE),
    ]
    rng = np.random.default_rng(5)
    lumbar = GROUPS.index("lumbar_vertebrae")
    moved_any = False
    for step in range(6):
        picture, masks, heat = training_example(data, step % 2, rng)
        peaks = count_peaks(heat[0].numpy())
        assert len(peaks) == 5
        assert all(masks[lumbar, r, c] for r, c in peaks)  # centres stay on their vertebrae
        # The bones stay on the bright bones of the picture.
        femur = masks[GROUPS.index("femur")].bool()
        assert float(picture[0][femur].mean()) > float(picture[0][~femur].mean()) + 0.1
        moved_any |= not torch.equal(masks, training_example(data, step % 2, None)[1])
    assert moved_any


def _tiny_stage(tmp_path: Path) -> Path:
    out = tmp_path / "stage"
    args = ["train-body-reader", "--out", str(out), "--n", "4", "--heldout", "2"]
    result = runner.invoke(
        app, args + ["--steps", "2", "--batch-size", "2", "--checkpoint-every", "1", "--tiny"]
    )
    assert result.exit_code == 0, result.output
    assert "body stage and held-out figures written" in result.output
    return out


def test_train_body_reader_command_trains_saves_scores_and_resumes(tmp_path: Path) -> None:
    out = _tiny_stage(tmp_path)
    assert {"config.json", "reader.safetensors", "heldout.json"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "heldout.json").read_text())
    assert record["train"]["steps"] == 2
    held = record["heldout"]
    assert held["n"] == 2
    for name in ("with_stage", "reader_alone"):
        assert 0.0 <= held[name]["lumbar_count_exact"] <= 1.0
        assert held[name]["ratio_error_median"] >= 0.0
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 2
    args = ["train-body-reader", "--out", str(out), "--n", "4", "--heldout", "2"]
    result = runner.invoke(app, args + ["--steps", "3", "--batch-size", "2", "--tiny"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 3
    bad = runner.invoke(app, args + ["--steps", "0", "--tiny"])
    assert bad.exit_code != 0 and "--steps" in bad.output


def test_a_reader_folder_with_a_body_stage_reads_whole_bodies(tmp_path: Path) -> None:
    stage = _tiny_stage(tmp_path)
    folder = tmp_path / "reader"
    folder.mkdir()
    torch.manual_seed(0)
    from radsynth.evaluate.reader.model import save_reader

    save_reader(ReaderNet(ReaderConfig(size=32, widths=(8, 16, 32))), folder)
    without = load_reader(folder)
    assert without.body is None
    with pytest.raises(ValueError, match="no body stage"):
        without.read_body(np.zeros((64, 16), np.float32))
    staged = tmp_path / "reader-with-body"  # load_reader caches a folder's reader
    shutil.copytree(folder, staged)
    shutil.copytree(stage, staged / BODY_STAGE)
    reader = load_reader(staged)
    assert reader.body is not None
    maps = reader.read_body(np.random.default_rng(0).random((2, 300, 80)).astype(np.float32))
    assert len(maps) == 2
    assert set(maps[0].masks) == set(GROUPS) and maps[0].shape == BODY_SHAPE
    # The reader's own readings do not change with the stage.
    image = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    np.testing.assert_array_equal(
        reader.segmentation_logits(image), without.segmentation_logits(image)
    )


def test_probe_reads_a_grown_body_with_the_stage_it_calibrates_on_the_truth(
    tmp_path: Path,
) -> None:
    from radsynth.models import build_components

    model = build_components("tiny-patch", seed=0).save_pretrained(tmp_path / "model")
    torch.manual_seed(0)
    stage = BodyStage(ReaderNet(body_config((8, 16, 32))))
    reader = Reader(ReaderNet(ReaderConfig(size=32)), body=stage)
    config = ProbeConfig(n=1, steps=1, full_body_knee_px=32, full_body_width=1)
    probe = _Probe(model, config, reader, None)
    seed, sex = full_body_case(0)
    record = probe._one_full_body(seed, sex, 32)
    methods = record["reader_on_truth_by_method"]
    assert list(methods)[0] == "body stage" and len(methods) == 3
    assert record["reading"] in methods
    assert record["reader_on_truth"] == {
        **methods[record["reading"]],
        "lumbar_count": record["lumbar_on_truth_by_method"][record["lumbar_reading"]],
    }
    # The lumbar reading is the one whose count on the answer key is nearest the truth's.
    true_count = record["truth"]["lumbar_count"]
    best = min(abs(c - true_count) for c in record["lumbar_on_truth_by_method"].values())
    assert abs(record["reader_on_truth"]["lumbar_count"] - true_count) == best
    # The stage's maps of the grown body and of the key are kept for the report's figure,
    # which shows them in colour beside the grayscale figure (and not in scores.json).
    generated_map, key_map = record["_body_maps"]
    assert generated_map.shape == key_map.shape == BODY_SHAPE
    probe.result.full_body.append(record)
    write_report(probe.result, tmp_path / "one", keep_images=False)
    probe.result.full_body.append({**record, "seed": record["seed"] + 1})
    write_report(probe.result, tmp_path / "report", keep_images=False)
    # The grayscale figure puts the bodies side by side (knee, grown body, key each): a second
    # body makes it twice as wide (plus the 4 px gap), not taller.
    with (
        Image.open(tmp_path / "one" / "knee_to_full_body.png") as one,
        Image.open(tmp_path / "report" / "knee_to_full_body.png") as two,
    ):
        assert two.size == (2 * one.width + 4, one.height)
    with Image.open(tmp_path / "report" / "knee_to_full_body_read.png") as picture:
        assert picture.mode == "RGB"
        assert picture.size == (4 * BODY_SHAPE[1] + 3 * 4, BODY_SHAPE[0])
        assert read_png_text(tmp_path / "report" / "knee_to_full_body_read.png")["Synthetic"]
    page = (tmp_path / "report" / "report.html").read_text()
    assert "knee_to_full_body_read.png" in page
    scores = json.loads((tmp_path / "report" / "scores.json").read_text())
    assert "_body_maps" not in scores["knee_to_full_body"][0]
    # Without a stage the probe reads as before: two ways, the lumbar field; no colour figure.
    plain = _Probe(model, config, Reader(reader.net), None)._one_full_body(seed, sex, 32)
    assert "body stage" not in plain["reader_on_truth_by_method"]
    assert list(plain["lumbar_on_truth_by_method"]) == ["lumbar field"]
    assert "_body_maps" not in plain


def test_a_reading_is_drawn_over_the_fitted_body() -> None:
    image = np.zeros((400, 100), np.float32)
    image[100:300, 40:60] = 0.5
    masks = {g: np.zeros(BODY_SHAPE, bool) for g in GROUPS}
    masks["femur"][10:20, 30:40] = True
    smap = StructureMap(masks, {"lumbar_vertebrae": [(200, 64)]})
    picture = draw_body_reading(image, smap)
    assert picture.shape == (*BODY_SHAPE, 3) and picture.dtype == np.uint8
    red = picture[15, 35]
    assert red[0] > 2 * red[1] and red[0] > 2 * red[2]  # the femur, red
    assert tuple(picture[200, 64]) == (255, 230, 0)  # a lumbar centre, yellow
    plain = draw_body_reading(image, None)
    assert (plain[..., 0] == plain[..., 1]).all()  # no reading: gray
    assert plain[256, 64, 0] > plain[10, 10, 0]  # the body is where the fit puts it


@pytest.mark.skipif(
    not (WEIGHTS_DIR / BODY_STAGE / "reader.safetensors").is_file(), reason="no shipped stage"
)
def test_the_shipped_stage_reads_the_probes_true_bodies() -> None:
    reader = load_reader()
    assert reader.body is not None
    images, ratios, columns = [], [], []
    for k in range(2):  # the probe's first two bodies, a woman's and a man's, 1088 x 256 px
        seed, sex = full_body_case(k)
        plane = regional_plane(seed, "knee", "ap", "left", sex=sex, size=128)
        _, truth, _ = plane.full_body(256, 256)
        image = truth.image.astype(np.float32)
        images.append(image)
        ratios.append(femur_tibia(truth_structure_map(truth.masks))["ratio"])
        # The lumbar spine smoothed along the body only (Gaussian sigma 30 px against vertebrae
        # about 20 px apart): a column with no vertebrae in it, everything around it kept.
        lumbar = np.any([truth.masks[f"l{i}"] for i in range(1, 6)], axis=0)
        rows = np.nonzero(lumbar.any(1))[0]
        r0, r1 = rows.min() - 20, rows.max() + 20
        column = image.copy()
        column[r0:r1] = ndimage.gaussian_filter(image, (30, 0), mode="nearest")[r0:r1]
        columns.append(column)
    # A soft column is not counted as five vertebrae: the count comes from the vertebrae.
    for smap in reader.read_body(np.stack(columns)):
        assert len(smap.centres["lumbar_vertebrae"]) != 5
    maps = reader.read_body(np.stack(images))
    for true_ratio, smap in zip(ratios, maps, strict=True):
        read = femur_tibia(smap)
        assert abs(read["ratio"] / true_ratio - 1) <= 0.03
        assert len(smap.centres["lumbar_vertebrae"]) == 5
        # Both femora and tibiae, each about as long as the key's (254 and 244 of 1088 rows).
        assert 0.2 < read["femur_px"] / BODY_SHAPE[0] < 0.26
    # A black picture shows no body: no lumbar vertebra.
    blank = np.zeros((1088, 256), np.float32)
    assert len(reader.read_body(blank)[0].centres["lumbar_vertebrae"]) == 0


@pytest.mark.skipif(
    not (WEIGHTS_DIR / BODY_STAGE / "reader.safetensors").is_file(), reason="no shipped stage"
)
def test_anatomy_checks_of_a_whole_body_come_from_the_stage() -> None:
    from radsynth.evaluate.anatomy import read_anatomy
    from radsynth.evaluate.reader.body import standing_strip
    from radsynth.phantoms.cases import make_case

    case = make_case(8_900_000, modality="xray", region="full_body", view="ap", size=256)
    image = case.image.image.astype(np.float32)
    assert standing_strip(image).shape == (256, 64)  # a square field: its central strip
    assert standing_strip(image[:, :60]).shape == (256, 60)  # narrower: as it is
    checks = read_anatomy(image, "full_body", "ap")
    for name in ("skull_present", "femur_present", "tibia_present", "pelvis_present"):
        assert checks[name].passed, name
    assert checks["lumbar_vertebrae_count"].value == 5 and checks["lumbar_vertebrae_count"].passed
    # The legs below mid-thigh cut away: the tibiae are missing, the spine is still there.
    cut = image.copy()
    cut[150:] = 0.0
    checks = read_anatomy(cut, "full_body", "ap")
    assert not checks["tibia_present"].passed and checks["lumbar_vertebrae_count"].passed
    # Without the stage the reader alone answers, and counts no lumbar vertebrae there.
    alone = Reader(load_reader().net)
    assert "lumbar_vertebrae_count" not in read_anatomy(image, "full_body", "ap", reader=alone)
