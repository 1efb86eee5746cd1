"""The contact sheet: one labelled tile per region, view, modality and finding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radsynth.phantoms.cases import make_case
from radsynth.phantoms.contact_sheet import make_contact_sheet, sheet_tiles


def test_the_sheet_has_a_labelled_tile_for_each_entry(tmp_path: Path) -> None:
    tiles = sheet_tiles()
    done: list[int] = []
    path = make_contact_sheet(
        tmp_path / "sheet.png", tile_px=48, columns=10, progress=lambda i, n: done.append(n)
    )
    rows = -(-len(tiles) // 10)
    with Image.open(path) as sheet:
        assert sheet.size == (10 * 48, rows * (48 + 14))
        pixels = np.asarray(sheet)
    assert done == [len(tiles)] * len(tiles)
    # Every tile is drawn and labelled: neither an entry's image slot nor the label strip under
    # it is left at the background, and the image slots after the last entry are.
    for index in range(rows * 10):
        x, y = (index % 10) * 48, (index // 10) * (48 + 14)
        image, label = pixels[y : y + 48, x : x + 48], pixels[y + 48 : y + 62, x : x + 48]
        assert (min(image.std(), label.std()) > 0) if index < len(tiles) else image.std() == 0, (
            index
        )
        # A title fits its own slot: the slot's right margin is background (at 48 px the long
        # titles are written smaller or cut, not into the next slot).
        assert (label[:, -2:] == 24).all(), (index, tiles[index][0] if index < len(tiles) else "")


FINDING_TILES = [i for i, (_, kwargs) in enumerate(sheet_tiles()) if kwargs.get("findings_")]


@pytest.mark.parametrize("index", FINDING_TILES)
def test_every_finding_tile_shows_its_finding(index: int) -> None:
    # The sheet draws tile i with seed i (its default seed 0), here at its default 192 px.
    title, kwargs = sheet_tiles()[index]
    case = make_case(index, size=192, **kwargs)
    assert case.labels.findings == kwargs["findings_"], title
    assert case.image.meta["finding_structures"], title
    assert "findings_not_shown" not in case.image.meta, title


def test_the_sheet_shows_fractures_of_the_arm_knee_hip_and_ankle() -> None:
    sites = {
        f.site
        for _, kwargs in sheet_tiles()
        for f in kwargs.get("findings_", ())
        if f.kind == "fracture"
    }
    assert {"distal_radius", "patella", "femoral_neck", "distal_fibula"} <= sites


def test_a_labelled_sheet_refuses_no_tiles_and_tiles_of_another_size() -> None:
    from radsynth.phantoms.contact_sheet import labelled_sheet

    with pytest.raises(ValueError, match="at least one tile"):
        labelled_sheet([], 32, 4)
    with pytest.raises(ValueError, match="not 32 x 32 px"):
        labelled_sheet(
            [(np.zeros((32, 32), np.uint8), "a"), (np.zeros((16, 32), np.uint8), "b")], 32, 4
        )
    one_row = labelled_sheet([(np.zeros((32, 32, 3), np.uint8), "a")] * 2, 32, 4)
    assert one_row.mode == "RGB" and one_row.size == (64, 32 + 14)
