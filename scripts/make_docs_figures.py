"""Write the figures under docs/ that the README shows (besides the contact sheet).

docs/answer_key.png: a phantom knee radiograph and, at the same pixel spacing, the same
body's projection grown to the whole leg and trunk: the true continuation outside the knee's
borders, which outpainting is scored against. The knee's field is outlined.

Run: .venv/bin/python scripts/make_docs_figures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from radsynth.phantoms.body import draw_subject, make_body
from radsynth.phantoms.xray import region_centre, region_settings, render_window

DOCS = Path(__file__).resolve().parent.parent / "docs"


def answer_key(path: Path, seed: int = 3, size: int = 256) -> None:
    rng = np.random.default_rng(seed)
    body = make_body(draw_subject(rng, sex="female"), rng)
    settings = region_settings(body, "knee", "ap", "left", size, noise_seed=seed)
    centre = region_centre(body, "knee", "left")
    knee = render_window(body, settings, centre, (size, size))
    # The same detector plane, 5 knee-heights tall and 2 wide, centred higher on the body.
    grown_centre = centre + np.array(
        [-0.5 * size * settings.spacing_mm, 0.0, 1.5 * size * settings.spacing_mm]
    )
    grown = render_window(body, settings, grown_centre, (5 * size, 2 * size))
    offset = np.array(knee.meta["lattice_origin"]) - np.array(grown.meta["lattice_origin"])
    r0, c0 = int(offset[0]), int(offset[1])
    crop = grown.image[r0 : r0 + size, c0 : c0 + size]
    assert np.allclose(crop, knee.image, atol=1e-6), "a regional image is a crop of the plane"
    canvas = Image.new("L", (size + 2 * size + 24, 5 * size), 20)
    canvas.paste(Image.fromarray(knee.to_uint8()), (0, 2 * size))
    canvas.paste(Image.fromarray(grown.to_uint8()), (size + 24, 0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(
        (size + 24 + c0, r0, size + 24 + c0 + size - 1, r0 + size - 1), outline=255, width=3
    )
    canvas.save(path)


if __name__ == "__main__":
    DOCS.mkdir(exist_ok=True)
    answer_key(DOCS / "answer_key.png")
    print(f"wrote {DOCS / 'answer_key.png'}")
