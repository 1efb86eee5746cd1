"""The diffusion commands on a tiny random model saved to a temporary folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.io.png import read_png_text, write_png
from radsynth.models import build_components

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_components("tiny", seed=0).save_pretrained(tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture()
def knee(tmp_path: Path) -> Path:
    y, x = np.mgrid[0:32, 0:32]
    pixels = (40 + 150 * ((x - 16) ** 2 < 36) + y).astype(np.uint8)
    return write_png(tmp_path / "knee.png", pixels)


def gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_generate_writes_seeded_images_and_a_grid(model_dir: Path, tmp_path: Path) -> None:
    args = ["generate", "PA chest radiograph", "-n", "2", "--seed", "5", "--steps", "2"]
    result = runner.invoke(app, [*args, "--model", str(model_dir), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    first, second = tmp_path / "o" / "generated-seed5.png", tmp_path / "o" / "generated-seed6.png"
    assert gray(first).shape == (32, 32) and (tmp_path / "o" / "generated-grid.png").is_file()
    text = read_png_text(first)
    assert text["Synthetic"] == "YES" and text["Seed"] == "5"
    assert text["Prompt"] == "PA chest radiograph" and text["Model"] == str(model_dir)
    assert not np.array_equal(gray(first), gray(second))
    again = runner.invoke(
        app,
        [
            "generate",
            "PA chest radiograph",
            "-n",
            "1",
            "--seed",
            "5",
            "--steps",
            "2",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "again"),
        ],
    )
    assert again.exit_code == 0
    assert np.array_equal(gray(first), gray(tmp_path / "again" / "generated-seed5.png"))


def test_inpaint_box_keeps_the_rest(model_dir: Path, knee: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "inpaint",
            "knee",
            str(knee),
            "--box",
            "4,8,20,24",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    out, original = gray(tmp_path / "o" / "inpainted-seed0.png"), gray(knee)
    keep = np.ones_like(original, dtype=bool)
    keep[8:24, 4:20] = False
    assert np.array_equal(out[keep], original[keep])


def test_outpaint_and_edit(model_dir: Path, knee: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "outpaint",
            "knee",
            str(knee),
            "--right",
            "16",
            "--top",
            "8",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    extended = gray(tmp_path / "o" / "outpainted-seed0.png")
    assert extended.shape == (40, 48) and np.array_equal(extended[8:, :32], gray(knee))
    mask = write_png(tmp_path / "mask.png", np.pad(np.full((8, 8), 255, np.uint8), 12))
    result = runner.invoke(
        app,
        [
            "edit",
            "fracture",
            str(knee),
            "--mask",
            str(mask),
            "--strength",
            "0.5",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "e"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert gray(tmp_path / "e" / "edited-seed0.png").shape == (32, 32)


def test_bad_options_say_what_to_do(model_dir: Path, knee: Path, tmp_path: Path) -> None:
    both = runner.invoke(
        app, ["inpaint", "knee", str(knee), "--out", str(tmp_path), "--model", str(model_dir)]
    )
    assert both.exit_code != 0 and "exactly one of --mask" in both.output
    outside = runner.invoke(
        app,
        [
            "inpaint",
            "knee",
            str(knee),
            "--box",
            "0,0,99,4",
            "--out",
            str(tmp_path),
            "--model",
            str(model_dir),
        ],
    )
    assert outside.exit_code != 0 and "not inside" in outside.output
    missing = runner.invoke(
        app, ["generate", "knee", "--model", str(tmp_path / "none"), "--out", str(tmp_path)]
    )
    assert missing.exit_code != 0 and "no model folder" in missing.output
