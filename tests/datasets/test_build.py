"""`radsynth dataset build` on a tiny random model and on phantoms: files, manifests, summary,
determinism, synthetic DICOM that dciodvfy accepts, and clear refusals."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from sample_files import dciodvfy_errors, dcm2pnm_render
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.datasets import (
    BuildError,
    SpecError,
    build_dataset,
    load_spec,
    parse_spec,
    weights_sha256,
)
from radsynth.datasets.journal import merged_records
from radsynth.datasets.records import split_of
from radsynth.io import read_png_text, read_provenance
from radsynth.io.masks import load_masks
from radsynth.io.provenance import Provenance
from radsynth.models import build_components
from radsynth.pipelines import TextToImagePipeline
from radsynth.train.data import ManifestImageDataset

MODEL_SPEC = """
model: {model}
seed: 11
sampler: {{steps: 2, guidance: 2.0}}
formats: {formats}
split: {{train: 0.6, val: 0.2, test: 0.2}}
prompts:
  - prompt: "PA chest radiograph"
    count: 3
  - labels: {{modality: xray, region: knee, view: lateral, laterality: left}}
    count: 2
"""


def write_spec(folder: Path, model: Path, formats: str = "[png]") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(MODEL_SPEC.format(model=model, formats=formats))
    return path


def build(spec_file: Path, out: Path, resume: bool = False) -> None:
    build_dataset(load_spec(spec_file), out, resume=resume, threads=1, progress=False)


def file_bytes(folder: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.glob(pattern))}


def gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_model_build_writes_images_manifests_and_summary(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build(write_spec(tmp_path, tiny_model, "[png, dicom]"), out)
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert [r["seed"] for r in records] == [11, 12, 13, 14, 15]
    assert [r["prompt_index"] for r in records] == [0, 0, 0, 1, 1]
    knee = records[3]
    assert knee["labels"]["region"] == "knee" and knee["labels"]["laterality"] == "left"
    assert knee["caption"] == knee["prompt"] == "Lateral X-ray of the left knee"
    assert {r["model_sha256"] for r in records} == {weights_sha256(tiny_model)}
    assert {(r["steps"], r["guidance"]) for r in records} == {(2, 2.0)}
    # The 16-bit image, its 8-bit display copy and the DICOM file hold the same picture.
    sixteen = gray(out / knee["image"])
    assert sixteen.dtype == np.uint16 and sixteen.shape == (32, 32)
    eight = gray(out / knee["image_8bit"])
    assert np.abs(eight.astype(int) - np.round(sixteen / 257.0)).max() <= 1
    text = read_png_text(out / knee["image"])
    assert text["Synthetic"] == "YES" and text["seed"] == "14" and text["prompt"] == knee["prompt"]
    dicom = pydicom.dcmread(out / knee["dicom"])
    assert np.array_equal(dicom.pixel_array, sixteen)
    assert dicom.SyntheticData == "YES" and dicom.Modality == "DX"
    assert (dicom.BodyPartExamined, dicom.Laterality) == ("KNEE", "L")
    provenance = read_provenance(out / knee["dicom"])
    assert (provenance.seed, provenance.prompt, provenance.model_name) == (
        14,
        knee["prompt"],
        "tiny",
    )
    assert provenance.weights_sha256 == knee["model_sha256"] and provenance.num_inference_steps == 2
    # The model's own guidance cutoff, recorded (the tiny model guides every step).
    assert (
        provenance.guidance_cutoff
        == TextToImagePipeline.from_pretrained(tiny_model).guidance_cutoff
    )
    assert dciodvfy_errors(out / knee["dicom"]) == []
    dcm2pnm_render(out / knee["dicom"], tmp_path / "knee.pgm")
    # Image i is what the pipeline makes from seed 11 + i: `radsynth generate --seed` remakes it.
    pipe = TextToImagePipeline.from_pretrained(tiny_model)
    again = pipe(
        "Lateral X-ray of the left knee",
        num_inference_steps=2,
        guidance_scale=2.0,
        generator=torch.Generator().manual_seed(14),
    ).images[0]
    assert np.array_equal(np.round(np.clip(again, 0, 1) * 65535).astype(np.uint16), sixteen)
    # CSV and Parquet hold the same rows as the JSON Lines manifest.
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == [r["id"] for r in records]
    assert rows[3]["region"] == "knee" and json.loads(rows[3]["labels"]) == knee["labels"]
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    assert [row["seed"] for row in table] == [11, 12, 13, 14, 15]
    assert table[3]["dicom"] == knee["dicom"] and table[3]["model_sha256"] == knee["model_sha256"]
    page = (out / "summary.html").read_text()
    assert "PA chest radiograph (3 images)" in page and "Lateral X-ray of the left knee" in page
    assert gray(out / "grids" / "prompt-000.png").shape == (128, 3 * 128 + 2 * 2)
    assert not list(out.rglob("*.tmp*"))
    # The data set is a training folder as it stands.
    data = ManifestImageDataset(out, resolution=32)
    assert len(data) == 5 and data.caption(3) == knee["caption"]
    assert torch.equal(data.image(3)[0], torch.from_numpy(sixteen / np.float32(65535.0)))


def test_a_spec_guidance_cutoff_is_used_and_recorded(tiny_model: Path, tmp_path: Path) -> None:
    spec = tmp_path / "late.yaml"
    spec.write_text(
        f"model: {tiny_model}\nseed: 3\n"
        "sampler: {steps: 3, guidance: 4.0, guidance_cutoff: 0.7}\n"
        "prompts:\n  - prompt: PA chest radiograph\n    count: 1\n"
    )
    build(spec, tmp_path / "late")
    image = tmp_path / "late" / "images" / "img_000000.png"
    assert Provenance.from_png_text(read_png_text(image)).guidance_cutoff == 0.7
    pipe = TextToImagePipeline.from_pretrained(tiny_model)

    def made(cutoff: float) -> np.ndarray:
        pipe.guidance_cutoff = cutoff
        pixels = pipe(
            "PA chest radiograph",
            num_inference_steps=3,
            guidance_scale=4.0,
            generator=torch.Generator().manual_seed(3),
        ).images[0]
        return np.round(np.clip(pixels, 0, 1) * 65535).astype(np.uint16)

    expected = made(0.7)
    assert np.array_equal(gray(image), expected)
    # Guidance at every step makes another image.
    assert not np.array_equal(made(0.0), expected)


def test_same_spec_gives_identical_files(tiny_model: Path, tmp_path: Path) -> None:
    spec_file = write_spec(tmp_path, tiny_model, "[png, dicom]")
    build(spec_file, tmp_path / "a")
    build(spec_file, tmp_path / "b")
    for pattern in ("images/*", "display/*", "manifest.*", "grids/*"):
        first = file_bytes(tmp_path / "a", pattern)
        assert first and first == file_bytes(tmp_path / "b", pattern), pattern
    one = pydicom.dcmread(tmp_path / "a" / "dicom" / "img_000002.dcm")
    two = pydicom.dcmread(tmp_path / "b" / "dicom" / "img_000002.dcm")
    # The pixels and provenance repeat; every DICOM object still gets its own fresh UIDs.
    assert one.PixelData == two.PixelData and one.ImageComments == two.ImageComments
    assert one.SOPInstanceUID != two.SOPInstanceUID


def test_splits_are_a_deterministic_hash_of_the_seed(tiny_model: Path) -> None:
    spec = parse_spec(
        {
            "model": str(tiny_model),
            "split": {"train": 0.7, "val": 0.2, "test": 0.1},
            "prompts": [{"prompt": "knee", "count": 1}],
        }
    )
    counts = Counter(split_of(spec, seed) for seed in range(5000))
    assert abs(counts["train"] / 5000 - 0.7) < 0.03 and abs(counts["test"] / 5000 - 0.1) < 0.02
    assert [split_of(spec, s) for s in range(50)] == [split_of(spec, s) for s in range(50)]
    only_train = parse_spec(
        {
            "model": str(tiny_model),
            "split": {"train": 1.0},
            "prompts": [{"prompt": "knee", "count": 1}],
        }
    )
    assert {split_of(only_train, s) for s in range(200)} == {"train"}


def test_phantom_build_has_labels_masks_and_spacing(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "source": "phantoms",
            "size": 48,
            "seed": 4,
            "formats": ["png", "dicom"],
            "prompts": [
                {"prompt": "lateral radiograph of the right knee", "count": 2},
                {"labels": {"modality": "ct", "region": "chest", "sex": "female"}, "count": 1},
            ],
        }
    )
    out = tmp_path / "phantoms"
    build_dataset(spec, out, threads=1, progress=False)
    records = list(merged_records(out, 3))
    assert [r["labels"]["region"] for r in records] == ["knee", "knee", "chest"]
    assert [r["labels"]["view"] for r in records[:2]] == ["lateral", "lateral"]
    assert records[2]["labels"]["sex"] == "female" and records[2]["labels"]["modality"] == "ct"
    assert records[0]["caption"] != records[0]["prompt"]  # the case's own full caption
    masks = load_masks(out / records[0]["masks"])
    assert "body" in masks and masks["body"].shape == (48, 48) and masks["body"].any()
    dicom = pydicom.dcmread(out / records[2]["dicom"])
    assert dicom.Modality == "CT" and dicom.BodyPartExamined == "CHEST"
    assert [float(v) for v in dicom.PixelSpacing] == pytest.approx(records[2]["pixel_spacing_mm"])
    assert dciodvfy_errors(out / records[0]["dicom"]) == []
    assert dciodvfy_errors(out / records[2]["dicom"]) == []


def test_refusals_say_what_to_do(tiny_model: Path, tmp_path: Path) -> None:
    model = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    spec_file = write_spec(tmp_path, model)
    out = tmp_path / "ds"
    (out / "notes").mkdir(parents=True)
    with pytest.raises(BuildError, match="is not empty: pass --resume"):
        build(spec_file, out)
    with pytest.raises(BuildError, match="holds no spec.json"):
        build(spec_file, out, resume=True)
    done = tmp_path / "done"
    build(spec_file, done)
    build(spec_file, done, resume=True)  # a finished build resumes to the same result
    spec_file.write_text(spec_file.read_text().replace("seed: 11", "seed: 12"))
    with pytest.raises(BuildError, match=r"another SPEC or model \(differs in: seed\)"):
        build(spec_file, done, resume=True)
    spec_file.write_text(spec_file.read_text().replace("seed: 12", "seed: 11"))
    retrained = build_components("tiny", seed=1).save_pretrained(tmp_path / "retrained")
    shutil.copytree(retrained / "unet", model / "unet", dirs_exist_ok=True)
    with pytest.raises(BuildError, match=r"differs in: model_sha256"):
        build(spec_file, done, resume=True)
    journal = done / "journals" / "rank-000" / "manifest.jsonl"
    journal.write_text("".join(journal.read_text().splitlines(True)[:4]))
    with pytest.raises(ValueError, match="1 of 5 records are not built yet"):
        list(merged_records(done, 5))


def test_cli_reports_spec_mistakes_without_a_traceback(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'model = "{tiny_model}"\n[[prompts]]\nprompt = "knee"\ncout = 2\n')
    result = CliRunner().invoke(app, ["dataset", "build", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "prompts[0].cout: unknown key; did you mean 'count'" in result.output
    assert "Traceback" not in result.output
    good = write_spec(tmp_path, tiny_model)
    result = CliRunner().invoke(
        app,
        ["dataset", "build", str(good), "--out", str(tmp_path / "o"), "--quiet", "--threads", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "built 5 images" in result.output


def test_what_the_source_cannot_make_fails_before_anything_is_written(
    tiny_model: Path, tmp_path: Path
) -> None:
    fetus = {"labels": {"modality": "us", "region": "fetus", "sex": "male"}, "count": 1}
    spec = parse_spec({"source": "phantoms", "size": 32, "prompts": [fetus]})
    with pytest.raises(SpecError, match="phantoms cannot make it.*sex must be female"):
        build_dataset(spec, tmp_path / "fetus", threads=1, progress=False)
    odd = parse_spec(
        {"model": str(tiny_model), "size": 33, "prompts": [{"prompt": "knee", "count": 1}]}
    )
    with pytest.raises(SpecError, match="size: .*multiples of 2"):
        build_dataset(odd, tmp_path / "odd", threads=1, progress=False)
    assert not (tmp_path / "fetus").exists() and not (tmp_path / "odd").exists()


def test_a_format_not_asked_for_leaves_no_folder(tiny_model: Path, tmp_path: Path) -> None:
    # A DICOM-only build made empty images/ and display/ folders (and a PNG-only one dicom/).
    dicom_only = tmp_path / "dicom-only"
    build(write_spec(tmp_path / "a", tiny_model, "[dicom]"), dicom_only)
    assert len(list((dicom_only / "dicom").glob("*.dcm"))) == 5
    assert not (dicom_only / "images").exists() and not (dicom_only / "display").exists()
    png_only = tmp_path / "png-only"
    build(write_spec(tmp_path / "b", tiny_model), png_only)
    assert len(list((png_only / "images").glob("*.png"))) == 5
    assert not (png_only / "dicom").exists() and not (png_only / "masks").exists()
