"""The study's Figure 1 as a labelled grid, made by a tiny random model through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.io.manifest import read_manifest
from radsynth.io.png import read_png_text
from radsynth.models import build_components
from radsynth.pipelines import TextToImagePipeline
from radsynth.probe import FigureRow, figure1_prompts, labelled_grid

runner = CliRunner()


def test_figure1_prompts_are_the_studys_eight_regions_in_order() -> None:
    regions = [region for region, _ in figure1_prompts()]
    assert regions == ["head", "chest", "shoulder", "abdomen", "pelvis", "hand", "knee", "ankle"]
    assert figure1_prompts()[6][1] == "An X-ray of the knee"


def test_labelled_grid_places_every_image_under_its_prompt() -> None:
    rows = [
        FigureRow("a", "first", [np.full((20, 30), v, np.float32) for v in (0.0, 1.0)], [0, 1]),
        FigureRow("b", "second", [np.full((20, 30), 0.5, np.float32)], [2]),
    ]
    grid = labelled_grid(rows, gap=4)
    label_h = 16
    assert grid.shape == (2 * (label_h + 20 + 4), 2 * 30 + 4)
    assert (grid[label_h : label_h + 20, 34:] == 255).all()  # row 1, image 2 (white)
    assert (grid[label_h : label_h + 20, :30] == 0).all()
    assert (grid[2 * label_h + 24 : 2 * label_h + 44, :30] == 128).all()
    with pytest.raises(ValueError, match="must be 20x30"):
        labelled_grid([FigureRow("c", "p", [np.zeros((20, 30)), np.zeros((9, 9))], [0, 1])])


def test_labels_wider_than_the_grid_shrink_or_are_cut_inside_it() -> None:
    tiles = [np.zeros((90, 40), np.float32)] * 3
    short = FigureRow("a", "knee", tiles, [0, 1, 2])
    long = FigureRow("b", "female: knee | grown to a full body | answer key", tiles, [0, 1, 2])
    title = "Figure 4: knee to full body"
    grid = labelled_grid([short, long], title)
    width = grid.shape[1]
    title_band, label_band = grid[:20], grid[22 : 22 + 16]
    long_band = grid[22 + 16 + 90 + 4 : 22 + 16 + 90 + 4 + 16]
    for band in (title_band, label_band, long_band):
        ink = np.nonzero((band > 128).any(0))[0]
        assert len(ink) and ink.max() < width - 2  # nothing runs off the right edge
    # A label that fits keeps the full size; one that does not is drawn smaller or cut.
    ink_height = [np.ptp(np.nonzero((b > 128).any(1))[0]) for b in (label_band, long_band)]
    assert ink_height[1] <= ink_height[0]
    wide = labelled_grid([FigureRow("a", "knee", [np.zeros((90, 400), np.float32)], [0])], title)
    wide_ink = np.nonzero((wide[:20] > 128).any(0))[0]
    assert wide_ink.max() - wide_ink.min() > 100  # room enough: the title at its own size


def test_figure1_command_keeps_every_image_with_its_seed(tmp_path: Path) -> None:
    model = build_components("tiny-patch", seed=0).save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    args = ["figure1", "--model", str(model), "--out", str(out), "-n", "2", "--seed", "10"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    singles = sorted((out / "figure1").glob("*.png"))
    assert len(singles) == 16
    knee = out / "figure1" / "knee-seed22.png"
    text = read_png_text(knee)
    assert text["Prompt"] == "An X-ray of the knee" and text["Synthetic"] == "YES"
    # The sampler as run, the model's defaults filled in: what remakes the image.
    defaults = TextToImagePipeline.from_pretrained(model)
    assert text["num_inference_steps"] == str(defaults.default("num_inference_steps", None))
    assert text["guidance_scale"] == str(float(defaults.default("guidance_scale", None)))
    assert text["guidance_cutoff"] == str(defaults.guidance_cutoff)
    assert Image.open(knee).size == (32, 32)
    # The single images are a data folder: a manifest grouping them by prompt, no grid.
    records = read_manifest(out / "figure1")
    assert sorted(r["image"] for r in records) == [p.name for p in singles]
    assert {r["caption"] for r in records if r["image"] == "knee-seed22.png"} == {
        "An X-ray of the knee"
    }
    # One generator per image: an image is made again from its seed alone, in any batch.
    again = tmp_path / "again"
    result = runner.invoke(
        app, ["figure1", "--model", str(model), "--out", str(again), "-n", "1", "--seed", "10"]
    )
    assert result.exit_code == 0, result.output
    assert read_png_text(again / "figure1" / "head-seed10.png")["guidance_cutoff"] == str(
        defaults.guidance_cutoff
    )
    late = tmp_path / "late"
    args = ["figure1", "--model", str(model), "--out", str(late), "-n", "1", "--seed", "10"]
    result = runner.invoke(app, [*args, "--steps", "3", "--guidance-cutoff", "0.6"])
    assert result.exit_code == 0, result.output
    late_text = read_png_text(late / "figure1" / "head-seed10.png")
    assert late_text["guidance_cutoff"] == "0.6" and late_text["num_inference_steps"] == "3"
    first = np.asarray(Image.open(out / "figure1" / "head-seed10.png")).astype(int)
    alone = np.asarray(Image.open(again / "figure1" / "head-seed10.png")).astype(int)
    assert np.abs(first - alone).max() <= 1  # batch size may change float rounding, not images
    second = np.asarray(Image.open(out / "figure1" / "head-seed11.png")).astype(int)
    assert np.abs(first - second).mean() > 5  # different seeds, different images
    assert Image.open(out / "figure1.png").size[0] >= 2 * 32
    missing = runner.invoke(app, ["figure1", "--model", str(tmp_path / "nope"), "--out", str(out)])
    assert missing.exit_code != 0 and "no model folder" in missing.output
