"""Folders radsynth wrote, as `radsynth evaluate` input: a built data set or a phantoms folder
whose manifest.jsonl is missing is refused with the way to get it back, and that way works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.datasets import build_dataset
from radsynth.datasets.spec import parse_spec
from radsynth.evaluate.metrics.folders import (
    EvaluateError,
    load_image_folder,
    radsynth_layout,
)
from radsynth.io.manifest import read_manifest


def test_a_built_data_set_without_its_manifest_is_refused_until_resumed(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "source": "phantoms",
            "size": 32,
            "formats": ["png", "dicom"],
            "prompts": [{"prompt": "AP radiograph of the left knee", "count": 3}],
        }
    )
    out = tmp_path / "built"
    build_dataset(spec, out, threads=1, progress=False)
    assert len(load_image_folder(out)) == 3
    before = read_manifest(out)
    (out / "manifest.jsonl").unlink()
    assert radsynth_layout(out) == "dataset"
    with pytest.raises(EvaluateError, match="manifest.jsonl is missing") as refused:
        load_image_folder(out)
    assert "radsynth dataset build SPEC" in str(refused.value) and "--resume" in str(refused.value)
    # What the message says gets the manifest back, and nothing counts twice.
    build_dataset(spec, out, resume=True, threads=1, progress=False)
    assert read_manifest(out) == before
    restored = load_image_folder(out)
    assert restored.names == [record["image"] for record in before]
    # The images/ subfolder on its own is read without captions.
    assert len(load_image_folder(out / "images")) == 3


def test_a_phantoms_folder_without_its_manifest_is_refused_until_resumed(tmp_path: Path) -> None:
    out = tmp_path / "phantoms"
    args = ["phantoms", "--out", str(out), "--n", "3", "--size", "32", "--region", "knee"]
    assert CliRunner().invoke(app, args).exit_code == 0
    before = read_manifest(out)
    (out / "manifest.jsonl").unlink()
    with pytest.raises(EvaluateError, match="radsynth phantoms folder") as refused:
        load_image_folder(out)
    assert "radsynth phantoms --out" in str(refused.value) and "phantoms.json" in str(refused.value)
    settings = (out / "phantoms.json").read_text()
    (out / "phantoms.json").unlink()  # images/, display/ and preview.png still tell
    assert radsynth_layout(out) == "phantoms"
    (out / "preview.png").rename(tmp_path / "preview.png")
    assert radsynth_layout(out) == "data"  # images/ and display/ still tell
    with pytest.raises(EvaluateError, match="radsynth data folder but its manifest.jsonl"):
        load_image_folder(out)
    (tmp_path / "preview.png").rename(out / "preview.png")
    with pytest.raises(EvaluateError, match="manifest.jsonl is missing"):
        load_image_folder(out)
    (out / "phantoms.json").write_text(settings)
    resumed = CliRunner().invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert read_manifest(out) == before
    assert load_image_folder(out).names == [record["image"] for record in before]


def test_a_nifti_volume_in_a_folder_is_noted(tmp_path: Path) -> None:
    # A 3-D NIfTI counted as one image, its middle slice, with no word.
    import nibabel as nib

    from radsynth.evaluate.metrics.folders import load_image_folder
    from radsynth.io.png import write_png

    folder = tmp_path / "mixed"
    folder.mkdir()
    write_png(folder / "a.png", np.full((16, 16), 100, np.uint8))
    volume = np.random.default_rng(0).random((16, 16, 5)).astype(np.float32)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), folder / "vol.nii.gz")
    images = load_image_folder(folder)
    assert len(images) == 2
    assert any("1 NIfTI volume(s) read as one image each" in n and "vol.nii.gz" in n
               for n in images.notes)  # fmt: skip
