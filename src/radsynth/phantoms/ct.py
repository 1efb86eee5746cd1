"""Computed tomography: axial slices of the phantom body in Hounsfield units.

A slice is sampled from the body's exact planar sections (`raycast.section`) and imaged the way a
scanner reconstructs it:

1. Geometry: an axial plane at the region's level (ventricles, heart/carina, L1-L2, femoral heads,
   patellofemoral joint), centred on the patient, with a display field of view fitted to the body.
2. Partial volume: the plane is sampled on a grid twice as fine as the display, in three
   sub-sections spread over the slice thickness, and the HU values are averaged.
3. The patient table (or the head holder) under the patient, as scanners show it.
4. Reconstruction: a small Gaussian blur (the kernel), then correlated noise (white noise shaped
   by a ramp-times-Gaussian noise power spectrum, like filtered back-projection), larger in
   larger patients; pixels outside the reconstruction circle are set to -1000 HU.
5. Display: a window (level, width in HU) maps HU to [0, 1].

Display convention (radiological): the slice is viewed from the feet, the patient's right on the
image left and anterior at the top. Body coordinates are x to the patient's left, y anterior,
z up (mm).

The sampling helpers `SlicePlane` and `sample_section` are shared with the MRI renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from radsynth.phantoms.body import Body
from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.materials import MATERIAL_IDS, MATERIAL_NAMES, MATERIALS
from radsynth.phantoms.raycast import Grid, PackedScene, section

CT_REGIONS: tuple[str, ...] = ("head", "chest", "abdomen", "pelvis", "knee")
CT_WINDOWS: dict[str, tuple[float, float]] = {  # (level, width) in HU
    "brain": (40.0, 80.0),
    "soft_tissue": (50.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
}
_DEFAULT_WINDOWS: dict[str, tuple[str, ...]] = {  # one is drawn from the rng
    "head": ("brain",),
    "chest": ("lung", "soft_tissue"),
    "abdomen": ("soft_tissue",),
    "pelvis": ("soft_tissue",),
    "knee": ("bone",),
}
AXIAL_ROW_DIR = np.array([0.0, -1.0, 0.0])  # rows run anterior -> posterior
AXIAL_COL_DIR = np.array([1.0, 0.0, 0.0])  # columns run patient's right -> left
SUPERSAMPLE = 2  # fine samples per display pixel along each axis (partial volume)
AIR_HU = -1000.0


@dataclass(frozen=True)
class SlicePlane:
    """A square imaging plane: centre (mm, body coordinates), unit row and column directions in
    display orientation, field of view (mm) and slice thickness (mm)."""

    center: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    fov_mm: float
    thickness_mm: float

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    def shifted(self, offset_mm: float) -> SlicePlane:
        """The same plane moved `offset_mm` along its normal."""
        return SlicePlane(
            self.center + offset_mm * self.normal,
            self.row_dir,
            self.col_dir,
            self.fov_mm,
            self.thickness_mm,
        )


def sample_section(
    scene: PackedScene, plane: SlicePlane, size: int, values: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-material `values` (indexed by material id) averaged over each voxel: on a grid
    `SUPERSAMPLE` times finer than the display (shape size*SUPERSAMPLE squared) and, for a slice
    thicker than 0, over two sections at -thickness/4 and +thickness/4 (the midpoint rule over
    the slab). Structure masks are at display size: a structure fills at least half its voxel.
    """
    fine = size * SUPERSAMPLE
    spacing = plane.fov_mm / fine
    quarter = plane.thickness_mm / 4.0
    offsets = (-quarter, quarter) if quarter > 0.0 else (0.0,)
    total = np.zeros((fine, fine), dtype=np.float64)
    counts: dict[str, np.ndarray] = {}
    for offset in offsets:
        grid = Grid.centred(
            plane.shifted(offset).center,
            plane.row_dir,
            plane.col_dir,
            (fine, fine),
            (spacing, spacing),
        )
        materials, fine_masks = section(scene, grid)
        total += values[materials]
        for name, mask in fine_masks.items():
            count = counts.setdefault(name, np.zeros((size, size), dtype=np.uint8))
            count += _block_count(mask)
    half = len(offsets) * SUPERSAMPLE**2 / 2.0
    masks = {name: count >= half for name, count in counts.items()}
    return total / len(offsets), {name: m for name, m in masks.items() if m.any()}


def _block_count(mask: np.ndarray) -> np.ndarray:
    """Number of True samples in each SUPERSAMPLE x SUPERSAMPLE block (uint8)."""
    flags = mask.view(np.uint8)
    count = np.zeros((mask.shape[0] // SUPERSAMPLE, mask.shape[1] // SUPERSAMPLE), np.uint8)
    for i in range(SUPERSAMPLE):
        for j in range(SUPERSAMPLE):
            count += flags[i::SUPERSAMPLE, j::SUPERSAMPLE]
    return count


def pool(image: np.ndarray, size: int) -> np.ndarray:
    """Mean of each SUPERSAMPLE x SUPERSAMPLE block: fine grid -> display grid."""
    return image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def body_outline(body: Body, center: np.ndarray, field_mm: float, n: int = 96) -> np.ndarray:
    """Boolean (n, n) mask of the body envelope on an axial plane through `center` covering
    `field_mm`, in display orientation (coarse: for fitting the field of view)."""
    grid = Grid.centred(center, AXIAL_ROW_DIR, AXIAL_COL_DIR, (n, n), (field_mm / n, field_mm / n))
    _, masks = section(body.scene(), grid, mask_structures=["body"])
    return masks.get("body", np.zeros((n, n), dtype=bool))


def fitted_axial_plane(
    body: Body,
    z_mm: float,
    x_mm: float,
    field_mm: float,
    margin: float,
    fov_range: tuple[float, float],
) -> tuple[SlicePlane, float]:
    """An axial plane at height `z_mm` centred on the body's outline near `x_mm`, with a field of
    view (mm) of the outline's larger extent times `margin`, clipped to `fov_range`.

    Returns the plane (thickness 0) and the body's water-equivalent diameter (mm)."""
    n = 96
    outline = body_outline(body, np.array([x_mm, 0.0, z_mm]), field_mm, n)
    if not outline.any():
        raise ValueError(
            f"the body does not reach the axial plane z = {z_mm:.0f} mm; use a smaller "
            "slice_offset_mm"
        )
    step = field_mm / n
    rows, cols = np.nonzero(outline)
    # Display rows run anterior -> posterior, columns right -> left.
    y_mid = -((rows.min() + rows.max()) / 2.0 - (n - 1) / 2.0) * step
    x_mid = x_mm + ((cols.min() + cols.max()) / 2.0 - (n - 1) / 2.0) * step
    extent = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) * step
    fov = float(np.clip(extent * margin, *fov_range))
    diameter = 2.0 * np.sqrt(outline.sum() * step * step / np.pi)
    center = np.array([x_mid, y_mid, z_mm])
    return SlicePlane(center, AXIAL_ROW_DIR, AXIAL_COL_DIR, fov, 0.0), float(diameter)


def _ct_plane(
    body: Body, region: str, rng: np.random.Generator, side: str | None = None
) -> tuple[SlicePlane, float]:
    """Scan plane of a CT region (slice thickness set) and the patient's diameter (mm); a knee
    on `side` (None: drawn)."""
    scale = body.scale
    if region == "knee":
        drawn = str(rng.choice(("left", "right")))  # drawn either way: the rest of the draw
        side = side or drawn  # stays as it was
        knee = body.landmark(f"{side}_knee")
        # The patella's centre lies about 42 mm (reference height) above the joint line.
        z = knee[2] + (42.0 + rng.uniform(-8.0, 6.0)) * scale
        center = np.array([knee[0], knee[1] + 10.0 * scale, z])
        return SlicePlane(center, AXIAL_ROW_DIR, AXIAL_COL_DIR, 160.0, 2.0), 120.0
    if region == "head":
        z = body.landmark("lateral_ventricles")[2] + rng.uniform(-6.0, 8.0) * scale
        plane, diameter = fitted_axial_plane(body, z, 0.0, 320.0, 1.0, (240.0, 240.0))
        return _with_thickness(plane, 5.0), diameter
    if region == "chest":
        low, high = body.landmark("heart_centre")[2], body.landmark("carina")[2]
        z = rng.uniform(low - 10.0 * scale, high)
    elif region == "abdomen":
        # Through the body of L2 (discs are not modelled), where liver and kidneys meet.
        z = body.landmark("l2_centre")[2] + rng.uniform(-10.0, 4.0) * scale
    else:  # pelvis: through the femoral heads
        z = body.landmark("right_hip")[2] + rng.uniform(-6.0, 6.0) * scale
    plane, diameter = fitted_axial_plane(body, z, 0.0, 700.0, 1.08, (340.0, 500.0))
    return _with_thickness(plane, 3.0), diameter


def _with_thickness(plane: SlicePlane, thickness_mm: float) -> SlicePlane:
    return SlicePlane(plane.center, plane.row_dir, plane.col_dir, plane.fov_mm, thickness_mm)


def _hu_table(body: Body) -> np.ndarray:
    """HU per material id; bone CT numbers follow the body's bone density (`mu_scale`)."""
    hu = np.array([MATERIALS[name].hu for name in MATERIAL_NAMES], dtype=np.float64)
    for name, factor in body.mu_scale.items():
        hu[MATERIAL_IDS[name]] *= factor
    return hu


def _add_support(hu: np.ndarray, region: str, spacing: float, body_mask: np.ndarray) -> None:
    """Paint the patient table (trunk) or the head holder (head) below the patient, in place."""
    if region == "knee" or not body_mask.any():
        return
    size = hu.shape[0]
    rows, cols = np.nonzero(body_mask)
    rr, cc = np.mgrid[0:size, 0:size].astype(np.float64)
    if region == "head":
        # A U-shaped holder cradling the back and sides of the head, 3 mm thick.
        r0, c0 = (rows.min() + rows.max()) / 2.0, (cols.min() + cols.max()) / 2.0
        radius = (cols.max() - cols.min()) / 2.0 + 18.0 / spacing
        dist = np.hypot(rr - r0 + 8.0 / spacing, cc - c0)
        shell = (np.abs(dist - radius) < 1.5 / spacing) & (rr > r0 - 10.0 / spacing)
        hu[shell & ~body_mask] = 120.0
        return
    # Carbon-fibre table: a shallow cradle with a foam core, just behind the patient's back
    # (the lowest body row near the midline; arms at the sides may reach lower).
    c0 = (cols.min() + cols.max()) / 2.0
    central = np.abs(cols - c0) < 0.2 * (cols.max() - cols.min())
    top = rows[central].max() + 2.0 / spacing
    x = (cc - c0) * spacing
    depth = (rr - top) * spacing + 0.0006 * x**2  # mm below the curved top surface
    inside = np.abs(x) < 230.0
    hu[inside & (depth >= 0) & (depth < 2.0)] = 250.0
    hu[inside & (depth >= 2.0) & (depth < 38.0)] = -920.0
    hu[inside & (depth >= 38.0) & (depth < 40.0)] = 250.0


def ct_noise(
    rng: np.random.Generator, size: int, sigma_hu: float, peak_fraction: float = 0.3
) -> np.ndarray:
    """Correlated CT noise (HU): white noise shaped by a filtered-back-projection noise power
    spectrum, |f| x Gaussian, peaking at `peak_fraction` of the Nyquist frequency; standard
    deviation `sigma_hu`."""
    white = rng.standard_normal((size, size))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    radius = np.hypot(fy, fx) / 0.5  # 1 at Nyquist
    # |f| exp(-f^2 / (2 s^2)) peaks at f = s; the square root of the NPS shapes the amplitude.
    shaping = np.sqrt(radius * np.exp(-(radius**2) / (2.0 * peak_fraction**2)))
    noise = np.fft.irfft2(np.fft.rfft2(white) * shaping, s=(size, size))
    return noise * (sigma_hu / max(float(noise.std()), 1e-12))


def _noise_sigma(region: str, diameter_mm: float, rng: np.random.Generator) -> float:
    """Noise (HU) in soft tissue: head scans use a higher dose for low-contrast brain; in the trunk
    the noise grows with the patient's diameter (fewer photons through more tissue)."""
    jitter = rng.uniform(0.85, 1.15)
    if region == "head":
        return 4.5 * jitter
    if region == "knee":
        return 9.0 * jitter
    return float(np.clip(12.0 * (diameter_mm / 300.0) ** 1.5, 9.0, 24.0)) * jitter


@lru_cache(maxsize=8)
def _outside_circle(size: int) -> np.ndarray:
    """Pixels outside the reconstruction circle inscribed in the square image (read-only)."""
    rr, cc = np.mgrid[0:size, 0:size]
    outside = np.hypot(rr - (size - 1) / 2.0, cc - (size - 1) / 2.0) > size / 2.0
    outside.flags.writeable = False
    return outside


def _check_region(region: str) -> None:
    if region not in CT_REGIONS:
        raise ValueError(f"unknown CT region {region!r}; choose one of {', '.join(CT_REGIONS)}")


def _ct_slice(
    body: Body,
    region: str,
    rng: np.random.Generator,
    size: int,
    slice_offset_mm: float,
    side: str | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], SlicePlane, float]:
    """HU image, masks, the plane and the noise sigma of one CT slice."""
    _check_region(region)
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    # 1. Geometry
    plane, diameter = _ct_plane(body, region, rng, side)
    plane = plane.shifted(slice_offset_mm)
    spacing = plane.fov_mm / size
    # 2. Partial-volume HU of the anatomy
    fine_hu, masks = sample_section(body.scene(), plane, size, _hu_table(body))
    hu = pool(fine_hu, size)
    # 3. Patient support
    body_mask = masks.get("body", np.zeros((size, size), dtype=bool))
    _add_support(hu, region, spacing, body_mask)
    # 4. Reconstruction kernel blur and correlated noise
    hu = ndimage.gaussian_filter(hu, 0.7 / spacing if region != "knee" else 0.4 / spacing)
    sigma = _noise_sigma(region, diameter, rng)
    hu = hu + ct_noise(rng, size, sigma)
    outside = _outside_circle(size)
    hu[outside] = AIR_HU
    hu = np.clip(hu, -1024.0, 3071.0).astype(np.float32)
    masks = {name: mask & ~outside for name, mask in masks.items() if (mask & ~outside).any()}
    return hu, masks, plane, sigma


def ct_hounsfield(
    body: Body,
    region: str,
    rng: np.random.Generator,
    size: int = 256,
    slice_offset_mm: float = 0.0,
    side: str | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], tuple[float, float]]:
    """One axial CT slice of `region` before windowing.

    Returns the float32 (size, size) image in HU (display orientation), the boolean mask of every
    structure the slice cuts, and the pixel spacing (row, column) in mm. `slice_offset_mm` moves
    the slice up (+) or down (-) from the region's standard level.
    """
    hu, masks, plane, _ = _ct_slice(body, region, rng, size, slice_offset_mm, side)
    spacing = plane.fov_mm / size
    return hu, masks, (spacing, spacing)


def apply_window(hu: np.ndarray, level_hu: float, width_hu: float) -> np.ndarray:
    """Map HU to display grey levels in [0, 1] with a window of `level_hu` and `width_hu`."""
    if width_hu <= 0:
        raise ValueError(f"window width must be positive HU, got {width_hu}")
    low = level_hu - width_hu / 2.0
    return np.clip((hu - low) / width_hu, 0.0, 1.0).astype(np.float32)


def render_ct(
    body: Body,
    region: str,
    rng: np.random.Generator,
    size: int = 256,
    *,
    window: str | None = None,
    slice_offset_mm: float = 0.0,
    side: str | None = None,
) -> PhantomImage:
    """An axial CT slice of `region` ("head", "chest", "abdomen", "pelvis", "knee"; a knee on
    `side`, "left" or "right", drawn when None) displayed
    with a window preset of `CT_WINDOWS` (the region's usual one when `window` is None; for the
    chest lung or soft tissue, drawn from `rng`).

    The image is viewed from the feet (patient's right on the image left, anterior at the top);
    meta holds the window level and width (HU), slice height z (mm), field of view (mm), slice
    thickness (mm) and noise (HU).
    """
    _check_region(region)
    if window is not None and window not in CT_WINDOWS:
        raise ValueError(f"unknown CT window {window!r}; choose one of {', '.join(CT_WINDOWS)}")
    hu, masks, plane, sigma = _ct_slice(body, region, rng, size, slice_offset_mm, side)
    if window is None:
        window = str(rng.choice(_DEFAULT_WINDOWS[region]))
    level, width = CT_WINDOWS[window]
    spacing = plane.fov_mm / size
    meta = {
        "modality": "CT",
        "region": region,
        "view": "axial",
        "window": window,
        "window_level_hu": level,
        "window_width_hu": width,
        "slice_z_mm": float(plane.center[2]),
        "slice_center_mm": [float(v) for v in plane.center],
        "slice_thickness_mm": plane.thickness_mm,
        "fov_mm": plane.fov_mm,
        "noise_sigma_hu": sigma,
        "orientation": "axial, viewed from the feet: patient's right on image left, anterior up",
    }
    image = apply_window(hu, level, width)
    # Outside the reconstruction circle there is no data: black in every window.
    image[_outside_circle(size)] = 0.0
    return PhantomImage(image, masks, (spacing, spacing), meta)
