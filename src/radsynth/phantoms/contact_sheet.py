"""One labelled sheet showing every region and view, both sexes, each modality and each finding."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from radsynth.phantoms.cases import Case, make_case
from radsynth.vocabulary import Finding
from radsynth.vocabulary.labels import XRAY_REGIONS

# (title, make_case keyword arguments); the seed of each tile is the sheet's seed plus its index.
_FINDING_TILES: tuple[tuple[str, dict], ...] = (
    (
        "displaced patellar fracture",
        {
            "modality": "xray",
            "region": "knee",
            "view": "lateral",
            "findings_": (Finding("fracture", "patella", ("displaced",)),),
        },
    ),
    (
        "distal radius fracture",
        {
            "modality": "xray",
            "region": "wrist",
            "view": "ap",
            "findings_": (Finding("fracture", "distal_radius", ("angulated",)),),
        },
    ),
    (
        "femoral neck fracture",
        {
            "modality": "xray",
            "region": "pelvis",
            "view": "ap",
            "findings_": (Finding("fracture", "femoral_neck", ("displaced",)),),
        },
    ),
    (
        "lytic tibial tumour",
        {
            "modality": "xray",
            "region": "knee",
            "view": "ap",
            "findings_": (Finding("bone_tumour", "tibia", ("lytic",)),),
        },
    ),
    (
        "lung mass",
        {
            "modality": "xray",
            "region": "chest",
            "view": "pa",
            "findings_": (Finding("lung_nodule", "right_upper_lobe", ("mass",)),),
        },
    ),
    (
        "consolidation",
        {
            "modality": "xray",
            "region": "chest",
            "view": "pa",
            "findings_": (Finding("consolidation", "left_lower_lobe"),),
        },
    ),
    (
        "pleural effusion",
        {
            "modality": "xray",
            "region": "chest",
            "view": "pa",
            "findings_": (Finding("pleural_effusion", "right_hemithorax"),),
        },
    ),
    (
        "intracranial haemorrhage",
        {
            "modality": "ct",
            "region": "head",
            "findings_": (Finding("intracranial_haemorrhage", "left_hemisphere"),),
        },
    ),
    (
        "knee joint effusion",
        {
            "modality": "xray",
            "region": "knee",
            "view": "lateral",
            "findings_": (Finding("joint_effusion", "knee"),),
        },
    ),
    (
        "hip prosthesis",
        {
            "modality": "xray",
            "region": "pelvis",
            "view": "ap",
            "findings_": (Finding("hip_prosthesis", "left_hip"),),
        },
    ),
    (
        "knee prosthesis",
        {
            "modality": "xray",
            "region": "knee",
            "view": "ap",
            "findings_": (Finding("knee_prosthesis", "knee"),),
        },
    ),
    (
        "plate and screws",
        {
            "modality": "xray",
            "region": "ankle",
            "view": "ap",
            "findings_": (Finding("plate_and_screws", "fibula"),),
        },
    ),
    (
        "pacemaker",
        {"modality": "xray", "region": "chest", "view": "pa", "findings_": (Finding("pacemaker"),)},
    ),
    (
        "ECG leads",
        {"modality": "xray", "region": "chest", "view": "ap", "findings_": (Finding("ecg_leads"),)},
    ),
    (
        "ring",
        {
            "modality": "xray",
            "region": "hand",
            "view": "pa",
            "findings_": (Finding("jewellery", None, ("ring",)),),
        },
    ),
    (
        "distal fibular fracture",
        {
            "modality": "xray",
            "region": "ankle",
            "view": "ap",
            "findings_": (Finding("fracture", "distal_fibula", ("displaced",)),),
        },
    ),
)


def sheet_tiles() -> list[tuple[str, dict]]:
    """The sheet's tiles: x-ray regions in frontal and lateral views alternating sex, CT, MRI,
    ultrasound, then one tile per finding."""
    tiles: list[tuple[str, dict]] = []
    for i, region in enumerate(XRAY_REGIONS):
        sex = "female" if i % 2 == 0 else "male"
        frontal = "pa" if region in ("chest", "hand") else "ap"
        for view in (frontal, "lateral"):
            other = "male" if sex == "female" else "female"
            tile_sex = sex if view != "lateral" else other
            view_name = view.upper() if view != "lateral" else "lat"
            tiles.append(
                (
                    f"XR {region.replace('_', ' ')} {view_name} {tile_sex[0].upper()}",
                    {
                        "modality": "xray",
                        "region": region,
                        "view": view,
                        "sex": tile_sex,
                        "findings_": (),
                    },
                )
            )
    for region in ("head", "chest", "abdomen", "pelvis", "knee"):
        tiles.append((f"CT {region}", {"modality": "ct", "region": region, "findings_": ()}))
    for region, view, sequence in (
        ("head", "axial", "t2"),
        ("head", "sagittal", "t1"),
        ("knee", "sagittal", "pd"),
        ("spine", "sagittal", "t2"),
        ("abdomen", "axial", "t1"),
    ):
        tiles.append(
            (
                f"MR {region} {view} {sequence.upper()}",
                {
                    "modality": "mri",
                    "region": region,
                    "view": view,
                    "sequence": sequence,
                    "findings_": (),
                },
            )
        )
    for organ in ("liver", "kidney", "gallbladder", "thyroid", "fetus"):
        tiles.append((f"US {organ}", {"modality": "us", "region": organ, "findings_": ()}))
    tiles += list(_FINDING_TILES)
    return tiles


TITLE_MARGIN = 3  # pixels of background left and right of a tile's title
SMALLEST_TITLE_FONT = 7


def _fitted_title(
    draw: ImageDraw.ImageDraw, title: str, size: int, width: int
) -> tuple[str, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """The title in the largest font of at most `size` px that fits `width`; below
    SMALLEST_TITLE_FONT it is cut, ending in "..." (small tiles must not write into the next)."""
    for font_size in range(size, SMALLEST_TITLE_FONT - 1, -1):
        font = ImageFont.load_default(size=font_size)
        if draw.textlength(title, font=font) <= width:
            return title, font
    while title and draw.textlength(title + "...", font=font) > width:
        title = title[:-1]
    return title.rstrip() + "...", font


def make_contact_sheet(
    path: str | Path,
    *,
    tile_px: int = 192,
    seed: int = 0,
    columns: int = 9,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render every tile and save one labelled PNG sheet at `path`."""
    drawn: list[tuple[np.ndarray, str]] = []
    tiles = sheet_tiles()
    for index, (title, kwargs) in enumerate(tiles):
        case: Case = make_case(seed + index, size=tile_px, **kwargs)
        drawn.append((case.image.to_uint8(), title))
        if progress is not None:
            progress(index + 1, len(tiles))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labelled_sheet(drawn, tile_px, columns).save(path)
    return path


def labelled_sheet(
    tiles: Sequence[tuple[np.ndarray, str]], tile_px: int, columns: int
) -> Image.Image:
    """One sheet of `tiles` ((tile_px, tile_px) uint8 gray or (tile_px, tile_px, 3) RGB images,
    each with its title), `columns` to a row, each title fitted into the strip under its tile;
    RGB when any tile is."""
    if not tiles:
        raise ValueError("a sheet needs at least one tile")
    colour = any(image.ndim == 3 for image, _ in tiles)
    label_h = max(14, tile_px // 11)
    rows = (len(tiles) + columns - 1) // columns
    width = min(columns, len(tiles)) * tile_px if rows == 1 else columns * tile_px
    background = (24, 24, 24) if colour else 24
    sheet = Image.new("RGB" if colour else "L", (width, rows * (tile_px + label_h)), background)
    draw = ImageDraw.Draw(sheet)
    text_fill = (235, 235, 235) if colour else 235
    for index, (image, title) in enumerate(tiles):
        if image.shape[:2] != (tile_px, tile_px):
            raise ValueError(f"tile {index} is {image.shape[:2]}, not {tile_px} x {tile_px} px")
        x, y = (index % columns) * tile_px, (index // columns) * (tile_px + label_h)
        picture = Image.fromarray(image)
        sheet.paste(picture.convert("RGB") if colour else picture, (x, y))
        text, font = _fitted_title(draw, title, max(9, label_h - 4), tile_px - 2 * TITLE_MARGIN)
        draw.text((x + TITLE_MARGIN, y + tile_px + 1), text, fill=text_fill, font=font)
    return sheet
