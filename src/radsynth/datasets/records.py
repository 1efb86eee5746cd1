"""One record of a data set: its id, seed and split, the files it writes, and its manifest row.

Every file is written to a temporary name and renamed into place (`os.replace`), so a file
either is complete or is not there; the record naming it is journaled only afterwards.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.datasets.sources import ImageSource, MadeImage
from radsynth.datasets.spec import DatasetSpec
from radsynth.io.dicom_writer import write_synthetic_dicom
from radsynth.io.masks import write_masks
from radsynth.io.png import write_png
from radsynth.io.provenance import png_text_chunks

IMAGE_DIR, DISPLAY_DIR, DICOM_DIR, MASK_DIR = "images", "display", "dicom", "masks"
OUTPUT_DIRS = (IMAGE_DIR, DISPLAY_DIR, DICOM_DIR, MASK_DIR)
# DICOM Modality codes of the vocabulary's modalities (radiographs as digital radiography).
DICOM_MODALITY = {"xray": "DX", "ct": "CT", "mri": "MR", "us": "US"}
# Body Part Examined (PS3.16 CID 4031 code meanings, upper case) of the vocabulary's regions.
DICOM_BODY_PART = {
    "head": "HEAD",
    "chest": "CHEST",
    "shoulder": "SHOULDER",
    "abdomen": "ABDOMEN",
    "pelvis": "PELVIS",
    "hand": "HAND",
    "knee": "KNEE",
    "ankle": "ANKLE",
    "wrist": "WRIST",
    "cervical_spine": "CSPINE",
    "thoracic_spine": "TSPINE",
    "lumbar_spine": "LSPINE",
    "spine": "SPINE",
    "full_body": "WHOLEBODY",
    "liver": "LIVER",
    "kidney": "KIDNEY",
    "gallbladder": "GALLBLADDER",
    "thyroid": "THYROID",
    "fetus": "UTERUS",
}


def record_id(index: int, total: int) -> str:
    """The id (and file stem) of record `index`: zero-padded so names sort in index order."""
    return f"img_{index:0{max(6, len(str(total - 1)))}d}"


def image_seed(spec: DatasetSpec, index: int) -> int:
    """The seed of record `index`: the SPEC's base seed plus the index, nothing else."""
    return spec.seed + index


def split_of(spec: DatasetSpec, seed: int) -> str:
    """The split of the image with `seed`: a hash of the seed placed on the SPEC's fractions."""
    digest = hashlib.sha256(f"radsynth-split:{seed}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    names = [name for name, fraction in spec.split if fraction > 0]
    for name, fraction in spec.split:
        edge += fraction
        if position < edge and fraction > 0:
            return name
    return names[-1]


def make_record(
    spec: DatasetSpec, source: ImageSource, out: Path, index: int, entry_index: int
) -> dict[str, Any]:
    """Make image `index`, write its files under `out`, and return its manifest record."""
    entry = spec.prompts[entry_index]
    seed = image_seed(spec, index)
    made = source.make(entry, seed)
    name = record_id(index, spec.total)
    files = write_files(spec, out, name, made)
    labels = made.labels.to_dict()
    return {
        "id": name,
        "index": index,
        "split": split_of(spec, seed),
        "source": spec.source,
        "prompt_index": entry_index,
        "prompt": entry.prompt,
        "caption": made.caption,
        "seed": seed,
        "labels": labels,
        "model": source.model,
        "model_sha256": source.model_sha256,
        "steps": source.steps,
        "guidance": source.guidance,
        "pixel_spacing_mm": list(made.pixel_spacing_mm) if made.pixel_spacing_mm else None,
        **files,
    }


def write_files(spec: DatasetSpec, out: Path, name: str, made: MadeImage) -> dict[str, Any]:
    """Write the formats the SPEC asks for (and masks, when the image has them); return the
    record's file fields, relative to `out`."""
    files: dict[str, Any] = {"image_8bit": None, "dicom": None, "masks": None}
    unit = np.clip(made.pixels, 0.0, 1.0)
    sixteen = np.round(unit * 65535.0).astype(np.uint16)
    if "png" in spec.formats:
        text = png_text_chunks(
            made.provenance, pixel_spacing_mm=made.pixel_spacing_mm, caption=made.caption
        )
        write_png(out / IMAGE_DIR / f"{name}.png", sixteen, text)
        eight = np.round(unit * 255.0).astype(np.uint8)
        write_png(out / DISPLAY_DIR / f"{name}.png", eight, text)
        files["image"] = f"{IMAGE_DIR}/{name}.png"
        files["image_8bit"] = f"{DISPLAY_DIR}/{name}.png"
    if "dicom" in spec.formats:
        labels = made.labels
        write_synthetic_dicom(
            out / DICOM_DIR / f"{name}.dcm",
            sixteen,
            provenance=made.provenance,
            pixel_spacing_mm=made.pixel_spacing_mm,
            modality=DICOM_MODALITY.get(labels.modality or "", "OT"),
            body_part=DICOM_BODY_PART.get(labels.region or ""),
            laterality={"left": "L", "right": "R"}.get(labels.laterality or ""),
        )
        files["dicom"] = f"{DICOM_DIR}/{name}.dcm"
        files.setdefault("image", files["dicom"])
    if made.masks:
        write_masks(out / MASK_DIR / f"{name}.npz", made.masks)
        files["masks"] = f"{MASK_DIR}/{name}.npz"
    return files


def record_line(record: dict[str, Any]) -> str:
    """The record as one canonical JSON line (sorted keys)."""
    return json.dumps(record, sort_keys=True)
