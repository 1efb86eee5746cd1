"""A regional radiograph as a window onto its body's detector plane: the answer key of every
edit (inpainting, outpainting, a knee grown to a whole body) is another window of the same plane."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radsynth.phantoms.body import Body, Subject, draw_subject, make_body
from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.xray import (
    REGIONS,
    XraySettings,
    region_centre,
    region_settings,
    render_window,
)

__all__ = ["RegionalPlane", "regional_plane"]


@dataclass
class RegionalPlane:
    """A regional radiograph as a window onto its body's detector plane (the answer key of
    every edit): the body, the render settings and the window's centre (mm)."""

    body: Body
    subject: Subject
    settings: XraySettings
    centre: np.ndarray
    size: int

    def window(self, shape: tuple[int, int], centre: np.ndarray | None = None) -> PhantomImage:
        """Render a window of the same plane (a `PhantomImage` with masks and meta)."""
        return render_window(
            self.body, self.settings, self.centre if centre is None else centre, shape
        )

    def field_window(self, region: str, largest: int | None = None) -> PhantomImage:
        """The window of `region`'s radiograph field (its field at the body's scale, at this
        plane's spacing, at most `largest` px square) centred on the region."""
        field_mm = REGIONS[region].field_mm * self.body.scale
        side = int(round(field_mm / self.settings.spacing_mm))
        side = side if largest is None else min(side, largest)
        return self.window((side, side), region_centre(self.body, region, None))

    def grown(
        self, top: int, bottom: int, left: int, right: int
    ) -> tuple[PhantomImage, PhantomImage, int, int]:
        """The regional image and a window grown by the given pixels on each side, with the
        regional image's (row, column) offset inside the grown one."""
        spacing = self.settings.spacing_mm
        # Centre shifts by half the difference of the margins (rows: superior-inferior = z).
        shift = np.array([0.0, 0.5 * (right - left) * spacing, -0.5 * (bottom - top) * spacing])
        shape = (self.size + top + bottom, self.size + left + right)
        return self._with_window(shape, self.centre + shift)

    def _with_window(
        self, shape: tuple[int, int], centre: np.ndarray
    ) -> tuple[PhantomImage, PhantomImage, int, int]:
        """The regional image, a `shape` window centred at `centre` and the regional image's
        (row, column) offset inside that window."""
        small = self.window((self.size, self.size))
        big = self.window(shape, centre)
        offset = np.array(small.meta["lattice_origin"]) - np.array(big.meta["lattice_origin"])
        return small, big, int(offset[0]), int(offset[1])

    def full_body(
        self, width: int, min_width: int = 0
    ) -> tuple[PhantomImage, PhantomImage, dict[str, int]]:
        """The regional image, the whole-body window of the same plane and the outpainting
        margins (top, bottom, left, right) that grow the one into the other.

        The window is the body's height plus 4 %, in multiples of 32 pixels, by `width` pixels,
        or by `min_width` when the body is taller than that; it is centred on the midline when
        the regional image fits beside it, else moved towards it."""
        spacing = self.settings.spacing_mm
        height_mm = self.subject.height_mm
        tall = int(np.ceil(height_mm * 1.04 / spacing / 32)) * 32
        wide = max(width, min(min_width, tall))
        room = max(0.0, (wide - self.size) / 2.0 - 1.0) * spacing
        x = float(np.clip(0.0, self.centre[0] - room, self.centre[0] + room))
        small, body, top, left = self._with_window(
            (tall, wide), np.array([x, self.centre[1], height_mm / 2.0])
        )
        margins = {
            "top": top,
            "bottom": tall - self.size - top,
            "left": left,
            "right": wide - self.size - left,
        }
        return small, body, margins


def regional_plane(
    seed: int,
    region: str,
    view: str = "ap",
    laterality: str | None = None,
    sex: str | None = None,
    size: int = 256,
) -> RegionalPlane:
    """The body of phantom `seed` and the plane of its regional radiograph."""
    rng = np.random.default_rng(seed)
    subject = draw_subject(rng, sex=sex)
    body = make_body(subject, rng)
    settings = region_settings(body, region, view, laterality, size, noise_seed=seed)
    centre = region_centre(body, region, laterality)
    return RegionalPlane(body, subject, settings, centre, size)
