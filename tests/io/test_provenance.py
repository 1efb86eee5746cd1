"""Provenance and the synthetic PNG text chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import radsynth
from radsynth.io.png import read_png_text
from radsynth.io.provenance import (
    Provenance,
    format_spacing_text,
    parse_spacing_text,
    png_text_chunks,
)
from radsynth.io.reader import read_image


def test_png_chunks_mark_synthetic_and_round_trip(tmp_path: Path) -> None:
    provenance = Provenance(
        "radsynth-ct-small", "ab" * 32, "axial CT of the head, brain window — Blutung", 3, 20, 3.0
    )
    chunks = png_text_chunks(provenance, pixel_spacing_mm=(0.5, 0.5))
    assert chunks["Software"] == "radsynth" and chunks["Synthetic"] == "YES"
    assert chunks["prompt"] == provenance.prompt and chunks["seed"] == "3"
    assert chunks["model"] == "radsynth-ct-small"
    assert chunks["radsynth_version"] == radsynth.__version__
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    path = tmp_path / "synthetic.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(path, pnginfo=info)
    text = read_png_text(path)
    assert Provenance.from_png_text(text) == provenance
    assert read_image(path).pixel_spacing_mm == (0.5, 0.5)


def test_the_guidance_cutoff_is_recorded_with_the_guidance() -> None:
    provenance = Provenance(
        "m", prompt="knee", num_inference_steps=6, guidance_scale=3.0, guidance_cutoff=0.5
    )
    chunks = png_text_chunks(provenance)
    assert chunks["guidance_cutoff"] == "0.5" and chunks["guidance_scale"] == "3.0"
    assert "6 steps, guidance 3 at t >= 0.5 T" in chunks["Comment"]
    assert Provenance.from_png_text(chunks) == provenance
    # Guidance at every step (cutoff 0) reads as plain guidance; a record written before the
    # cutoff was recorded reads back with none.
    assert "guidance 3, " in Provenance("m", guidance_scale=3.0, guidance_cutoff=0.0).summary()
    older = png_text_chunks(Provenance("m", prompt="knee", guidance_scale=3.0))
    assert "guidance_cutoff" not in older
    assert Provenance.from_png_text(older).guidance_cutoff is None


def test_optional_fields_are_left_out() -> None:
    chunks = png_text_chunks(Provenance("m", prompt="knee"))
    assert "seed" not in chunks and "weights_sha256" not in chunks
    assert "guidance_cutoff" not in chunks
    assert "pixel_spacing_mm" not in chunks


def test_bad_provenance_is_refused() -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        Provenance("m", weights_sha256="abc")
    with pytest.raises(ValueError, match="model_name"):
        Provenance(" ")
    with pytest.raises(ValueError, match="no radsynth provenance"):
        Provenance.from_png_text({"Software": "GIMP"})


def test_spacing_text() -> None:
    assert parse_spacing_text(format_spacing_text((0.143, 0.2))) == (0.143, 0.2)
    assert parse_spacing_text("0.1\\0.1") == (0.1, 0.1)
    assert parse_spacing_text("0 0") is None and parse_spacing_text("abc") is None


def test_write_png_writes_grayscale_and_rgb_figures_and_refuses_other_shapes(
    tmp_path: Path,
) -> None:
    from radsynth.io.png import write_png

    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[2, 3] = (255, 230, 0)
    for name, pixels, mode in (("gray.png", gray, "L"), ("rgb.png", rgb, "RGB")):
        path = write_png(tmp_path / name, pixels, {"Synthetic": "YES"})
        with Image.open(path) as image:
            assert image.mode == mode
            np.testing.assert_array_equal(np.asarray(image), pixels)
        assert read_png_text(path) == {"Synthetic": "YES"}
    for bad in (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros(8)):
        with pytest.raises(ValueError, match="2-D grayscale array or"):
            write_png(tmp_path / "bad.png", bad)
