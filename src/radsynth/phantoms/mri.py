"""Magnetic resonance imaging: spin-echo slices of the phantom body.

The signal path follows an MR scanner:

1. Geometry: an axial, sagittal or coronal plane through the region (head, knee, lumbar spine,
   abdomen) in display orientation.
2. Contrast: each material's spin-echo signal S = PD (1 - exp(-TR/T1)) exp(-TE/T2) with the
   sequence's repetition and echo times (ms), averaged over each pixel's area and the slice
   thickness (partial volume). Flowing blood and cortical bone have almost no signal.
3. Receive-coil shading: a smooth multiplicative bias field (a low-order polynomial, +-15-25 %).
4. k-space sampling: the fine object is Fourier transformed and only the acquired frequencies are
   kept (all of them along the readout, a fraction along the phase-encoding direction), which
   gives the blur and the Gibbs ringing at sharp edges of a real acquisition.
5. Rician noise: complex Gaussian noise added to the complex image, then the magnitude; the
   background becomes Rayleigh-distributed like a real magnitude image.
6. Display: intensities divided by a robust (99th) percentile of the body's signal, clipped to
   [0, 1].

Display conventions: axial slices viewed from the feet (patient's right on the image left,
anterior up); sagittal slices with anterior on the image left and head up; coronal slices with
the patient's right on the image left and head up. Body coordinates: x to the patient's left,
y anterior, z up (mm).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from radsynth.phantoms.body import Body
from radsynth.phantoms.ct import (
    AXIAL_COL_DIR,
    AXIAL_ROW_DIR,
    SUPERSAMPLE,
    SlicePlane,
    fitted_axial_plane,
    sample_section,
)
from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.materials import MATERIAL_NAMES, MATERIALS

MRI_VIEWS: dict[str, tuple[str, ...]] = {
    "head": ("axial", "sagittal"),
    "knee": ("sagittal", "coronal"),
    "spine": ("sagittal",),
    "abdomen": ("axial",),
}
MRI_SEQUENCES: dict[str, tuple[float, float]] = {  # (TR, TE) in ms, spin echo
    "t1": (500.0, 15.0),
    "t2": (4000.0, 100.0),
    "pd": (3000.0, 20.0),
}
SAGITTAL_ROW_DIR = np.array([0.0, 0.0, -1.0])  # rows run head -> feet
SAGITTAL_COL_DIR = np.array([0.0, -1.0, 0.0])  # columns run anterior -> posterior
CORONAL_COL_DIR = np.array([1.0, 0.0, 0.0])  # columns run patient's right -> left
_ORIENTATION = {
    "axial": "axial, viewed from the feet: patient's right on image left, anterior up",
    "sagittal": "sagittal: anterior on image left, superior up",
    "coronal": "coronal: patient's right on image left, superior up",
}


def spin_echo_signal(tr_ms: float, te_ms: float) -> np.ndarray:
    """Spin-echo signal PD (1 - exp(-TR/T1)) exp(-TE/T2) of every material (indexed by material
    id), for repetition time `tr_ms` and echo time `te_ms` in ms; 0 where T1 or T2 is 0."""
    signal = np.zeros(len(MATERIAL_NAMES))
    for i, name in enumerate(MATERIAL_NAMES):
        m = MATERIALS[name]
        if m.t1_ms > 0.0 and m.t2_ms > 0.0:
            signal[i] = m.pd * (1.0 - np.exp(-tr_ms / m.t1_ms)) * np.exp(-te_ms / m.t2_ms)
    return signal


def _head_plane(body: Body, view: str, rng: np.random.Generator) -> SlicePlane:
    scale = body.scale
    head = body.landmark("head_centre")
    if view == "axial":
        z = body.landmark("lateral_ventricles")[2] + rng.uniform(-6.0, 10.0) * scale
        center = np.array([head[0], head[1], z])
        return SlicePlane(center, AXIAL_ROW_DIR, AXIAL_COL_DIR, 240.0, 5.0)
    # Midline sagittal: brain, brainstem and the upper neck.
    center = head + np.array([rng.uniform(-2.0, 2.0), 0.0, -25.0 * scale])
    return SlicePlane(center, SAGITTAL_ROW_DIR, SAGITTAL_COL_DIR, 250.0, 4.0)


def _knee_plane(
    body: Body, view: str, rng: np.random.Generator, side: str | None = None
) -> tuple[SlicePlane, dict[str, Any]]:
    scale = body.scale
    drawn = str(rng.choice(("left", "right")))  # drawn either way: the rest of the draw stays
    side = side or drawn
    knee = body.landmark(f"{side}_knee")
    facts: dict[str, Any] = {"side": side}
    if view == "coronal":
        center = knee + np.array([0.0, -6.0 * scale, 10.0 * scale])
        return SlicePlane(center, SAGITTAL_ROW_DIR, CORONAL_COL_DIR, 160.0, 3.0), facts
    # Sagittal through the lateral or medial femoral condyle (about 18 mm off the centre at the
    # reference height); the lateral side of the left knee is towards +x.
    compartment = str(rng.choice(("lateral", "medial")))
    outward = np.sign(knee[0]) if compartment == "lateral" else -np.sign(knee[0])
    center = knee + np.array([outward * 18.0 * scale, 0.0, 10.0 * scale])
    facts["compartment"] = compartment
    return SlicePlane(center, SAGITTAL_ROW_DIR, SAGITTAL_COL_DIR, 160.0, 3.0), facts


def _mri_plane(
    body: Body, region: str, view: str, rng: np.random.Generator, side: str | None = None
) -> tuple[SlicePlane, dict[str, Any]]:
    """The imaging plane of a region and view, and region-specific facts for the meta."""
    scale = body.scale
    if region == "head":
        return _head_plane(body, view, rng), {}
    if region == "knee":
        return _knee_plane(body, view, rng, side)
    if region == "spine":
        # Midline sagittal of the lumbar spine, centred a little in front of L3.
        center = body.landmark("l3_centre") + np.array([0.0, 25.0 * scale, 0.0])
        center[0] = rng.uniform(-1.5, 1.5)
        return SlicePlane(center, SAGITTAL_ROW_DIR, SAGITTAL_COL_DIR, 300.0 * scale, 4.0), {}
    z = body.landmark("l2_centre")[2] + rng.uniform(-10.0, 4.0) * scale
    plane, _ = fitted_axial_plane(body, z, 0.0, 700.0, 1.05, (340.0, 460.0))
    return SlicePlane(plane.center, plane.row_dir, plane.col_dir, plane.fov_mm, 6.0), {}


def bias_field(rng: np.random.Generator, size: int, amplitude: float) -> np.ndarray:
    """A smooth multiplicative receive-coil field 1 + p(u, v), p a random second-order polynomial
    over the image scaled to a peak deviation of `amplitude` (e.g. 0.2 for +-20 %)."""
    v, u = np.meshgrid(np.linspace(-1.0, 1.0, size), np.linspace(-1.0, 1.0, size), indexing="ij")
    terms = np.stack([u, v, u * v, u**2 - 1.0 / 3.0, v**2 - 1.0 / 3.0])
    poly = np.tensordot(rng.normal(0.0, 1.0, len(terms)), terms, axes=1)
    return 1.0 + amplitude * poly / max(float(np.abs(poly).max()), 1e-12)


def kspace_sample(
    fine: np.ndarray, size: int, phase_fraction: float, phase_axis: int
) -> np.ndarray:
    """The complex (size, size) image an MR scanner reconstructs from the object `fine` (sampled
    on a grid SUPERSAMPLE times finer): the central size x size frequencies, of which only the
    central `phase_fraction` along `phase_axis` are acquired (the rest zero-filled)."""
    spectrum = np.fft.fftshift(np.fft.fft2(fine))
    start = (fine.shape[0] - size) // 2
    kept = spectrum[start : start + size, start : start + size]
    freq = np.abs(np.arange(size) - size // 2)
    acquired = freq <= phase_fraction * size / 2.0
    shape = (size, 1) if phase_axis == 0 else (1, size)
    kept = kept * acquired.reshape(shape)
    return np.fft.ifft2(np.fft.ifftshift(kept)) / SUPERSAMPLE**2


def _check_arguments(region: str, sequence: str, view: str | None) -> None:
    if region not in MRI_VIEWS:
        raise ValueError(f"unknown MRI region {region!r}; choose one of {', '.join(MRI_VIEWS)}")
    if sequence not in MRI_SEQUENCES:
        raise ValueError(
            f"unknown MRI sequence {sequence!r}; choose one of {', '.join(MRI_SEQUENCES)}"
        )
    if view is not None and view not in MRI_VIEWS[region]:
        raise ValueError(
            f"MRI of the {region} is not acquired in the {view!r} view; choose one of "
            f"{', '.join(MRI_VIEWS[region])} (or leave the view open to draw one)"
        )


def render_mri(
    body: Body,
    region: str,
    rng: np.random.Generator,
    size: int = 256,
    *,
    sequence: str = "t1",
    view: str | None = None,
    slice_offset_mm: float = 0.0,
    side: str | None = None,
) -> PhantomImage:
    """A spin-echo MR slice of `region` ("head", "knee", "spine", "abdomen") with `sequence`
    "t1" (TR 500 / TE 15 ms), "t2" (TR 4000 / TE 100 ms) or "pd" (TR 3000 / TE 20 ms).

    `view` is one of the region's `MRI_VIEWS` (drawn from `rng` when None); `slice_offset_mm`
    moves the slice along its normal (mm). The image is normalised to the 99th percentile of the
    body's signal; meta holds the sequence timing (ms), view, plane, SNR and bias amplitude.
    """
    # 1. Check inputs and place the slice
    _check_arguments(region, sequence, view)
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    if view is None:
        view = str(rng.choice(MRI_VIEWS[region]))
    plane, facts = _mri_plane(body, region, view, rng, side)
    plane = plane.shifted(slice_offset_mm)
    # 2. Tissue contrast with partial volume, on the fine grid
    tr, te = MRI_SEQUENCES[sequence]
    fine, masks = sample_section(body.scene(), plane, size, spin_echo_signal(tr, te))
    # 3. Coil shading (smooth, so it may be applied on the fine grid before sampling)
    amplitude = rng.uniform(0.15, 0.25)
    fine = fine * bias_field(rng, fine.shape[0], amplitude)
    # 4. k-space truncation: blur and Gibbs ringing
    phase_fraction = rng.uniform(0.7, 0.95)
    phase_axis = 1 if view in ("axial", "coronal") else 0
    image = kspace_sample(fine, size, phase_fraction, phase_axis)
    # 5. Rician noise relative to the typical tissue signal
    body_mask = masks.get("body", np.ones((size, size), dtype=bool))
    tissue = np.abs(image[body_mask])
    reference = float(np.percentile(tissue, 90)) if tissue.size else 1.0
    snr = rng.uniform(20.0, 30.0)
    sigma = reference / snr
    noise = rng.normal(0.0, sigma, (2, size, size))
    magnitude = np.abs(image + noise[0] + 1j * noise[1])
    # 6. Normalise to a robust percentile of the body's signal
    top = float(np.percentile(magnitude[body_mask], 99.0)) if body_mask.any() else 1.0
    display = np.clip(magnitude / max(top, 1e-12), 0.0, 1.0).astype(np.float32)
    spacing = plane.fov_mm / size
    meta: dict[str, Any] = {
        "modality": "MR",
        "region": region,
        "view": view,
        "sequence": sequence,
        "repetition_time_ms": tr,
        "echo_time_ms": te,
        "slice_center_mm": [float(v) for v in plane.center],
        "slice_z_mm": float(plane.center[2]),
        "slice_thickness_mm": plane.thickness_mm,
        "fov_mm": plane.fov_mm,
        "snr": snr,
        "bias_amplitude": amplitude,
        "phase_fraction": phase_fraction,
        "orientation": _ORIENTATION[view],
        **facts,
    }
    return PhantomImage(display, masks, (spacing, spacing), meta)
