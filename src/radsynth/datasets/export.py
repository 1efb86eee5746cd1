"""The merged manifest of a data set: `manifest.jsonl` (what `radsynth train` reads),
`manifest.csv` always and `manifest.parquet` when pyarrow is installed.

All three are written from one stream of records, each to a temporary name and renamed into
place; `manifest.jsonl` is renamed last, so its presence means the data set is complete.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from radsynth.io.manifest import MANIFEST_NAME

CSV_NAME = "manifest.csv"
PARQUET_NAME = "manifest.parquet"
BATCH_ROWS = 512  # rows per Parquet row group (and rows held in memory while merging)
# Table columns: (name, Parquet type); labels and findings as JSON text, paths relative.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("index", "int64"),
    ("split", "string"),
    ("source", "string"),
    ("prompt_index", "int64"),
    ("prompt", "string"),
    ("caption", "string"),
    ("seed", "int64"),
    ("modality", "string"),
    ("region", "string"),
    ("view", "string"),
    ("laterality", "string"),
    ("sex", "string"),
    ("age", "int64"),
    ("sequence", "string"),
    ("window", "string"),
    ("findings", "string"),
    ("labels", "string"),
    ("model", "string"),
    ("model_sha256", "string"),
    ("steps", "int64"),
    ("guidance", "float64"),
    ("pixel_spacing_mm", "string"),
    ("image", "string"),
    ("image_8bit", "string"),
    ("dicom", "string"),
    ("masks", "string"),
)
LABEL_COLUMNS = ("modality", "region", "view", "laterality", "sex", "age", "sequence", "window")


def table_row(record: dict[str, Any]) -> dict[str, Any]:
    """One manifest record as a flat table row (None where a value is unknown)."""
    labels = record["labels"]
    row = {name: record.get(name) for name, _ in COLUMNS}
    row.update({name: labels.get(name) for name in LABEL_COLUMNS})
    row["findings"] = json.dumps(labels.get("findings", []), sort_keys=True)
    row["labels"] = json.dumps(labels, sort_keys=True)
    spacing = record.get("pixel_spacing_mm")
    row["pixel_spacing_mm"] = json.dumps(spacing) if spacing is not None else None
    return row


def parquet_available() -> bool:
    """Whether pyarrow (and so Parquet output) is installed."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


class ManifestExport:
    """Writes the manifest files from records given one at a time, then commits them."""

    def __init__(self, out: Path, parquet: bool | None = None) -> None:
        self.out = out
        self.parquet = parquet_available() if parquet is None else parquet
        self._jsonl = (out / (MANIFEST_NAME + ".tmp")).open("w", encoding="utf-8")
        self._csv_file = (out / (CSV_NAME + ".tmp")).open("w", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._csv_file, [name for name, _ in COLUMNS])
        self._csv.writeheader()
        self._rows: list[dict[str, Any]] = []
        self._parquet: Any = None

    def add(self, record: dict[str, Any]) -> None:
        self._jsonl.write(json.dumps(record, sort_keys=True) + "\n")
        row = table_row(record)
        self._csv.writerow({k: "" if v is None else v for k, v in row.items()})
        if self.parquet:
            self._rows.append(row)
            if len(self._rows) >= BATCH_ROWS:
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in COLUMNS])
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(str(self.out / (PARQUET_NAME + ".tmp")), schema)
        columns = {name: [row[name] for row in self._rows] for name, _ in COLUMNS}
        self._parquet.write_table(pa.table(columns, schema=schema))
        self._rows = []

    def commit(self) -> list[Path]:
        """Close the files and rename them into place, manifest.jsonl last; return them."""
        names = [CSV_NAME]
        if self.parquet:
            self._flush_parquet()
            self._parquet.close()
            names.insert(0, PARQUET_NAME)
        for handle in (self._csv_file, self._jsonl):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        paths = []
        for name in [*names, MANIFEST_NAME]:
            os.replace(self.out / (name + ".tmp"), self.out / name)
            paths.append(self.out / name)
        return paths


def export_manifest(out: Path, records: Iterable[dict[str, Any]]) -> list[Path]:
    """Write the manifest files of `out` from `records` (in order); return their paths."""
    export = ManifestExport(out)
    for record in records:
        export.add(record)
    return export.commit()
