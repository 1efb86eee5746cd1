"""Phantom radiographs with anatomy changed on purpose: the known answers of the anatomy checks.

A `Variant` removes named structures (a missing fibula, a missing carpal, no breasts),
duplicates them shifted (an extra digit, a sixth lumbar vertebra), fuses two bones into one
(carpal coalition) or moves the field of view so the region is cut off at the border. The
changed body is rendered by the same x-ray pipeline as every other phantom, so the image and
its masks agree: a removed bone has no mask, a copy has its own mask named `<name>_extra`, a
fused pair has one mask under the first bone's name.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

import numpy as np

from radsynth.phantoms import xray
from radsynth.phantoms.body import Body, draw_subject, make_body
from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.solids import Ellipsoid, Frustum, Structure, ellipsoid


@dataclass(frozen=True)
class Variant:
    """What to change. Names are structure names or shell patterns ("left_*_phalanx_5").

    remove: structures left out (removing "*_breast" also takes the breasts' bulge off the skin).
    duplicate: structures copied, moved by `shift_mm` (body coordinates, mm), named "<name>_extra".
    fuse: pairs (a, b) that become one bone named a: both bones and a bridge between them.
    field_shift: the field of view moved by these fractions of its size (rows, columns).
    """

    remove: tuple[str, ...] = ()
    duplicate: tuple[str, ...] = ()
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fuse: tuple[tuple[str, str], ...] = ()
    field_shift: tuple[float, float] = (0.0, 0.0)


def _matching(body: Body, patterns: tuple[str, ...]) -> list[str]:
    names = body.structure_names()
    found = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if unmatched:
        raise ValueError(
            f"the body has no structure matching {unmatched}; see body.structure_names()"
        )
    return found


def _centre(solid: Ellipsoid | Frustum) -> np.ndarray:
    low, high = solid.bounds()
    return (low + high) / 2.0


def structure_centre(body: Body, name: str) -> np.ndarray:
    """Centre of a structure's bounding box (mm, reference body coordinates)."""
    low, high = body.structure(name).bounds()
    return (low + high) / 2.0


def _without_breast_bulge(body: Structure, breasts: list[Structure]) -> Structure:
    # The skin envelope carries each breast as an extra solid centred on the breast organ.
    centres = [_centre(part) for breast in breasts for part in breast.parts]
    kept = [
        part
        for part in body.parts
        if not (isinstance(part, Ellipsoid) and any(np.allclose(part.center, c) for c in centres))
    ]
    return replace(body, parts=kept)


def _fused(first: Structure, second: Structure) -> Structure:
    a, b = (structure_centre_of(s) for s in (first, second))
    radius = 0.35 * float(np.linalg.norm(b - a))
    bridge = ellipsoid((a + b) / 2.0, (radius, radius, radius))
    return replace(
        first,
        parts=[*first.parts, *second.parts, bridge],
        inner_parts=[*first.inner_parts, *second.inner_parts, bridge.shrunk(1.0)],
    )


def structure_centre_of(structure: Structure) -> np.ndarray:
    low, high = structure.bounds()
    return (low + high) / 2.0


def apply_variant(body: Body, variant: Variant) -> Body:
    """A copy of `body` with the variant's structures removed, duplicated or fused."""
    structures = list(body.structures)
    removed = set(_matching(body, variant.remove)) if variant.remove else set()
    breasts = [s for s in structures if s.name in removed and s.name.endswith("_breast")]
    if breasts:
        structures = [
            _without_breast_bulge(s, breasts) if s.name == "body" else s for s in structures
        ]
    for first, second in variant.fuse:
        fused = _fused(body.structure(first), body.structure(second))
        structures = [fused if s.name == first else s for s in structures]
        removed.add(second)
    structures = [s for s in structures if s.name not in removed]
    if variant.duplicate:
        shift = np.asarray(variant.shift_mm, dtype=float)
        for name in _matching(body, variant.duplicate):
            copy = body.structure(name).moved(np.eye(3), np.zeros(3), shift)
            structures.append(replace(copy, name=f"{name}_extra"))
    return body.with_structures(structures)


def render_variant(
    seed: int,
    region: str,
    view: str,
    laterality: str | None,
    variant: Variant | None = None,
    *,
    sex: str | None = None,
    age: int | None = None,
    size: int = 256,
) -> PhantomImage:
    """A radiograph of subject `seed` (drawn as phantom cases draw subjects) with `variant`
    applied, rendered like `radsynth.phantoms.xray.render_xray` (same exposure, same noise)."""
    rng = np.random.default_rng([seed, 7])
    subject = draw_subject(rng, sex=sex, age=age)
    body = make_body(subject, rng)
    return render_body_variant(body, region, view, laterality, variant or Variant(), seed, size)


def render_body_variant(
    body: Body,
    region: str,
    view: str,
    laterality: str | None,
    variant: Variant,
    noise_seed: int = 0,
    size: int = 256,
) -> PhantomImage:
    """Render `body` changed by `variant` (see `render_variant`)."""
    changed = apply_variant(body, variant)
    settings = xray.region_settings(changed, region, view, laterality, size, noise_seed)
    centre = xray.region_centre(changed, region, laterality)
    projection = xray.view_geometry(view)
    field = size * settings.spacing_mm
    centre = (
        centre
        + projection.row_dir * variant.field_shift[0] * field
        + projection.col_dir * variant.field_shift[1] * field
    )
    image = xray.render_window(changed, settings, centre, (size, size))
    image.meta.update(region=region, view=view, laterality=laterality, variant=str(variant))
    letter = "R" if laterality == "right" else "L"
    corner = "top_left" if (letter == "R") == (view != "lateral") else "top_right"
    return xray.add_side_marker(image, letter, corner)
