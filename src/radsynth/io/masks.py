"""Structure masks on disk: boolean masks bit-packed into one `.npz` per image (no pickle).

The layout of `radsynth phantoms` and `radsynth dataset build`: one packed array per mask name
plus `_shape`, the (rows, columns) the masks unpack to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_masks(
    path: Path, masks: dict[str, np.ndarray], shape: tuple[int, ...] | None = None
) -> Path:
    """Write `masks` (name -> boolean array, all of one shape) to `path`, atomically. An image
    with no masks (an ultrasound shows no named structure) still gets a file: give `shape`."""
    if shape is None:
        if not masks:
            raise ValueError(f"no masks to write to {path}, and no shape to record")
        shape = next(iter(masks.values())).shape
    arrays: dict[str, np.ndarray] = {
        name: np.packbits(np.asarray(mask, dtype=bool), axis=None) for name, mask in masks.items()
    }
    arrays["_shape"] = np.array(shape)
    tmp = path.with_name(path.name + ".tmp.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(tmp, allow_pickle=False, **arrays)
    tmp.replace(path)
    return path


def load_masks(path: str | Path) -> dict[str, np.ndarray]:
    """Read a masks file written by `write_masks` back into boolean arrays."""
    with np.load(path, allow_pickle=False) as data:
        shape = tuple(int(v) for v in data["_shape"])
        count = shape[0] * shape[1]
        return {
            k: np.unpackbits(data[k], count=count).astype(bool).reshape(shape)
            for k in data.files
            if k != "_shape"
        }
