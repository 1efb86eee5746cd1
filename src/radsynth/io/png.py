"""Writing PNG images (8 or 16 bit grayscale) with text chunks, atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo


def write_png(path: str | Path, pixels: np.ndarray, text: Mapping[str, str] | None = None) -> Path:
    """Write a 2-D uint8 or uint16 array as a grayscale PNG (or an (H, W, 3) uint8 array as an
    RGB one: figures with coloured marks), with `text` as tEXt chunks.

    The file is written to a temporary name and renamed into place, so a reader (or a resumed
    run after a crash) never sees a half-written PNG.
    """
    path = Path(path)
    rgb = pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8
    if pixels.ndim != 2 and not rgb:
        raise ValueError(
            f"write_png takes a 2-D grayscale array or (H, W, 3) uint8 RGB, got shape "
            f"{pixels.shape} ({pixels.dtype})"
        )
    if rgb:
        image = Image.fromarray(np.ascontiguousarray(pixels), mode="RGB")
    elif pixels.dtype == np.uint8:
        image = Image.fromarray(pixels)
    elif pixels.dtype == np.uint16:
        image = Image.fromarray(pixels.astype("<u2"))  # Pillow stores it as mode I;16
    else:
        raise ValueError(f"write_png takes uint8 or uint16 pixels, got {pixels.dtype}")
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)
    return path


def read_png_text(path: str | Path) -> dict[str, str]:
    """Return the text chunks of a PNG file."""
    with Image.open(path) as image:
        return {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
