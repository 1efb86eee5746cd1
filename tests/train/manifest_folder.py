"""A tiny manifest folder of synthetic 8- and 16-bit grayscale PNGs, for training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from radsynth.io.manifest import ManifestWriter
from radsynth.io.png import write_png


def write_manifest_folder(folder: Path, count: int = 4) -> Path:
    """`count` 40 x 48 images (discs on a gradient), alternately 16- and 8-bit, captioned."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:40, 0:48].astype(np.float64)
    captions = ["AP radiograph of the knee", "PA chest radiograph", "axial CT of the head"]
    with ManifestWriter(folder) as manifest:
        for i in range(count):
            disc = ((y - 10 - 4 * i) ** 2 + (x - 24) ** 2 < 64).astype(np.float64)
            pixels = np.clip(0.1 + 0.6 * disc + x / 200.0, 0.0, 1.0)
            name = f"case-{i}.png"
            if i % 2:
                write_png(folder / name, np.round(pixels * 255).astype(np.uint8))
            else:
                # 16-bit through PIL directly: radsynth.io.png.write_png's uint16 path is refused
                # by Pillow 13 ("Invalid mode for data type").
                Image.fromarray(np.round(pixels * 65535).astype(np.uint16)).save(folder / name)
            manifest.append(
                {"id": f"case-{i}", "image": name, "caption": captions[i % 3], "labels": {}}
            )
    return folder
