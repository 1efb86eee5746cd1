"""Off-centre windows of a body's detector plane: what lies beyond a regional radiograph's border.

A regional radiograph is a window onto one lattice-anchored detector plane (`xray.render_window`).
`make_body_crop` renders another window of the same plane, at the same pixel spacing and
exposure as a regional image, but shifted by up to about a field width along and across the
body. A model trained on such crops learns how anatomy continues past a border, which is what
outpainting asks of it ("grow a knee to a full body").

With `zoom` above 1 the window is `zoom` regional fields wide at the same size in pixels: a
regional radiograph drawn at 1/zoom of the model's size (the probe's knee, given at half the
model's size and grown to a whole body) sees its surroundings at that coarser spacing.

The caption names modality, view and patient but no region: a crop is not a regional study, and a
prompt that names a region should still mean a radiograph centred on it.
"""

from __future__ import annotations

import numpy as np

from radsynth.phantoms import xray
from radsynth.phantoms.body import draw_subject, make_body
from radsynth.phantoms.cases import Case
from radsynth.vocabulary import PAIRED_REGIONS, XRAY_REGIONS, Labels, make_caption

# Regions whose field sets spacing and exposure of a crop (the full-body region has its own,
# much coarser spacing, and is not a crop source).
CROP_REGIONS: tuple[str, ...] = tuple(r for r in XRAY_REGIONS if r != "full_body")
# How far a crop's centre may move from the region's centre, in regional field widths.
SHIFT_ALONG = 1.25  # head-foot axis
SHIFT_ACROSS = 0.6  # left-right (AP) or front-back (lateral)


def make_body_crop(
    seed: int,
    *,
    region: str | None = None,
    view: str | None = None,
    sex: str | None = None,
    age: int | None = None,
    size: int = 256,
    caption_style: str | None = None,
    zoom: float = 1.0,
) -> Case:
    """A `size` x `size` X-ray window of a random body, at the spacing and exposure of a
    regional radiograph of `region` `size / zoom` px wide, shifted off the region's centre by up
    to `SHIFT_ALONG` regional field widths along the body and `SHIFT_ACROSS` across it (the
    same distances at any zoom). Deterministic in `seed`."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if not 1.0 <= zoom <= 8.0:
        raise ValueError(f"zoom is the window's width in regional fields, 1 to 8, not {zoom}")
    if region is not None and region not in CROP_REGIONS:
        raise ValueError(f"crops are taken around one of {', '.join(CROP_REGIONS)}, not {region!r}")
    if view is not None and view not in ("ap", "lateral"):
        raise ValueError(f"a body crop is an AP or a lateral view, not {view!r}")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    choose, subject_rng, render_rng, caption_rng = streams
    region = region or str(choose.choice(CROP_REGIONS))
    view = view or str(choose.choice(["ap", "ap", "lateral"]))
    laterality = str(choose.choice(["left", "right"])) if region in PAIRED_REGIONS else None
    along, across = choose.uniform(-1.0, 1.0, size=2)
    subject = draw_subject(subject_rng, sex=sex, age=age)
    body = make_body(subject, subject_rng)
    field_px = max(8, round(size / zoom))
    settings = xray.region_settings(
        body, region, view, laterality, field_px, int(render_rng.integers(2**31))
    )
    field = size * settings.spacing_mm  # the window's width
    regional_field = field / zoom
    shift = np.zeros(3)
    shift[2] = along * SHIFT_ALONG * regional_field
    shift[0 if view == "ap" else 1] = across * SHIFT_ACROSS * regional_field
    centre = xray.region_centre(body, region, laterality) + shift
    image = xray.render_window(body, settings, centre, (size, size))
    image.meta.update(
        {
            "crop_of": region,
            "view": view,
            "laterality": laterality,
            "shift_mm": [round(float(v), 2) for v in shift],
            "window": [round(v, 5) for v in settings.window],
            "field_mm": round(field, 2),
            "zoom": zoom,
        }
    )
    labels = Labels(modality="xray", view=view, sex=subject.sex, age=subject.age)
    caption = make_caption(labels, caption_rng, caption_style)
    return Case(seed, labels, caption, image, subject)
