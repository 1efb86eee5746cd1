"""`radsynth evaluate` on small folders of phantom images: files, scores, notes and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import radsynth.evaluate.metrics.suite as suite
from radsynth.cli.app import app
from radsynth.evaluate.features import HandcraftedFeatures
from radsynth.evaluate.reader.inference import WEIGHTS_DIR
from radsynth.io.png import write_png
from radsynth.phantoms.cases import make_case

runner = CliRunner()


def _write(folder: Path, images, names=None, captions=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, image in enumerate(images):
        name = names[i] if names else f"image_{i:03d}.png"
        write_png(folder / name, np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16))
        records.append({"id": f"{i}", "image": name, "caption": captions[i] if captions else ""})
    if captions:
        lines = "".join(json.dumps(r) + "\n" for r in records)
        (folder / "manifest.jsonl").write_text(lines, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def phantoms() -> dict[str, np.ndarray]:
    def cases(seeds):
        return np.stack([make_case(s, modality="xray", size=48).image.image for s in seeds])

    return {"real": cases(range(8)), "synthetic": cases(range(50, 55))}


@pytest.fixture
def handcrafted(monkeypatch):
    """Pin the fallback extractor, whatever reader weights the checkout holds."""
    info = {"name": "handcrafted-v1", "kind": "handcrafted", "note": "pinned by the test"}
    monkeypatch.setattr(suite, "default_feature_extractor", lambda: (HandcraftedFeatures(), info))


def _run(*args: str):
    return runner.invoke(app, ["evaluate", "--quiet", *args])


def test_scores_report_and_a_planted_copy(tmp_path, phantoms, handcrafted):
    real = _write(tmp_path / "real", phantoms["real"])
    synthetic_images = np.concatenate([phantoms["synthetic"], phantoms["real"][2:3]])
    synthetic = _write(tmp_path / "synthetic", synthetic_images)
    out = tmp_path / "out"
    result = _run(
        "--real", str(real), "--synthetic", str(synthetic), "--train", str(real), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "scores.json").read_text())
    assert scores["extractor"]["name"] == "handcrafted-v1"
    assert scores["image_size_px"] == 48
    assert scores["sets"]["synthetic"]["n"] == 6 and scores["sets"]["train"]["n"] == 8
    metrics = scores["metrics"]
    assert metrics["frechet_distance"] > 0
    assert metrics["prdc"]["k"] == 5 and 0 <= metrics["prdc"]["precision"] <= 1
    memorization = metrics["memorization"]
    assert memorization["flagged"] == 1
    assert memorization["flagged_images"][0] == {
        "image": 5,
        "image_file": "image_005.png",
        "nearest_train": 2,
        "nearest_train_file": "image_002.png",
        "pixel_correlation": pytest.approx(1.0),
        "shift_px": [0, 0],
        "residual_lag1": 0.0,
    }
    assert metrics["conditional_accuracy"]["skipped"]
    page = (out / "report.html").read_text()
    # The grids, and the flagged pair side by side.
    assert page.count("data:image/png;base64,") == 8 + 6 + 8 + 2
    assert "frechet_distance" in page and "not comparable with published FID" in page
    assert "Flagged as copies (1)" in page
    assert "<td>image_005.png</td><td>image_002.png</td>" in page


def test_report_in_a_browser(tmp_path, phantoms, handcrafted, browser):
    """report.html as a reader opens it: every sample shown at the scored size from the page
    itself (nothing fetched), and the table's numbers are scores.json's."""
    real = _write(tmp_path / "real", phantoms["real"])
    synthetic = _write(tmp_path / "synthetic", phantoms["synthetic"])
    out = tmp_path / "out"
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "scores.json").read_text())["metrics"]
    page = browser.open(out / "report.html")
    assert page.title == "radsynth evaluate" and not page.blank
    assert len(page.images) == 8 + 5 and not page.broken_images
    assert {(i["width"], i["height"]) for i in page.images} == {(48, 48)}
    assert not page.outside_requests and not page.console_errors, page.console_errors
    table = dict(row for row in page.tables[0] if len(row) == 2)
    assert float(table["frechet_distance"]) == pytest.approx(metrics["frechet_distance"], rel=1e-3)
    assert float(table["prdc.precision"]) == pytest.approx(metrics["prdc"]["precision"], abs=1e-3)
    assert "real samples" in page.text and "synthetic samples" in page.text
    assert page.overflow_px <= 0


def test_captions_group_images_for_diversity(tmp_path, phantoms, handcrafted):
    real = _write(tmp_path / "real", phantoms["real"])
    same = np.repeat(phantoms["synthetic"][:1], 3, axis=0)
    captions = ["An X-ray of the knee"] * 3 + ["An X-ray of the hand"] * 3
    synthetic = _write(
        tmp_path / "synthetic",
        np.concatenate([same, phantoms["synthetic"][1:4]]),
        captions=captions,
    )
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    diversity = json.loads((tmp_path / "o" / "scores.json").read_text())["metrics"][
        "ms_ssim_diversity"
    ]
    assert diversity["per_prompt"]["An X-ray of the knee"]["mean_ms_ssim"] == pytest.approx(1.0)
    assert diversity["per_prompt"]["An X-ray of the hand"]["diversity"] > 0
    assert diversity["pairs"] == 6


def test_a_data_sets_prompt_groups_images_whose_captions_differ(tmp_path, phantoms, handcrafted):
    # `dataset build` writes each phantom its own caption (its drawn sex, side, findings) and
    # the SPEC line's `prompt` beside it: the images of one prompt are grouped by the prompt.
    real = _write(tmp_path / "real", phantoms["real"])
    captions = [f"AP radiograph of the knee, case {i}" for i in range(4)]
    synthetic = _write(tmp_path / "synthetic", phantoms["synthetic"][:4], captions=captions)
    manifest = synthetic / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record, prompt in zip(records, ["knee", "knee", "hand", "hand"], strict=True):
        record["prompt"] = f"An X-ray of the {prompt}"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "o"
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(out))
    assert result.exit_code == 0, result.output
    diversity = json.loads((out / "scores.json").read_text())["metrics"]["ms_ssim_diversity"]
    assert sorted(diversity["per_prompt"]) == ["An X-ray of the hand", "An X-ray of the knee"]
    assert diversity["pairs"] == 2


def test_mismatched_sizes_are_resized_and_said(tmp_path, phantoms, handcrafted):
    real = _write(tmp_path / "real", phantoms["real"])
    small = [make_case(60 + i, modality="xray", size=40).image.image for i in range(3)]
    synthetic = _write(tmp_path / "synthetic", small)
    result = _run(
        "--real",
        str(real),
        "--synthetic",
        str(synthetic),
        "--out",
        str(tmp_path / "o"),
        "--size",
        "48",
    )
    assert result.exit_code == 0, result.output
    assert "resized 3 of 3 images (3 of 40x40) to 48x48 px" in result.output
    scores = json.loads((tmp_path / "o" / "scores.json").read_text())
    assert scores["image_size_px"] == 48 and scores["metrics"]["prdc"]["k"] == 2
    assert any("k lowered from 5 to 2" in note for note in scores["notes"])


def test_empty_folder_and_unreadable_files(tmp_path, phantoms, handcrafted):
    real = _write(tmp_path / "real", phantoms["real"][:4])
    (tmp_path / "empty").mkdir()
    result = _run(
        "--real", str(real), "--synthetic", str(tmp_path / "empty"), "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 1 and "holds no image files" in result.output
    synthetic = _write(tmp_path / "synthetic", phantoms["synthetic"][:3])
    (synthetic / "broken.png").write_text("not an image")
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "broken.png" in result.output and "--on-error skip" in result.output
    result = _run(
        "--real",
        str(real),
        "--synthetic",
        str(synthetic),
        "--out",
        str(tmp_path / "o"),
        "--on-error",
        "skip",
    )
    assert result.exit_code == 0, result.output
    assert "skipped (synthetic): broken.png" in result.output
    assert (
        _run(
            "--real",
            str(real),
            "--synthetic",
            str(synthetic),
            "--out",
            str(tmp_path / "o"),
            "--on-error",
            "maybe",
        ).exit_code
        == 2
    )


def test_the_default_extractor_is_named_in_the_scores(tmp_path, phantoms):
    real = _write(tmp_path / "real", phantoms["real"][:4])
    synthetic = _write(tmp_path / "synthetic", phantoms["synthetic"][:4])
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    extractor = json.loads((tmp_path / "o" / "scores.json").read_text())["extractor"]
    assert extractor["kind"] in ("reader", "handcrafted") and extractor["name"]


def test_conditional_accuracy_uses_the_readers_predictions(tmp_path, phantoms, monkeypatch):
    class FakeReader:
        name = "fake-reader"

        def features(self, images):
            return HandcraftedFeatures().features(images)

        def predict(self, images):
            return [
                {"modality": "xray", "region": "knee", "findings": {"fracture": 0.9}}
                for _ in images
            ]

    info = {"name": "fake-reader", "kind": "reader", "note": "test double"}
    monkeypatch.setattr(suite, "default_feature_extractor", lambda: (FakeReader(), info))
    real = _write(tmp_path / "real", phantoms["real"][:4])
    captions = [
        "X-ray of the knee with a patellar fracture",
        "X-ray of the knee",
        "X-ray of the hand",
    ]
    synthetic = _write(tmp_path / "synthetic", phantoms["synthetic"][:3], captions=captions)
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "o" / "scores.json").read_text())["metrics"]
    accuracy = scores["conditional_accuracy"]
    assert accuracy["n"] == 3
    assert (accuracy["fields"]["region"]["successes"], accuracy["fields"]["region"]["n"]) == (2, 3)
    assert accuracy["present_when_asked"]["fracture"]["rate"] == 1.0
    assert accuracy["absent_when_not_asked"]["fracture"]["rate"] == 0.0


def test_dicom_files_are_read_with_or_without_an_extension(tmp_path, phantoms, handcrafted):
    from radsynth.io.dicom_writer import write_synthetic_dicom
    from radsynth.io.provenance import Provenance

    real = _write(tmp_path / "real", phantoms["real"][:4])
    synthetic = tmp_path / "synthetic"
    (synthetic / "series").mkdir(parents=True)
    provenance = Provenance(model_name="test")
    for i, name in enumerate(("a.dcm", "series/IM0001", "series/IM0002")):
        write_synthetic_dicom(synthetic / name, phantoms["synthetic"][i], provenance=provenance)
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "o" / "scores.json").read_text())
    assert scores["sets"]["synthetic"]["n"] == 3 and scores["image_size_px"] == 48


@pytest.mark.skipif(
    not (WEIGHTS_DIR / "reader.safetensors").is_file(), reason="no shipped reader weights"
)
def test_anatomy_checks_of_synthetic_radiographs_by_region(tmp_path, phantoms):
    from radsynth.evaluate.reader.variant_cases import variant_case

    # Phantom knees and PA hands as the "synthetic" set, one knee without its fibula.
    knees = [make_case(s, modality="xray", region="knee", view="ap", size=128) for s in (1, 2)]
    hands = [make_case(s, modality="xray", region="hand", view="pa", size=128) for s in (3, 4)]
    no_fibula, labels = variant_case(9_100_000, 128, kind="no_fibula")
    assert labels["region"] == "knee"
    mri = make_case(5, modality="mri", region="knee", size=128)
    cases = [c.image.image for c in knees + hands] + [no_fibula.image, mri.image.image]
    cases.append(knees[0].image.image)
    captions = [c.caption for c in knees + hands]
    captions += ["AP radiograph of the left knee", mri.caption, "a cat"]
    real = _write(tmp_path / "real", phantoms["real"])
    synthetic = _write(tmp_path / "synthetic", cases, captions=captions)
    out = tmp_path / "out"
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(out))
    assert result.exit_code == 0, result.output
    anatomy = json.loads((out / "scores.json").read_text())["metrics"]["anatomy"]
    assert anatomy["images_checked"] == 5  # the MRI and the cat are not checked
    knee, hand = anatomy["per_region"]["knee"], anatomy["per_region"]["hand"]
    assert knee["fibula_present"]["n"] == 3 and knee["fibula_present"]["successes"] == 2
    assert knee["femur_present"]["successes"] == 3
    assert hand["phalanges_present"]["successes"] == 2
    failing = anatomy["failing_images"]
    assert {"image": "image_004.png", "region": "knee", "failed": ["fibula_present"]} in failing
    assert all(f["image"] != "image_000.png" for f in failing)
    assert "anatomy.per_region.knee.fibula_present" in (out / "report.html").read_text()
    # A caption in words the vocabulary does not know is listed, not a crash.
    conditional = json.loads((out / "scores.json").read_text())["metrics"]["conditional_accuracy"]
    assert len(conditional["unparsed_captions"]) == 1
    assert conditional["unparsed_captions"][0].startswith("image_006.png: unknown term 'cat'")


def test_out_naming_a_file_is_refused_before_any_work(tmp_path, phantoms):
    # It was a traceback: in `evaluate` after all the scoring, in `dataset build` and
    # `dataset ingest` at the first write.
    real = _write(tmp_path / "real", phantoms["real"][:2])
    a_file = tmp_path / "file"
    a_file.write_text("")
    spec = tmp_path / "spec.yaml"
    spec.write_text("source: phantoms\nsize: 32\nprompts:\n  - prompt: PA chest radiograph\n")
    table = tmp_path / "c.csv"
    table.write_text("path,caption\nimage_000.png,PA chest radiograph\n")
    for args in (
        ["evaluate", "--quiet", "--real", str(real), "--synthetic", str(real)],
        ["dataset", "build", str(spec)],
        ["dataset", "ingest", str(real), "--captions", str(table)],
    ):
        result = runner.invoke(app, [*args, "--out", str(a_file)])
        assert result.exit_code == 2, (args, result.output)
        assert "is a file" in " ".join(result.output.replace("│", " ").split()), result.output
    assert a_file.read_text() == ""


def test_flagged_copies_are_named_when_skipped_files_shift_positions(
    tmp_path, phantoms, handcrafted, browser
):
    """A skipped file moves every later image's position; the names stay right, and the report
    shows the pair, the counts, the skipped file and the audit's numbers to 6 digits."""
    train = _write(tmp_path / "train", phantoms["real"])
    names = [f"gen_{i}.png" for i in range(5)] + ["gen_9_copy.png"]
    synthetic = _write(
        tmp_path / "synthetic",
        np.concatenate([phantoms["synthetic"], phantoms["real"][6:7]]),
        names=names,
    )
    (synthetic / "gen_0_broken.png").write_text("not an image")  # sorted before gen_1.png
    out = tmp_path / "out"
    result = _run(
        "--real", str(train), "--synthetic", str(synthetic), "--train", str(train),
        "--out", str(out), "--on-error", "skip",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "scores.json").read_text())
    assert scores["sets"]["synthetic"]["n"] == 6
    assert scores["sets"]["synthetic"]["skipped"][0].startswith("gen_0_broken.png: ")
    memorization = scores["metrics"]["memorization"]
    (flagged,) = memorization["flagged_images"]
    assert flagged["image_file"] == "gen_9_copy.png" and flagged["image"] == 5
    assert flagged["nearest_train_file"] == "image_006.png" and flagged["nearest_train"] == 6

    page = browser.open(out / "report.html")
    assert not page.broken_images and not page.outside_requests and page.overflow_px <= 0
    assert len(page.images) == 8 + 6 + 8 + 2  # the grids and the flagged pair
    table = dict(row for row in page.tables[0] if len(row) == 2)
    threshold = memorization["threshold"]
    assert table["memorization.threshold"] == f"{threshold:.6g}"
    assert float(table["memorization.threshold"]) == pytest.approx(threshold, rel=1e-6)
    sets = {row[0]: row for row in page.tables[1][1:]}
    assert sets["synthetic"][2] == "6" and sets["train"][2] == "8" and sets["real"][2] == "8"
    assert sets["synthetic"][3].startswith("1") and "gen_0_broken.png" in sets["synthetic"][3]
    pair = page.tables[2][1]
    assert pair[:2] == ["gen_9_copy.png", "image_006.png"]
    assert float(pair[2]) == pytest.approx(flagged["pixel_correlation"], abs=1e-6)


def test_report_numbers_near_one_keep_their_digits():
    assert suite.format_number(0.99994612, 6) == "0.999946"
    assert suite.format_number(0.99997, 4) == "0.99997"  # 4 digits would say 1
    assert suite.format_number(0.9999999, 6) == "0.9999999"
    assert suite.format_number(1.0, 6) == "1" and suite.format_number(12.3456, 4) == "12.35"
    assert suite.format_number(float("inf")) == "inf"
    rows = dict(
        suite._rows({"frechet_distance": 0.123456, "memorization": {"threshold": 0.9999462}})
    )
    assert rows == {"frechet_distance": "0.1235", "memorization.threshold": "0.999946"}


def test_colour_images_are_refused_or_converted_with_color(tmp_path, phantoms, handcrafted):
    from PIL import Image

    real = _write(tmp_path / "real", phantoms["real"][:4])
    synthetic = _write(tmp_path / "synthetic", phantoms["synthetic"][:3])
    rgb = np.zeros((48, 48, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    rgb[8:40, 8:40, 1] = 120
    Image.fromarray(rgb).save(synthetic / "colour.png")
    args = ["--real", str(real), "--synthetic", str(synthetic), "--out", str(tmp_path / "o")]
    refused = _run(*args)
    assert refused.exit_code == 1
    assert "colour.png" in refused.output and "--color luminance" in refused.output
    converted = _run(*args, "--color", "luminance")
    assert converted.exit_code == 0, converted.output
    scores = json.loads((tmp_path / "o" / "scores.json").read_text())
    assert scores["sets"]["synthetic"]["n"] == 4 and not scores["sets"]["synthetic"]["skipped"]
    bad = _run(*args, "--color", "rgb")
    assert bad.exit_code == 2 and "--color must be error or luminance" in bad.output


def test_a_radsynth_folder_without_its_manifest_is_refused(tmp_path, phantoms, handcrafted):
    real = _write(tmp_path / "real", phantoms["real"][:4])
    built = _write(tmp_path / "built" / "images", phantoms["synthetic"][:3]).parent
    _write(built / "display", phantoms["synthetic"][:3])
    _write(built / "grids", phantoms["synthetic"][:1])
    (built / "spec.json").write_text("{}")
    (built / "manifest.parquet").write_bytes(b"PAR1")
    out = tmp_path / "o"
    result = _run("--real", str(real), "--synthetic", str(built), "--out", str(out))
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "is a radsynth dataset folder but its manifest.jsonl is missing" in message
    assert "--resume" in message and "images" in message
    for marker in ("spec.json", "manifest.parquet"):
        (built / marker).unlink()
    # A phantoms folder: images/, display/, a preview and the options it was drawn with.
    (built / "preview.png").write_bytes((built / "display" / "image_000.png").read_bytes())
    (built / "phantoms.json").write_text("{}")
    result = _run("--real", str(real), "--synthetic", str(built), "--out", str(out))
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "is a radsynth phantoms folder" in message and "radsynth phantoms --out" in message
    # Its images/ on their own are read; parquet tables there are not taken for images.
    (built / "images" / "labels.parquet").write_bytes(b"PAR1")
    result = _run("--real", str(real), "--synthetic", str(built / "images"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "scores.json").read_text())["sets"]["synthetic"]["n"] == 3


def test_a_phantoms_folder_groups_diversity_by_labels(tmp_path, phantoms, handcrafted):
    # `radsynth phantoms` captions in the study style repeat across views and sides; the labels
    # that define a prompt keep AP and lateral, left and right apart.
    real = _write(tmp_path / "real", phantoms["real"])
    synthetic = _write(
        tmp_path / "synthetic", phantoms["synthetic"][:4], captions=["An X-ray of the knee"] * 4
    )
    manifest = synthetic / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record, (view, side, sex) in zip(
        records,
        [("ap", "left", "male"), ("ap", "left", "female"), ("lateral", "left", None)]
        + [("ap", "right", None)],
        strict=True,
    ):
        record["labels"] = {"modality": "xray", "region": "knee", "view": view}
        record["labels"] |= {"laterality": side, "sex": sex, "age": None, "findings": []}
    records[3]["labels"]["findings"] = [{"kind": "fracture", "site": "patella", "qualifiers": []}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "o"
    result = _run("--real", str(real), "--synthetic", str(synthetic), "--out", str(out))
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "scores.json").read_text())
    diversity = scores["metrics"]["ms_ssim_diversity"]
    assert diversity["grouped_by"] == "labels"
    # Only the two AP left knees share a prompt (sex is drawn within one): one pair.
    assert list(diversity["per_prompt"]) == ["xray, knee, ap, left; no findings"]
    assert diversity["pairs"] == 1
    assert suite.prompt_of_labels(records[3]["labels"]) == (
        "xray, knee, ap, right; fracture at patella"
    )
    assert any("groups its images by their labels" in note for note in scores["notes"])


def test_a_second_run_into_out_says_it_replaces_the_first(tmp_path, phantoms, handcrafted):
    real = _write(tmp_path / "real", phantoms["real"][:4])
    synthetic = _write(tmp_path / "synthetic", phantoms["synthetic"][:3])
    args = ("--real", str(real), "--synthetic", str(synthetic), "--out", str(tmp_path / "o"))
    first = _run(*args)
    assert first.exit_code == 0 and "earlier evaluation" not in first.output
    second = _run(*args)
    assert second.exit_code == 0 and "holds an earlier evaluation" in second.output
