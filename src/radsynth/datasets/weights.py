"""Naming a model folder and hashing its weights, for the provenance of what it generates."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20  # bytes read at a time while hashing


def weights_sha256(folder: str | Path) -> str:
    """SHA-256 (hex) over every `*.safetensors` file of a model folder.

    The digest covers each file's path relative to the folder and its SHA-256, in sorted path
    order, so it changes when any weight changes and does not depend on where the folder is.
    """
    folder = Path(folder)
    files = sorted(folder.rglob("*.safetensors"))
    if not files:
        raise ValueError(f"{folder} holds no *.safetensors weights; give a complete model folder")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(file_sha256(path).encode() + b"\n")
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of one file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_name(folder: str | Path) -> str:
    """The name radsynth records for a model: its folder's name ("builtin", "knee-v1")."""
    return Path(folder).resolve().name
