"""Per-process journals of finished records, and their merge into one ordered stream.

Process `rank` appends each finished record to `journals/rank-NNN/manifest.jsonl` (the
manifest format of `radsynth.io.manifest`): one flushed and fsynced line per record, written
only after the record's files are in place. A process killed mid-line leaves a cut-short last
line, which readers here ignore and `drop_partial_lines` removes before a resumed build appends
again. Nothing here holds more than a few bytes per record, so memory stays flat as N grows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from radsynth.io.manifest import MANIFEST_NAME

JOURNAL_DIR = "journals"


def journal_folder(out: Path, rank: int) -> Path:
    """The folder of process `rank`'s journal."""
    return out / JOURNAL_DIR / f"rank-{rank:03d}"


class JournalWriter:
    """Appends records to process `rank`'s journal; use it in a `with` block."""

    def __init__(self, out: Path, rank: int) -> None:
        self.path = journal_folder(out, rank) / MANIFEST_NAME
        self._handle: TextIO | None = None

    def __enter__(self) -> JournalWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line and force it to disk (call after its files exist)."""
        if self._handle is None:
            raise ValueError("JournalWriter.append needs an open writer: use it in a with block")
        self._handle.write(json.dumps(record, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())


def journal_files(out: Path) -> list[Path]:
    """Every journal under `out`, of this run's processes and of earlier runs' (sorted)."""
    return sorted((out / JOURNAL_DIR).glob(f"rank-*/{MANIFEST_NAME}"))


def drop_partial_lines(out: Path) -> None:
    """Cut each journal back to its last complete line (what a killed writer leaves behind)."""
    for path in journal_files(out):
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)


def _complete_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line) of each complete line of a journal."""
    offset = 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return
            if line.strip():
                yield offset, line
            offset += len(line)


def done_mask(out: Path, total: int) -> np.ndarray:
    """Boolean array over the record indices: True where some journal holds the record."""
    done = np.zeros(total, dtype=bool)
    for path in journal_files(out):
        for _, line in _complete_lines(path):
            index = int(json.loads(line)["index"])
            if 0 <= index < total:
                done[index] = True
    return done


def count_done(out: Path) -> int:
    """How many records the journals hold (each record is journaled once)."""
    return sum(1 for path in journal_files(out) for _ in _complete_lines(path))


def merged_records(out: Path, total: int) -> Iterator[dict[str, Any]]:
    """Yield the journaled records in index order, each once; raise unless all `total` are there.

    Memory stays small for any N: only an index, a journal number and a byte offset per record
    (18 bytes) are held, and each record is read back from its journal when its turn comes.
    """
    paths = journal_files(out)
    where = np.full(total, -1, dtype=np.int64)  # byte offset of record i's line
    which = np.full(total, -1, dtype=np.int16)  # journal holding record i
    for number, path in enumerate(paths):
        for offset, line in _complete_lines(path):
            index = int(json.loads(line)["index"])
            if not 0 <= index < total:
                raise ValueError(f"{path} holds record {index}, outside 0..{total - 1}")
            where[index], which[index] = offset, number
    missing = np.flatnonzero(which < 0)
    if missing.size:
        raise ValueError(
            f"{missing.size} of {total} records are not built yet (first: index {missing[0]}); "
            "run the build again with --resume"
        )
    handles = [path.open("rb") for path in paths]
    try:
        for index in range(total):
            handle = handles[int(which[index])]
            handle.seek(int(where[index]))
            yield json.loads(handle.readline())
    finally:
        for handle in handles:
            handle.close()


class JournalCounter:
    """Counts journaled records of all processes incrementally (for the progress bar)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._offsets: dict[Path, int] = {}
        self._count = 0

    def count(self) -> int:
        """Records journaled so far; reads only what was appended since the last call."""
        for path in journal_files(self.out):
            start = self._offsets.get(path, 0)
            with path.open("rb") as handle:
                handle.seek(start)
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._count += complete.count(b"\n")
            self._offsets[path] = start + len(complete)
        return self._count
