"""Projection radiographs of the phantom body.

Physics, in order: exact line integrals of attenuation through the body (Beer-Lambert,
`raycast.project`), primary fluence exp(-integral), scatter as a broad blur of the primary
(computed on a coarse grid), quantum noise, detector blur, logarithmic detector response,
a window fixed per body and region (as automatic exposure control would set it), a film-like
tone curve and the unsharp masking of digital radiography, and a lead side marker.

Attenuation is that of one effective energy, about 45 keV (`materials.py`). Thick projections
(lateral pelvis, lateral lumbar spine; line integrals of 10-12 at 45 keV) are taken as in
practice at higher kVp and with an anti-scatter grid: their `RegionSpec` names a `Technique`
for the lateral view, an effective energy of ~60 keV at which every material's attenuation is
rescaled (bone falls more than soft tissue, see `energy_factors`), the share of scatter the grid
lets through, and the stronger equalisation the then much wider dynamic range needs.

Every regional radiograph is a window onto one infinite detector plane per (body, view, pixel
spacing): pixel centres sit on a lattice anchored at the body's origin and the noise is drawn
per lattice tile, so a regional image is exactly a crop of the same body's full projection at
the same spacing and settings. `render_window` renders any other window of that plane (the
answer key for outpainting).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

import numba
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from radsynth.phantoms.body import Body
from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.materials import MATERIALS
from radsynth.phantoms.raycast import Grid, project
from radsynth.vocabulary.labels import PAIRED_REGIONS, XRAY_REGIONS

SCATTER_SIGMA_MM = 30.0
COARSE_FACTOR = 16  # scatter and large-scale attenuation vary over ~30 mm: a coarse grid suffices
SMOOTH_CATEGORIES = frozenset({"envelope", "organ", "cartilage"})
PROBE_PX = 32  # the coarse look at a region that sets exposure and window
MARGIN_PX = 8  # rendered around the window so blurs near its border match a larger window


@dataclass(frozen=True)
class Technique:
    """Exposure technique of a thick projection, taken as in practice at higher kVp with an
    anti-scatter grid: the beam's effective energy (keV), the share of this model's scatter the
    grid lets through, and the processing set for it (dynamic range compression and black level,
    as in `RegionSpec`): with the scatter gone the detector sees the projection's full dynamic
    range, which is equalised more strongly."""

    kev: float
    grid: float
    compression: float
    floor: float


@dataclass(frozen=True)
class RegionSpec:
    """Where a regional radiograph is centred (a landmark plus an offset, mm, reference body),
    its square field of view (mm, reference body), scatter-to-primary ratio, the x-ray quanta
    per pixel behind typical tissue (automatic exposure control) and the black level as a
    fraction of the typical attenuation (soft tissue of an extremity stays visible, the thick
    soft tissue of the trunk is pushed towards grey). Thick lateral projections name the
    `Technique` of their lateral view (None: EFFECTIVE_KEV, no grid, the settings above)."""

    landmark: str
    offset: tuple[float, float, float]
    field_mm: float
    scatter: float
    photons: float
    floor: float
    compression: float
    lateral: Technique | None = None


# Lateral pelvis and lumbar spine (line integrals of 10-12 at 45 keV, the primary beam buried in
# scatter): about 90 kVp, effective energy ~60 keV, and a high-ratio grid.
_THICK_LATERAL = Technique(kev=60.0, grid=0.025, compression=0.9, floor=0.1)

REGIONS: dict[str, RegionSpec] = {
    "head": RegionSpec("head_centre", (0.0, 10.0, -12.0), 260.0, 0.1, 3000.0, 0.45, 0.4),
    "chest": RegionSpec("t6_centre", (0.0, 40.0, -30.0), 400.0, 0.12, 4000.0, 0.3, 0.45),
    "shoulder": RegionSpec("{side}_shoulder", (-30.0, 0.0, -10.0), 230.0, 0.1, 3000.0, 0.3, 0.45),
    "abdomen": RegionSpec("l3_centre", (0.0, 30.0, 10.0), 400.0, 0.15, 3000.0, 0.55, 0.55),
    "pelvis": RegionSpec(
        "pelvis_centre", (0.0, 0.0, -20.0), 380.0, 0.15, 3000.0, 0.55, 0.6, _THICK_LATERAL
    ),
    "hand": RegionSpec("{side}_hand", (0.0, 0.0, -15.0), 230.0, 0.03, 2500.0, 0.6, 0.3),
    "wrist": RegionSpec("{side}_wrist", (0.0, 0.0, -12.0), 130.0, 0.03, 2500.0, 0.6, 0.3),
    "knee": RegionSpec("{side}_knee", (0.0, 0.0, 10.0), 220.0, 0.06, 3000.0, 0.35, 0.45),
    "ankle": RegionSpec("{side}_ankle", (0.0, 0.0, 5.0), 200.0, 0.05, 3000.0, 0.35, 0.7),
    "cervical_spine": RegionSpec("c4_centre", (0.0, 10.0, 0.0), 190.0, 0.1, 3000.0, 0.4, 0.5),
    "thoracic_spine": RegionSpec("t7_centre", (0.0, 20.0, 0.0), 400.0, 0.15, 3000.0, 0.45, 0.55),
    "lumbar_spine": RegionSpec(
        "l3_centre", (0.0, 20.0, -10.0), 280.0, 0.15, 3000.0, 0.55, 0.55, _THICK_LATERAL
    ),
    "full_body": RegionSpec("pelvis_centre", (0.0, 0.0, -55.0), 1820.0, 0.08, 4000.0, 0.3, 0.5),
}
# Lateral views of one limb keep only the rays' part on that side of this plane (x, mm from
# the landmark towards the midline), so the other limb is out of the beam.
_LATERAL_CLIP_MM = {"shoulder": 110.0, "hand": 70.0, "wrist": 60.0, "knee": 95.0, "ankle": 85.0}

EFFECTIVE_KEV = 45.0  # the energy of the attenuation coefficients in `materials.py`
# Mass attenuation coefficients (cm^2/g, NIST XCOM) of water, cortical bone (ICRU-44) and iron
# at these energies (keV); only their ratios to the value at EFFECTIVE_KEV are used.
_NIST_KEV = np.array([40.0, 50.0, 60.0, 80.0, 100.0])
_NIST_MU = {
    "water": np.array([0.2683, 0.2269, 0.2059, 0.1837, 0.1707]),
    "bone": np.array([0.6655, 0.4242, 0.3148, 0.2229, 0.1855]),
    "iron": np.array([3.629, 1.958, 1.205, 0.5952, 0.3717]),
}


def _nist_ratio(reference: str, kev: float) -> float:
    """Attenuation of `reference` at `kev` over that at EFFECTIVE_KEV (log-log interpolation)."""
    x = np.log(_NIST_KEV)
    y = np.log(_NIST_MU[reference])
    return float(np.exp(np.interp(np.log(kev), x, y) - np.interp(np.log(EFFECTIVE_KEV), x, y)))


_SOFT_TISSUE_MAX_MU = 0.035  # 1/mm at EFFECTIVE_KEV: above this a material contains mineral


@lru_cache(maxsize=8)
def energy_factors(kev: float) -> dict[str, float]:
    """Per material, its attenuation at effective energy `kev` over that at EFFECTIVE_KEV.

    Soft tissues, fluids, fat and lung (differing from water mostly in density) scale as water;
    materials between soft tissue and cortical bone as a mixture of water and bone (the mixture
    rule is exact for linear attenuation: trabecular bone, sclerotic tumour); denser ones
    (metals: mostly photoelectric absorption between absorption edges) as iron."""
    if not _NIST_KEV[0] <= kev <= _NIST_KEV[-1]:
        raise ValueError(f"effective energy must be {_NIST_KEV[0]:g}-{_NIST_KEV[-1]:g} keV")
    water_mu = MATERIALS["fluid"].mu_per_mm
    bone_mu = MATERIALS["cortical_bone"].mu_per_mm
    water, bone, metal = (_nist_ratio(name, kev) for name in ("water", "bone", "iron"))
    factors = {}
    for name, m in MATERIALS.items():
        if m.mu_per_mm <= _SOFT_TISSUE_MAX_MU:
            factors[name] = water
        elif m.mu_per_mm <= bone_mu:
            share = (m.mu_per_mm - water_mu) / (bone_mu - water_mu)  # bone's volume share
            factors[name] = ((1.0 - share) * water_mu * water + share * bone_mu * bone) / (
                m.mu_per_mm
            )
        else:
            factors[name] = metal
    return factors


def _body_at(body: Body, kev: float) -> Body:
    """`body` with every material's attenuation at effective energy `kev` (cached on the body;
    the body itself at EFFECTIVE_KEV)."""
    if kev == EFFECTIVE_KEV:
        return body
    cache: dict[float, Body] = body.__dict__.setdefault("_at_kev", {})
    if kev not in cache:
        factors = energy_factors(kev)
        mu_scale = {name: body.mu_scale.get(name, 1.0) * f for name, f in factors.items()}
        cache[kev] = replace(body, mu_scale=mu_scale)
    return cache[kev]


@dataclass(frozen=True)
class Projection:
    """Detector geometry of one view: ray direction, image row and column directions."""

    direction: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray


def view_geometry(view: str) -> Projection:
    """AP and PA are displayed as if facing the patient (patient's right on image left);
    laterals with the patient facing image left."""
    down = np.array([0.0, 0.0, -1.0])
    if view in ("ap", "pa"):
        return Projection(np.array([0.0, -1.0, 0.0]), down, np.array([1.0, 0.0, 0.0]))
    if view == "lateral":
        return Projection(np.array([1.0, 0.0, 0.0]), down, np.array([0.0, -1.0, 0.0]))
    raise ValueError(f"x-ray view must be 'ap', 'pa' or 'lateral', got {view!r}")


def _check(region: str, view: str, laterality: str | None) -> None:
    if region not in REGIONS:
        raise ValueError(f"unknown x-ray region {region!r}; use one of: {', '.join(XRAY_REGIONS)}")
    view_geometry(view)
    if region in PAIRED_REGIONS and laterality not in ("left", "right"):
        raise ValueError(f"an x-ray of the {region} needs laterality 'left' or 'right'")
    if region not in PAIRED_REGIONS and laterality is not None:
        raise ValueError(f"the {region} is a midline region: laterality must be None")


def region_centre(body: Body, region: str, laterality: str | None) -> np.ndarray:
    """Centre of a region's field (mm, subject coordinates)."""
    spec = REGIONS[region]
    name = spec.landmark.format(side=laterality)
    offset = np.array(spec.offset)
    if laterality == "right":  # offsets are given for the left side
        offset[0] = -offset[0]
    centre = body.landmark(name) + offset * body.scale
    return centre


def pixel_spacing(body: Body, region: str, size: int) -> float:
    """Pixel spacing (mm) of a `size`-pixel regional image of this body."""
    return REGIONS[region].field_mm * body.scale / size


def _lattice_grid(
    projection: Projection, centre: np.ndarray, shape: tuple[int, int], spacing: float
) -> tuple[Grid, tuple[int, int]]:
    """A grid whose pixel centres lie on the global lattice of this spacing; also returns the
    lattice index (row, col) of its first pixel."""
    row_coord = float(centre @ projection.row_dir)
    col_coord = float(centre @ projection.col_dir)
    first_row = int(np.round(row_coord / spacing - (shape[0] - 1) / 2.0))
    first_col = int(np.round(col_coord / spacing - (shape[1] - 1) / 2.0))
    depth = float(centre @ projection.direction)
    corner = (
        projection.row_dir * first_row * spacing
        + projection.col_dir * first_col * spacing
        + projection.direction * depth
    )
    return Grid(corner, projection.row_dir * spacing, projection.col_dir * spacing, shape), (
        first_row,
        first_col,
    )


def _lattice_noise(seed: int, first: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Standard normal noise indexed by global lattice position: the same pixel gets the same
    value in any window that contains it (a counter-based generator hashed from the seed and
    the pixel's lattice row and column)."""
    return _hashed_normal(np.uint64(seed % 2**63), first[0], first[1], shape[0], shape[1])


@numba.njit(cache=True, inline="always")
def _splitmix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True)
def _hashed_normal(seed, r0, c0, height, width):
    out = np.empty((height, width), dtype=np.float32)
    scale = 1.0 / 9007199254740992.0  # 2**-53
    for i in range(height):
        row = np.uint64((r0 + i) & 0xFFFFFFFF)
        for j in range(width):
            col = np.uint64((c0 + j) & 0xFFFFFFFF)
            key = _splitmix64(seed ^ _splitmix64((row << np.uint64(32)) | col))
            u1 = (np.float64(key >> np.uint64(11)) + 0.5) * scale
            u2 = np.float64(_splitmix64(key) >> np.uint64(11)) * scale
            out[i, j] = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return out


DETECTOR_BLUR_PX = 0.6  # detector point-spread, sigma in pixels
UNSHARP_SIGMA_PX = 2.0  # unsharp masking of digital radiography, sigma in pixels
UNSHARP_WEIGHT = 0.6
TONE_STEEPNESS = 2.2  # film-like characteristic curve


def _gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian, truncated at 3 sigma."""
    radius = int(np.ceil(3.0 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


@numba.njit(cache=True)
def _blur(image, kernel):
    """Separable convolution with edge values repeated beyond the border."""
    height, width = image.shape
    radius = kernel.shape[0] // 2
    tmp = np.empty_like(image)
    out = np.empty_like(image)
    for i in range(height):
        for j in range(width):
            acc = 0.0
            for k in range(-radius, radius + 1):
                acc += kernel[k + radius] * image[min(max(i + k, 0), height - 1), j]
            tmp[i, j] = acc
    for i in range(height):
        for j in range(width):
            acc = 0.0
            for k in range(-radius, radius + 1):
                acc += kernel[k + radius] * tmp[i, min(max(j + k, 0), width - 1)]
            out[i, j] = acc
    return out


@numba.njit(cache=True)
def _develop(integral, scatter, background, p, seed, r0, c0, detector_kernel, unsharp_kernel):
    """Detector and processing chain, pixel by pixel: primary plus scatter fluence, quantum
    noise (lattice-hashed), detector blur, logarithm, dynamic range compression against the
    large-scale attenuation, window, tone curve, unsharp masking."""
    photons, compression, typical, lo, hi, steepness, unsharp = (
        p[0], p[1], p[2], p[3], p[4], p[5], p[6],
    )  # fmt: skip
    noise = _hashed_normal(seed, r0, c0, integral.shape[0], integral.shape[1])
    signal = np.empty(integral.shape)
    for i in range(integral.shape[0]):
        for j in range(integral.shape[1]):
            counts = (np.exp(-integral[i, j]) + scatter[i, j]) * photons
            signal[i, j] = max(counts + np.sqrt(counts + 1.0) * noise[i, j], 1.0) / photons
    signal = _blur(signal, detector_kernel)
    gray = np.empty(integral.shape)
    norm = np.tanh(steepness * 0.5)
    for i in range(integral.shape[0]):
        for j in range(integral.shape[1]):
            value = -np.log(signal[i, j]) - compression * (background[i, j] - typical)
            g = min(max((value - lo) / (hi - lo), 0.0), 1.0)
            gray[i, j] = 0.5 + 0.5 * np.tanh(steepness * (g - 0.5)) / norm
    smooth = _blur(gray, unsharp_kernel)
    out = np.empty(integral.shape, dtype=np.float32)
    for i in range(integral.shape[0]):
        for j in range(integral.shape[1]):
            out[i, j] = min(max(gray[i, j] + unsharp * (gray[i, j] - smooth[i, j]), 0.0), 1.0)
    return out


@dataclass(frozen=True)
class XraySettings:
    """Everything that fixes the look of one body's radiographs in one region and view."""

    region: str
    view: str
    laterality: str | None
    spacing_mm: float
    window: tuple[float, float]  # detector log-signal mapped to black and white
    noise_seed: int
    exclude: frozenset[str] = frozenset()
    photons: float = 3000.0  # quanta per pixel in air, after automatic exposure control
    typical: float = 0.0  # median attenuation (line integral) of the body in the region
    compression: float = 0.0  # dynamic range compression: share of large-scale contrast removed
    kev: float = EFFECTIVE_KEV  # effective beam energy (higher kVp for thick projections)
    grid: float = 1.0  # share of scatter that an anti-scatter grid lets through


def _clip(
    body: Body, region: str, view: str, laterality: str | None, grid: Grid, projection: Projection
) -> tuple[float, float]:
    if view != "lateral" or region not in _LATERAL_CLIP_MM:
        return (-np.inf, np.inf)
    sign = 1.0 if laterality == "left" else -1.0
    plane_x = (
        region_centre(body, region, laterality)[0] - sign * _LATERAL_CLIP_MM[region] * body.scale
    )
    distance = plane_x - float(grid.corner[0])  # direction is +x for laterals
    return (distance, np.inf) if sign > 0 else (-np.inf, distance)


def _project_all(
    body: Body,
    exclude: frozenset[str],
    grid: Grid,
    projection: Projection,
    masks: bool,
    clip: tuple[float, float],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The whole body's line integral (and masks) at full resolution on `grid`, from the same
    two packed scenes (smooth and sharp structures) that large windows use."""
    integral = np.zeros(grid.shape)
    found: dict[str, np.ndarray] = {}
    smooth = SMOOTH_CATEGORIES
    for categories in (smooth, frozenset(body.categories() - smooth)):
        part, part_masks = project(
            body.scene(exclude, categories), grid, projection.direction, None if masks else [], clip
        )
        integral += part
        found.update(part_masks)
    return integral, found


def _primary_and_masks(
    body: Body,
    settings: XraySettings,
    centre: np.ndarray,
    shape: tuple[int, int],
    spacing: float,
    masks: bool,
) -> tuple[np.ndarray, dict[str, np.ndarray], tuple[int, int], Grid]:
    body = _body_at(body, settings.kev)
    projection = view_geometry(settings.view)
    grid, first = _lattice_grid(projection, centre, shape, spacing)
    clip = _clip(body, settings.region, settings.view, settings.laterality, grid, projection)
    if not masks or min(shape) < 96:
        integral, found = _project_all(body, settings.exclude, grid, projection, masks, clip)
        return integral, found, first, grid
    # Large smooth structures (skin, fat, muscle, organs, cartilage and tendons: soft-tissue
    # contrast only) vary slowly except at their edges:
    # project them on the lattice of twice the spacing and interpolate; bones, vessels, devices
    # and findings are projected at full resolution.
    sharp = body.categories() - SMOOTH_CATEGORIES
    integral, found = project(
        body.scene(settings.exclude, frozenset(sharp)), grid, projection.direction, None, clip
    )
    half_first = (first[0] // 2 - 1, first[1] // 2 - 1)
    half_shape = (shape[0] // 2 + 3, shape[1] // 2 + 3)
    depth = float(centre @ projection.direction)
    half_grid = Grid(
        projection.row_dir * half_first[0] * 2 * spacing
        + projection.col_dir * half_first[1] * 2 * spacing
        + projection.direction * depth,
        projection.row_dir * 2 * spacing,
        projection.col_dir * 2 * spacing,
        half_shape,
    )
    half_clip = _clip(
        body, settings.region, settings.view, settings.laterality, half_grid, projection
    )
    smooth, smooth_masks = project(
        body.scene(settings.exclude, SMOOTH_CATEGORIES),
        half_grid,
        projection.direction,
        None,
        half_clip,
    )
    rows = (first[0] + np.arange(shape[0])) / 2.0 - half_first[0]
    cols = (first[1] + np.arange(shape[1])) / 2.0 - half_first[1]
    integral += _bilinear(smooth, rows, cols)
    near_r = np.clip(np.round(rows).astype(np.int64), 0, half_shape[0] - 1)
    near_c = np.clip(np.round(cols).astype(np.int64), 0, half_shape[1] - 1)
    if smooth_masks:
        names = list(smooth_masks)
        stacked = np.stack([smooth_masks[n] for n in names])[:, near_r][:, :, near_c]
        visible = np.asarray(stacked.any(axis=(1, 2)))
        found.update({n: stacked[i] for i, n in enumerate(names) if visible[i]})
    return integral, found, first, grid


def render_window(
    body: Body, settings: XraySettings, centre: np.ndarray, shape: tuple[int, int]
) -> PhantomImage:
    """Render any window of the detector plane that `settings` define, centred (as near as
    the lattice allows) on `centre` (mm). Windows that overlap agree exactly where they overlap."""
    spacing = settings.spacing_mm
    spec = REGIONS[settings.region]
    padded = (shape[0] + 2 * MARGIN_PX, shape[1] + 2 * MARGIN_PX)
    integral, masks, first, grid = _primary_and_masks(body, settings, centre, padded, spacing, True)
    scatter, background = _scatter(body, settings, grid, padded)
    lo, hi = settings.window
    gray = _develop(
        integral,
        (spec.scatter * settings.grid * scatter).astype(np.float64),
        background.astype(np.float64),
        np.array(
            [
                settings.photons,
                settings.compression,
                settings.typical,
                lo,
                hi,
                TONE_STEEPNESS,
                UNSHARP_WEIGHT,
            ]
        ),
        np.uint64(settings.noise_seed % 2**63),
        first[0],
        first[1],
        _gaussian_kernel(DETECTOR_BLUR_PX),
        _gaussian_kernel(UNSHARP_SIGMA_PX),
    )
    crop = (slice(MARGIN_PX, MARGIN_PX + shape[0]), slice(MARGIN_PX, MARGIN_PX + shape[1]))
    out_masks = {name: m[crop] for name, m in masks.items() if m[crop].any()}
    window_centre = (
        grid.corner
        + (MARGIN_PX + (shape[0] - 1) / 2.0) * grid.row_step
        + (MARGIN_PX + (shape[1] - 1) / 2.0) * grid.col_step
    )
    meta = {
        "lattice_origin": [first[0] + MARGIN_PX, first[1] + MARGIN_PX],
        "window_centre_mm": [round(float(v), 3) for v in window_centre],
    }
    return PhantomImage(gray[crop].astype(np.float32), out_masks, (spacing, spacing), meta)


def scatter_source(integral: np.ndarray) -> np.ndarray:
    """Scattered fluence generated along each ray and escaping towards the detector: the share
    of the beam that interacts, (1 - exp(-integral)), attenuated over about half the path."""
    return (1.0 - np.exp(-integral)) * np.exp(-0.5 * integral)


def _scatter(
    body: Body, settings: XraySettings, grid: Grid, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Scatter fluence (the primary blurred over ~30 mm) and the large-scale attenuation (the
    line integral blurred alike), computed on a coarse lattice that is itself anchored at the
    body origin, so both agree between windows."""
    body = _body_at(body, settings.kev)
    coarse = settings.spacing_mm * COARSE_FACTOR
    sigma_px = SCATTER_SIGMA_MM * body.scale / coarse
    pad = int(np.ceil(4.0 * sigma_px)) + 2
    projection = view_geometry(settings.view)
    first_fine = (
        grid.corner @ projection.row_dir / settings.spacing_mm,
        grid.corner @ projection.col_dir / settings.spacing_mm,
    )
    c_first = (
        int(np.floor(first_fine[0] / COARSE_FACTOR)) - pad,
        int(np.floor(first_fine[1] / COARSE_FACTOR)) - pad,
    )
    c_shape = (shape[0] // COARSE_FACTOR + 2 * pad + 2, shape[1] // COARSE_FACTOR + 2 * pad + 2)
    depth = float(grid.corner @ projection.direction)
    c_grid = Grid(
        projection.row_dir * c_first[0] * coarse
        + projection.col_dir * c_first[1] * coarse
        + projection.direction * depth,
        projection.row_dir * coarse,
        projection.col_dir * coarse,
        c_shape,
    )
    clip = _clip(body, settings.region, settings.view, settings.laterality, c_grid, projection)
    integral, _ = _project_all(body, settings.exclude, c_grid, projection, False, clip)
    blurred = ndimage.gaussian_filter(
        scatter_source(integral), sigma_px, mode="nearest", truncate=4.0
    )
    # Metal and other extreme attenuation must not darken its surroundings: cap it first.
    capped = np.minimum(integral, 1.8 * settings.typical + 1.0)
    background = ndimage.gaussian_filter(capped, sigma_px, mode="nearest", truncate=4.0)
    rows = (first_fine[0] + np.arange(shape[0])) / COARSE_FACTOR - c_first[0]
    cols = (first_fine[1] + np.arange(shape[1])) / COARSE_FACTOR - c_first[1]
    return _bilinear(blurred, rows, cols), _bilinear(background, rows, cols)


def _bilinear(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample `values` at fractional (row, column) grid positions, clamping at the edges."""
    out = values
    for axis, positions in ((0, rows), (1, cols)):
        size = out.shape[axis]
        clipped = np.clip(positions, 0.0, size - 1.0)
        low = np.minimum(np.floor(clipped).astype(np.int64), size - 2)
        frac = clipped - low
        if axis == 0:
            out = out[low] * (1.0 - frac)[:, None] + out[low + 1] * frac[:, None]
        else:
            out = out[:, low] * (1.0 - frac)[None, :] + out[:, low + 1] * frac[None, :]
    return out


def region_settings(
    body: Body,
    region: str,
    view: str,
    laterality: str | None,
    size: int,
    noise_seed: int,
    exclude: frozenset[str] = frozenset(),
) -> XraySettings:
    """Settings of a regional radiograph: spacing from the region's field, and exposure and
    window set from a coarse look at the region, as automatic exposure control would."""
    _check(region, view, laterality)
    if view == "lateral" and region in _TRUNK_REGIONS:
        exclude = exclude | arm_structures(body)
    spacing = pixel_spacing(body, region, size)
    spec = REGIONS[region]
    technique = spec.lateral if view == "lateral" else None
    kev, grid = (technique.kev, technique.grid) if technique else (EFFECTIVE_KEV, 1.0)
    compression = technique.compression if technique else spec.compression
    floor = technique.floor if technique else spec.floor
    probe = XraySettings(
        region,
        view,
        laterality,
        spacing * size / PROBE_PX,
        (0.0, 1.0),
        noise_seed,
        exclude,
        kev=kev,
        grid=grid,
    )
    centre = region_centre(body, region, laterality)
    integral, _, _, _ = _primary_and_masks(
        body, probe, centre, (PROBE_PX, PROBE_PX), probe.spacing_mm, False
    )
    inside = integral[integral > 0.05]
    typical = float(np.median(inside)) if inside.size else 0.0
    sigma_px = SCATTER_SIGMA_MM * body.scale / probe.spacing_mm
    capped = np.minimum(integral, 1.8 * typical + 1.0)
    background = ndimage.gaussian_filter(capped, sigma_px, mode="nearest")
    scatter = ndimage.gaussian_filter(scatter_source(integral), sigma_px, mode="nearest")
    log_signal = -np.log(np.exp(-integral) + spec.scatter * grid * scatter)
    log_signal -= compression * (background - typical)
    in_body = log_signal[integral > 0.05] if inside.size else log_signal.ravel()
    low, high = np.percentile(in_body, [15.0, 99.8])
    spread = max(float(high - low), 0.3)
    lo = max(float(low) - floor * spread, 0.02)  # air stays black
    hi = float(high) + 0.04 * spread
    photons = spec.photons * float(np.exp(min(typical, 9.0)))
    window = (lo, max(hi, lo + 0.5))
    return XraySettings(
        region,
        view,
        laterality,
        spacing,
        window,
        noise_seed,
        exclude,
        photons,
        typical,
        compression,
        kev,
        grid,
    )


_TRUNK_REGIONS = frozenset(
    {"chest", "abdomen", "pelvis", "cervical_spine", "thoracic_spine", "lumbar_spine"}
)
_ARM_PARTS = re.compile(
    r"(left|right)_(arm_soft_tissue|humerus|radius|ulna|scaphoid|lunate|triquetrum|pisiform|"
    r"trapezium|trapezoid|capitate|hamate|metacarpal_\d|(proximal|middle|distal)_phalanx_\d)"
)


def arm_structures(body: Body) -> frozenset[str]:
    """Names of both arms' structures: laterals of the trunk are taken with the arms raised."""
    return frozenset(name for name in body.structure_names() if _ARM_PARTS.fullmatch(name))


def add_side_marker(image: PhantomImage, letter: str, corner: str) -> PhantomImage:
    """Burn a lead side marker ("L" or "R") into a corner ("top_left" or "top_right")."""
    height, width = image.image.shape
    size = max(10, int(round(min(height, width) * 0.075)))
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=size)
    margin = max(3, width // 40)
    box = draw.textbbox((0, 0), letter, font=font)
    x = margin if corner == "top_left" else width - margin - (box[2] - box[0])
    draw.text((x - box[0], margin - box[1]), letter, fill=255, font=font)
    mask = np.asarray(canvas) > 96
    pixels = image.image.copy()
    pixels[mask] = np.maximum(pixels[mask], 0.96)
    masks = dict(image.masks)
    masks["side_marker"] = mask
    return PhantomImage(
        pixels, masks, image.pixel_spacing_mm, {**image.meta, "side_marker": letter}
    )


def render_xray(
    body: Body,
    region: str,
    view: str,
    laterality: str | None,
    rng: np.random.Generator,
    size: int = 256,
    *,
    marker: bool = True,
) -> PhantomImage:
    """A regional radiograph of `body`, `size` x `size` pixels, with masks of every visible
    structure. `rng` draws the noise seed (and nothing else)."""
    if size < 32 or size > 4096:
        raise ValueError(f"image size must be 32-4096 pixels, got {size}")
    settings = region_settings(body, region, view, laterality, size, int(rng.integers(2**31)))
    image = render_window(body, settings, region_centre(body, region, laterality), (size, size))
    meta = {
        **image.meta,
        "region": region,
        "view": view,
        "laterality": laterality,
        "window": [round(v, 5) for v in settings.window],
        "noise_seed": settings.noise_seed,
        "field_mm": round(size * settings.spacing_mm, 2),
    }
    image = PhantomImage(image.image, image.masks, image.pixel_spacing_mm, meta)
    if marker:
        # The marker names the side imaged (midline images: the patient's left, on image right).
        letter = "R" if laterality == "right" else "L"
        corner = "top_left" if (letter == "R") == (view != "lateral") else "top_right"
        image = add_side_marker(image, letter, corner)
    return image
