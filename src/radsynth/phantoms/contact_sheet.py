"""One labelled sheet showing every region and view, both sexes, each modality and each finding."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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


def make_contact_sheet(
    path: str | Path,
    *,
    tile_px: int = 192,
    seed: int = 0,
    columns: int = 9,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render every tile and save one labelled PNG sheet at `path`."""
    tiles = sheet_tiles()
    label_h = max(14, tile_px // 11)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("L", (columns * tile_px, rows * (tile_px + label_h)), 24)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(9, label_h - 4))
    for index, (title, kwargs) in enumerate(tiles):
        case: Case = make_case(seed + index, size=tile_px, **kwargs)
        x, y = (index % columns) * tile_px, (index // columns) * (tile_px + label_h)
        sheet.paste(Image.fromarray(case.image.to_uint8()), (x, y))
        draw.text((x + 3, y + tile_px + 1), title, fill=235, font=font)
        if progress is not None:
            progress(index + 1, len(tiles))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
