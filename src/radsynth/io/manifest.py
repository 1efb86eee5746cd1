"""The manifest: one JSON record per image, in a JSON Lines file (`manifest.jsonl`).

Every radsynth folder of images (phantom cases, ingested real data, synthetic data sets) carries
one. Paths in records are relative to the manifest's folder. Required keys: `id`, `image`,
`caption`; usual others: `image_8bit`, `masks`, `labels`, `seed`, `pixel_spacing_mm`.

Records are appended one line at a time and flushed to disk, after the files they name have been
written, so an interrupted run leaves a manifest that names only complete files; at most the last
line can be cut short, and `ManifestWriter` drops such a line when it resumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

MANIFEST_NAME = "manifest.jsonl"
REQUIRED_KEYS = ("id", "image", "caption")


def _check_record(record: Mapping[str, Any], where: str) -> None:
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise ValueError(f"{where}: manifest record lacks {', '.join(missing)}")


def iter_manifest(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a manifest file (or of `DIR/manifest.jsonl` when given a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(f"no manifest at {path}; a data folder needs a {MANIFEST_NAME}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON record ({error.msg})") from None
            _check_record(record, f"{path}:{number}")
            yield record


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Return all records of a manifest file or folder."""
    return list(iter_manifest(path))


class ManifestWriter:
    """Append records to `DIR/manifest.jsonl`, resuming an earlier, interrupted file.

    On opening, a cut-short last line is removed and the ids already present are kept in
    `done_ids`, so a resumed run can skip them.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / MANIFEST_NAME
        self.done_ids: set[str] = set()
        self._handle: TextIO | None = None
        if self.path.exists():
            self._drop_partial_last_line()
            self.done_ids = {record["id"] for record in iter_manifest(self.path)}

    def _drop_partial_last_line(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as handle:
                handle.truncate(keep)

    def __enter__(self) -> ManifestWriter:
        self._handle = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record and force it to disk."""
        _check_record(record, str(self.path))
        if record["id"] in self.done_ids:
            raise ValueError(f"record {record['id']!r} is already in {self.path}")
        if self._handle is None:
            raise ValueError("ManifestWriter.append needs an open writer: use it in a with block")
        self._handle.write(json.dumps(record, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done_ids.add(record["id"])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def generated_record(
    file: str, prompt: str, seed: int, operation: str, model: str
) -> dict[str, Any]:
    """The record of an image a model made (`generate`, `inpaint`, ..., Figure 1): its file,
    the prompt as its caption and as the key that groups a prompt's images, the seed, the
    operation and the model."""
    return {
        "id": Path(file).stem,
        "image": file,
        "caption": prompt,
        "prompt": prompt,
        "seed": seed,
        "operation": operation,
        "model": model,
    }


def write_manifest(folder: str | Path, records: Sequence[Mapping[str, Any]]) -> Path:
    """Write `folder/manifest.jsonl` whole, atomically (a temporary file renamed into place)."""
    for record in records:
        _check_record(record, str(folder))
    path = Path(folder) / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), "utf-8")
    os.replace(tmp, path)
    return path
