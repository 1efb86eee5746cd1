"""Masks files: bit-packed round trip, odd shapes, no leftovers, an image with no masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radsynth.io.masks import load_masks, write_masks


def test_masks_round_trip_bit_exact_on_an_odd_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    masks = {"femur": rng.random((37, 29)) < 0.3, "tibia": np.zeros((37, 29), dtype=bool)}
    path = write_masks(tmp_path / "sub" / "case.npz", masks)
    back = load_masks(path)
    assert set(back) == {"femur", "tibia"}
    assert all(np.array_equal(back[k], masks[k]) and back[k].dtype == bool for k in masks)
    assert sorted(p.name for p in path.parent.iterdir()) == ["case.npz"]  # no temporary file


def test_an_image_without_masks_needs_its_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no masks.*no shape"):
        write_masks(tmp_path / "empty.npz", {})
    assert load_masks(write_masks(tmp_path / "empty.npz", {}, (16, 16))) == {}
