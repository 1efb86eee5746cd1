"""B-mode ultrasound phantoms: a tissue scene imaged by a simple but physical pulse-echo model.

The pipeline follows the signal path of a scanner:

1. A 2-D tissue scene in the scan plane (mm), drawn from the rng with anatomical variation: an
   ordered list of structures, each a shape filled with a material of `materials.py`
   (`_ultrasound_scenes.py`).
2. Scatterers on a fine beam grid (depth x beam line): fully developed speckle as a complex
   Gaussian field scaled by each material's `echo`, plus coherent specular reflectors at organ
   capsules, vessel walls and bone surfaces, weighted by the angle of incidence.
3. Pulse-echo point-spread function: a Gaussian-modulated pulse at the centre frequency (axial)
   times a Gaussian beam whose width grows away from the focal depth (lateral). The simulation
   runs on the demodulated (baseband) analytic signal: the carrier phase of each scatterer is
   absorbed into its complex Gaussian amplitude, so the magnitude is exactly the envelope that a
   Hilbert transform of the RF line would give.
4. Attenuation integrated along each beam line from `sound_attenuation` x frequency, so shadows
   behind bone and gas and enhancement behind fluid come out of the physics; time-gain
   compensation corrects the typical (median) loss of the scene, not the local one.
5. Log compression to the dynamic range (dB) and a gray map.
6. Scan conversion into the display: a curvilinear sector fan or a linear-array rectangle, black
   outside, depth increasing downwards; masks are evaluated in the same display geometry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft
from scipy import ndimage

from radsynth.phantoms._ultrasound_scenes import (
    _SCENES,
    BBox,
    BoolArray,
    FloatArray,
    _Scene,
    _Subject,
)
from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.materials import material

US_ORGANS: tuple[str, ...] = ("liver", "kidney", "gallbladder", "thyroid", "fetus")

SPEED_OF_SOUND_MM_PER_US = 1.54
# Fine beam grid: samples per wavelength along depth (the envelope needs about 3, we keep 4).
SAMPLES_PER_WAVELENGTH = 4
# The scene is painted on a grid this many times coarser in depth (about one wavelength).
SCENE_DECIMATION = 4


# --------------------------------------------------------------------------------------------
# 2. Probe and grids
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Probe:
    """Transducer geometry. Curvilinear: lines fan out from an apex `radius_mm` above the skin,
    `half_width` in radians. Linear: parallel lines, `half_width` in mm."""

    kind: str
    frequency_mhz: float
    depth_mm: float
    half_width: float
    radius_mm: float
    focus_mm: float

    @property
    def wavelength_mm(self) -> float:
        return SPEED_OF_SOUND_MM_PER_US / self.frequency_mhz

    def beam_sigma_mm(self, depth: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Lateral pulse-echo beam width (Gaussian sigma, mm) at each depth (mm)."""
        f_number = 4.0 if self.kind == "curvilinear" else 3.0  # effective, with apodisation
        focal = 1.2 * self.wavelength_mm * f_number / 2.355
        growth = (depth - self.focus_mm) / (0.3 * self.depth_mm)
        return focal * np.sqrt(1.0 + growth**2)

    def line_spacing_mm(
        self, depth: NDArray[np.floating[Any]], n_lines: int
    ) -> NDArray[np.float64]:
        """Distance between neighbouring beam lines (mm) at each depth (mm)."""
        step = 2.0 * self.half_width / n_lines
        depth_mm = np.asarray(depth, dtype=np.float64)
        if self.kind == "curvilinear":
            return (self.radius_mm + depth_mm) * step
        return np.full_like(depth_mm, step)

    def n_lines(self) -> int:
        """Enough lines to sample the focused beam (spacing 0.9 sigma at the focus)."""
        sigma = float(self.beam_sigma_mm(np.array([self.focus_mm]))[0])
        reach = self.radius_mm + self.focus_mm if self.kind == "curvilinear" else 1.0
        return int(np.ceil(2.0 * self.half_width * reach / (0.9 * sigma)))


def _make_probe(organ: str, rng: np.random.Generator, frequency_mhz: float | None) -> _Probe:
    if organ == "thyroid":
        freq = rng.uniform(10.0, 12.0) if frequency_mhz is None else frequency_mhz
        depth = rng.uniform(38.0, 45.0)
        return _Probe("linear", freq, depth, rng.uniform(22.0, 25.0), 0.0, 0.5 * depth)
    freq = rng.uniform(3.5, 5.0) if frequency_mhz is None else frequency_mhz
    limits = {"liver": 150.0, "kidney": 130.0, "gallbladder": 120.0, "fetus": 150.0}[organ]
    depth_mm = rng.uniform(limits, limits + (30.0 if organ == "fetus" else 20.0))
    half = np.radians(rng.uniform(30.0, 36.0))
    return _Probe("curvilinear", freq, depth_mm, half, rng.uniform(45.0, 60.0), 0.5 * depth_mm)


@dataclass
class _Grid:
    """Sample positions (mm) of a 2-D grid and a way to find the sub-block a box touches."""

    x: FloatArray
    y: FloatArray
    u: FloatArray
    window: Callable[[BBox | None], tuple[slice, slice]]


def _beam_grid(probe: _Probe, n_rows: int, n_lines: int, dz: float) -> _Grid:
    """Grid of (depth sample, beam line); row i lies at depth (i + 0.5) dz mm."""
    depth = ((np.arange(n_rows) + 0.5) * dz)[:, None]
    step = 2.0 * probe.half_width / n_lines
    lateral = -probe.half_width + (np.arange(n_lines) + 0.5) * step
    big_r = probe.radius_mm
    if probe.kind == "curvilinear":
        x = (big_r + depth) * np.sin(lateral)[None, :]
        y = (big_r + depth) * np.cos(lateral)[None, :] - big_r
    else:
        x = np.broadcast_to(lateral[None, :], (n_rows, n_lines))
        y = np.broadcast_to(depth, (n_rows, n_lines))
    u = np.broadcast_to(depth, (n_rows, n_lines))

    def window(bbox: BBox | None) -> tuple[slice, slice]:
        if bbox is None:
            return slice(0, n_rows), slice(0, n_lines)
        x0, x1, y0, y1 = bbox
        if probe.kind == "linear":
            d0, d1, l0, l1 = y0, y1, x0, x1
        else:
            ay = -big_r  # the apex
            near = np.hypot(max(x0, 0.0, -x1), max(y0 - ay, 0.0, ay - y1))
            corners = [(cx, cy - ay) for cx in (x0, x1) for cy in (y0, y1)]
            d0 = near - big_r
            d1 = max(np.hypot(cx, cy) for cx, cy in corners) - big_r
            if y0 <= ay:  # the box reaches above the apex: any angle
                l0, l1 = -np.pi, np.pi
            else:
                angles = [np.arctan2(cx, cy) for cx, cy in corners]
                l0, l1 = min(angles), max(angles)
        r0, r1 = int(np.floor(d0 / dz)) - 1, int(np.ceil(d1 / dz)) + 2
        c0 = int(np.floor((l0 + probe.half_width) / step)) - 1
        c1 = int(np.ceil((l1 + probe.half_width) / step)) + 2
        return slice(max(r0, 0), max(min(r1, n_rows), 0)), slice(
            max(c0, 0), max(min(c1, n_lines), 0)
        )

    as32 = np.float32
    return _Grid(x.astype(as32), y.astype(as32), u.astype(as32), window)


@dataclass(frozen=True)
class _Display:
    """Square display raster: pixel (row, col) has its centre at x0 + (col + 0.5) spacing,
    y0 + (row + 0.5) spacing (mm)."""

    size: int
    spacing_mm: float
    x0: float
    y0: float


def _display_layout(probe: _Probe, size: int) -> _Display:
    if probe.kind == "curvilinear":
        far = probe.radius_mm + probe.depth_mm
        width = 2.0 * far * np.sin(probe.half_width)
        top = probe.radius_mm * np.cos(probe.half_width) - probe.radius_mm
        height = probe.depth_mm - top
    else:
        width, top, height = 2.0 * probe.half_width, 0.0, probe.depth_mm
    spacing = 1.02 * max(width, height) / size
    return _Display(size, float(spacing), -0.5 * size * spacing, top - 0.01 * size * spacing)


def _display_grid(
    probe: _Probe, display: _Display
) -> tuple[_Grid, BoolArray, FloatArray, FloatArray]:
    """Display grid, the fan (imaged region), and per pixel the depth and lateral beam coordinate
    (mm for depth; radians or mm across the lines)."""
    n, s = display.size, display.spacing_mm
    x = np.broadcast_to((display.x0 + (np.arange(n) + 0.5) * s)[None, :], (n, n))
    y = np.broadcast_to((display.y0 + (np.arange(n) + 0.5) * s)[:, None], (n, n))
    if probe.kind == "curvilinear":
        depth = np.hypot(x, y + probe.radius_mm) - probe.radius_mm
        lateral = np.arctan2(x, y + probe.radius_mm)
    else:
        depth, lateral = y, x
    fan = (depth >= 0.0) & (depth < probe.depth_mm) & (np.abs(lateral) <= probe.half_width)
    fan &= (y + probe.radius_mm > 0.0) if probe.kind == "curvilinear" else True

    def window(bbox: BBox | None) -> tuple[slice, slice]:
        if bbox is None:
            return slice(0, n), slice(0, n)
        x0, x1, y0, y1 = bbox
        cols = (int((x0 - display.x0) / s) - 1, int((x1 - display.x0) / s) + 2)
        rows = (int((y0 - display.y0) / s) - 1, int((y1 - display.y0) / s) + 2)
        return (
            slice(min(max(rows[0], 0), n), min(max(rows[1], 0), n)),
            slice(min(max(cols[0], 0), n), min(max(cols[1], 0), n)),
        )

    f32 = np.float32
    grid = _Grid(x.astype(f32), y.astype(f32), np.maximum(depth, 0.0).astype(f32), window)
    return grid, fan, depth.astype(f32), lateral.astype(f32)


def _paint(
    scene: _Scene, grid: _Grid
) -> tuple[NDArray[np.int16], list[tuple[slice, slice, BoolArray]]]:
    """Label map (0 = background, k = k-th structure) and each structure's own shape block."""
    label = np.zeros(grid.x.shape, dtype=np.int16)
    blocks = []
    for k, structure in enumerate(scene.structures, start=1):
        rows, cols = grid.window(structure.shape.bbox)
        inside = structure.shape.inside(grid.x[rows, cols], grid.y[rows, cols], grid.u[rows, cols])
        label[rows, cols][inside] = k
        blocks.append((rows, cols, inside))
    return label, blocks


# --------------------------------------------------------------------------------------------
# 3. Pulse-echo physics on the beam grid
# --------------------------------------------------------------------------------------------

_GAS = frozenset({"air", "lung", "bowel_gas"})


@dataclass
class _BeamData:
    """Everything simulated along the beam lines, before log compression.

    envelope: detected, time-gain-compensated echo amplitude (fine rows x lines), liver at the
        focus has mean 0.886 (Rayleigh with unit power).
    label: structure index per coarse row (SCENE_DECIMATION fine rows each) and line.
    """

    probe: _Probe
    scene: _Scene
    envelope: FloatArray
    label: NDArray[np.int16]
    dz_mm: float
    n_lines: int


def _property(scene: _Scene, name: str) -> NDArray[np.float32]:
    """Per label (background first) a material property scaled by the structure settings."""
    mats = [material(scene.background)] + [material(s.material) for s in scene.structures]
    values = [getattr(m, name) for m in mats]
    if name in ("echo", "sound_attenuation"):
        key = "echo_scale" if name == "echo" else "attenuation_scale"
        scales = [1.0] + [getattr(s, key) for s in scene.structures]
        values = [v * k for v, k in zip(values, scales, strict=True)]
    return np.asarray(values, dtype=np.float32)


def _interfaces(
    scene: _Scene,
    label: NDArray[np.int16],
    blocks: Sequence[tuple[slice, slice, BoolArray]],
    probe: _Probe,
    dz: float,
    n_lines: int,
) -> tuple[FloatArray, FloatArray]:
    """Specular reflectivity at structure boundaries crossed by the beams, weighted by cos^2 of
    the angle of incidence, and the edge-shadow loss (dB) at grazing refracting boundaries."""
    specular = np.zeros(label.shape, dtype=np.float32)
    loss_db = np.zeros(label.shape, dtype=np.float32)
    for k, (structure, (rows, cols, inside)) in enumerate(
        zip(scene.structures, blocks, strict=True), start=1
    ):
        if (structure.wall <= 0.0 and not structure.refracting) or inside.shape[0] < 2:
            continue
        sub = label[rows, cols]
        edge = (inside[1:] != inside[:-1]) & ((sub[1:] == k) | (sub[:-1] == k))
        if not edge.any():
            continue
        depth = (np.arange(rows.start, rows.stop) + 0.5) * dz
        dx = probe.line_spacing_mm(depth, n_lines)
        sigma = (0.7 / dz, 0.7 / float(np.median(dx)))
        smooth = ndimage.gaussian_filter(inside.astype(np.float32), sigma, mode="nearest")
        g_axial = np.diff(smooth, axis=0) / dz
        g_lateral = np.gradient(smooth, axis=1)[1:] / dx[1:, None]
        ii, jj = np.nonzero(edge)
        ga, gl = g_axial[ii, jj], g_lateral[ii, jj]
        cos2 = np.where(ga**2 + gl**2 > 0, ga**2 / (ga**2 + gl**2 + 1e-12), 1.0)
        target = (rows.start + 1 + ii, cols.start + jj)
        specular[target] += structure.wall * cos2
        if structure.refracting:
            # Refraction bends the beam away at grazing incidence: thin edge shadows.
            loss_db[target] += 14.0 * np.clip(1.0 - np.sqrt(cos2) / 0.35, 0.0, 1.0)
    return specular, loss_db


def _attenuation_db(
    scene: _Scene, label: NDArray[np.int16], loss_db: FloatArray, probe: _Probe, dz: float
) -> FloatArray:
    """Two-way attenuation (dB) from the skin to the middle of each coarse sample."""
    alpha = _property(scene, "sound_attenuation")[label] * (probe.frequency_mhz * 0.1 * dz)
    per_row = 2.0 * alpha + loss_db
    return (np.cumsum(per_row, axis=0) - 0.5 * per_row).astype(np.float32)


def _reverberation(
    source: FloatArray, attenuation: FloatArray, gas: BoolArray, near_rows: int
) -> FloatArray:
    """Echoes bouncing between the probe face and strong reflectors reappear at two and three
    times their depth (near-field lines, ring-down below gas)."""
    src = np.where(gas, source, 0.0).astype(np.float32)
    src[:near_rows] = source[:near_rows]
    out = np.zeros_like(source)
    n = source.shape[0]
    for k, coef in ((2, 0.2), (3, 0.06), (4, 0.02)):
        m = (n + k - 1) // k
        out[::k] += coef * src[:m] * attenuation[:m] ** (k - 1)
    return out


def _time_gain_db(
    scene: _Scene, label: NDArray[np.int16], probe: _Probe, dz: float
) -> NDArray[np.float64]:
    """Time-gain compensation (dB per coarse row): it undoes most of the loss of the typical
    (median) soft tissue at each depth, so bone, gas and fluid still shadow or enhance."""
    rate = _property(scene, "sound_attenuation")[label].astype(np.float64)
    rate[rate > 3.0] = np.nan  # bone and gas are local, not what the sonographer compensates
    all_hard = np.isnan(rate).all(axis=1)
    rate[all_hard] = 0.5
    typical = np.nanmedian(rate, axis=1)
    typical = ndimage.gaussian_filter1d(typical, 4.0 / dz, mode="nearest")
    return 0.95 * np.cumsum(2.0 * typical * probe.frequency_mhz * 0.1 * dz)


def _mirror(
    field_: NDArray[np.complex64], label: NDArray[np.int16], scene: _Scene, atten_db: FloatArray
) -> None:
    """Mirror-image artefact: behind a gas reflector (lung behind the diaphragm) the scanner
    shows the tissue in front of it once more, reflected about the interface; in place."""
    ids = [k for k, s in enumerate(scene.structures, 1) if s.mirror]
    hit = np.isin(label, ids)
    lines = np.nonzero(hit.any(axis=0))[0]
    if lines.size == 0:
        return
    first = hit[:, lines].argmax(axis=0) * SCENE_DECIMATION
    rows = np.arange(field_.shape[0])[:, None]
    source = 2 * first[None, :] - rows
    behind = (rows >= first[None, :]) & (source >= 0)
    source = np.clip(source, 0, field_.shape[0] - 1)
    loss = np.repeat(atten_db[:, lines], SCENE_DECIMATION, axis=0)
    extra_db = 2.0 * (
        np.take_along_axis(loss, first[None, :], axis=0) - np.take_along_axis(loss, source, axis=0)
    )  # the way back and forth
    mirrored = np.take_along_axis(field_[:, lines], source, axis=0) * (
        0.5 * 10.0 ** (-np.maximum(extra_db, 0.0) / 20.0)
    ).astype(np.float32)
    field_[:, lines] = np.where(behind, mirrored, field_[:, lines])


def _lateral_psf(field_: NDArray[np.complex64], sigma_lines: NDArray[np.float64]) -> None:
    """Gaussian beam across the lines, its width depending on depth (row); in place."""
    n_rows, n_lines = field_.shape
    pad = int(np.ceil(3.0 * sigma_lines.max())) + 1
    length = sp_fft.next_fast_len(n_lines + 2 * pad)
    spectrum = sp_fft.fft(field_, n=length, axis=1, workers=1)
    freq = sp_fft.fftfreq(length).astype(np.float32)
    spectrum *= np.exp(-2.0 * np.pi**2 * (sigma_lines[:, None] * freq[None, :]) ** 2).astype(
        np.float32
    )
    field_[:] = sp_fft.ifft(spectrum, axis=1, workers=1)[:, :n_lines]


def _simulate(
    organ: str, rng: np.random.Generator, sex: str, age: int, frequency_mhz: float | None
) -> _BeamData:
    """Run the pulse-echo simulation along the beam lines (steps 1 to 4)."""
    probe = _make_probe(organ, rng, frequency_mhz)
    subject = _Subject(sex, age, probe.depth_mm, probe.radius_mm, probe.half_width)
    scene = _SCENES[organ](rng, subject)
    dz = probe.wavelength_mm / SAMPLES_PER_WAVELENGTH
    dz_scene = dz * SCENE_DECIMATION
    n_scene = int(np.ceil(probe.depth_mm / dz_scene))
    n_lines = probe.n_lines()
    grid = _beam_grid(probe, n_scene, n_lines, dz_scene)
    label, blocks = _paint(scene, grid)
    specular, loss_db = _interfaces(scene, label, blocks, probe, dz_scene, n_lines)
    atten_db = _attenuation_db(scene, label, loss_db, probe, dz_scene)
    atten = (10.0 ** (-atten_db / 20.0)).astype(np.float32)
    gas_ids = [k for k, s in enumerate(scene.structures, 1) if s.material in _GAS]
    gas = np.isin(label, gas_ids)
    specular = specular * atten
    specular += _reverberation(specular, atten, gas, int(0.2 * n_scene))

    # Fine grid: fully developed speckle as a complex Gaussian field scaled by the echo level.
    n_rows = n_scene * SCENE_DECIMATION
    depth = (np.arange(n_rows) + 0.5) * dz
    sigma_lat = probe.beam_sigma_mm(depth)
    sigma_focus = float(probe.beam_sigma_mm(np.array([probe.focus_mm]))[0])
    sigma_ax = 0.55 * probe.wavelength_mm  # 2.5-cycle pulse: FWHM of 1.3 wavelengths
    dx = probe.line_spacing_mm(depth, n_lines)
    # Scaling so that liver at the focus has unit echo power after the point-spread function.
    norm = np.sqrt(dz / dx * 2.0 * sigma_focus / sigma_ax).astype(np.float32)[:, None]
    noise = rng.standard_normal((4, n_rows, n_lines), dtype=np.float32)
    level = np.repeat(_property(scene, "echo")[label] * atten, SCENE_DECIMATION, axis=0)
    field_ = ((noise[0] + 1j * noise[1]) * (level * norm * np.float32(np.sqrt(0.5)))).astype(
        np.complex64
    )
    _mirror(field_, label, scene, atten_db)
    field_[SCENE_DECIMATION // 2 :: SCENE_DECIMATION] += specular
    # Electronic noise (fixed at the receiver, so raised by the gain) and near-field clutter.
    floor = 10.0 ** ((-80.0 if probe.kind == "curvilinear" else -108.0) / 20.0)
    clutter = 0.8 * np.exp(-depth / (0.03 * probe.depth_mm)) + floor
    field_ += (noise[2] + 1j * noise[3]) * (norm * clutter[:, None] * np.sqrt(0.5)).astype(
        np.float32
    )

    _lateral_psf(field_, sigma_lat / dx)
    sigma_rows = sigma_ax / dz
    peak = np.float32(np.sqrt(2.0 * np.pi) * sigma_rows)  # unit-peak axial pulse envelope
    envelope = (
        np.hypot(
            ndimage.gaussian_filter1d(field_.real, sigma_rows, axis=0, truncate=3.0),
            ndimage.gaussian_filter1d(field_.imag, sigma_rows, axis=0, truncate=3.0),
        )
        * peak
    )

    gain = np.repeat(_time_gain_db(scene, label, probe, dz_scene), SCENE_DECIMATION)
    gain = 10.0 ** (gain / 20.0)
    gain *= (sigma_lat / sigma_focus) ** 0.35  # partial focal-zone equalisation
    envelope *= gain[:, None].astype(np.float32)
    return _BeamData(probe, scene, envelope.astype(np.float32), label, dz, n_lines)


# --------------------------------------------------------------------------------------------
# 4. Log compression, scan conversion, masks
# --------------------------------------------------------------------------------------------


def _log_compress(envelope: FloatArray, dynamic_range_db: float, gain_db: float) -> FloatArray:
    """Map echo amplitude to gray: liver speckle mean near 0.5, `dynamic_range_db` to black."""
    db = 20.0 * np.log10(envelope + 1e-12) - 20.0 * np.log10(0.886) - gain_db
    gray = np.clip(0.47 + db / dynamic_range_db, 0.0, 1.0)
    return (gray**1.3).astype(np.float32)


def _scan_convert(
    beam: _BeamData,
    gray_envelope: Callable[[FloatArray], FloatArray],
    display: _Display,
    depth: FloatArray,
    lateral: FloatArray,
    fan: BoolArray,
) -> FloatArray:
    """Resample the lines into the display; envelope is averaged to the pixel size first."""
    probe = beam.probe
    block = max(1, int(display.spacing_mm / (2.0 * beam.dz_mm)))
    n_rows = beam.envelope.shape[0] // block * block
    coarse = beam.envelope[:n_rows].reshape(-1, block, beam.n_lines).mean(axis=1)
    gray = gray_envelope(coarse)
    step = 2.0 * probe.half_width / beam.n_lines
    rows = depth[fan] / (beam.dz_mm * block) - 0.5
    cols = (lateral[fan] + probe.half_width) / step - 0.5
    image = np.zeros((display.size, display.size), dtype=np.float32)
    image[fan] = ndimage.map_coordinates(gray, [rows, cols], order=1, mode="nearest")
    return image


def _check_arguments(
    organ: str, size: int, sex: str, age: int, frequency_mhz: float | None
) -> None:
    if organ not in US_ORGANS:
        raise ValueError(
            f"unknown ultrasound organ {organ!r}; choose one of {', '.join(US_ORGANS)}"
        )
    if int(size) != size or size < 32:
        raise ValueError(f"size must be an integer of at least 32 pixels, got {size!r}")
    if sex not in ("female", "male"):
        raise ValueError(f"sex must be 'female' or 'male', got {sex!r}")
    if not 0 <= age <= 120:
        raise ValueError(f"age must be between 0 and 120 years, got {age!r}")
    if organ == "fetus" and sex != "female":
        raise ValueError("an obstetric scan needs a female subject; pass sex='female' for 'fetus'")
    if organ == "fetus" and not 12 <= age <= 55:
        raise ValueError(f"an obstetric scan needs a subject aged 12 to 55 years, got {age!r}")
    if frequency_mhz is not None and not 1.0 <= frequency_mhz <= 20.0:
        raise ValueError(
            f"frequency_mhz must be between 1 and 20 MHz (or None for the probe default), "
            f"got {frequency_mhz!r}"
        )


def render_ultrasound(
    organ: str,
    rng: np.random.Generator,
    size: int = 256,
    *,
    sex: str = "female",
    age: int = 40,
    frequency_mhz: float | None = None,
) -> PhantomImage:
    """Render a B-mode ultrasound image of `organ` (one of US_ORGANS) as the scanner shows it.

    Thyroid uses a linear array (10-12 MHz, rectangular field); liver, kidney, gallbladder and
    fetus a curvilinear probe (3.5-5 MHz, sector fan). `frequency_mhz` overrides the centre
    frequency (MHz). The image is `size` x `size` pixels with square pixels (`pixel_spacing_mm`),
    black outside the imaged field; masks (display geometry, inside the field) name each visible
    structure, and "fan" is the imaged field. Same rng state, same image.
    """
    # 1. Check inputs
    _check_arguments(organ, size, sex, age, frequency_mhz)
    # 2. Simulate the echoes along the beam lines
    beam = _simulate(organ, rng, sex, age, frequency_mhz)
    probe = beam.probe
    dynamic_range = float(rng.uniform(50.0, 60.0))
    gain_db = float(rng.uniform(-2.0, 2.0))
    # 3. Display geometry and scan conversion
    display = _display_layout(probe, int(size))
    grid, fan, depth, lateral = _display_grid(probe, display)
    image = _scan_convert(
        beam, lambda env: _log_compress(env, dynamic_range, gain_db), display, depth, lateral, fan
    )
    # 4. Masks in display geometry
    label, _ = _paint(beam.scene, grid)
    masks: dict[str, BoolArray] = {"fan": fan.copy()}
    for k, structure in enumerate(beam.scene.structures, start=1):
        for name in structure.masks:
            masks[name] = masks.get(name, np.zeros_like(fan)) | ((label == k) & fan)
    masks = {name: mask for name, mask in masks.items() if mask.any()}
    meta: dict[str, Any] = {
        "modality": "us",
        "organ": organ,
        "probe": probe.kind,
        "frequency_mhz": round(probe.frequency_mhz, 2),
        "depth_mm": round(probe.depth_mm, 1),
        "focus_mm": round(probe.focus_mm, 1),
        "dynamic_range_db": round(dynamic_range, 1),
        "sex": sex,
        "age": age,
        **beam.scene.facts,
    }
    if probe.kind == "curvilinear":
        meta.update(
            sector_angle_deg=round(float(np.degrees(2 * probe.half_width)), 1),
            probe_radius_mm=round(probe.radius_mm, 1),
        )
    else:
        meta["aperture_mm"] = round(2.0 * probe.half_width, 1)
    return PhantomImage(image, masks, (display.spacing_mm, display.spacing_mm), meta)
