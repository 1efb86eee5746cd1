"""Reading one 2-D slice of a NIfTI (or Analyze) volume with nibabel.

An anatomical axis ("axial", "coronal", "sagittal") is found from the affine, and the slice is
laid out as radiologists view it: axial and coronal with the patient's right on the image's
left and anterior (axial) or superior (coronal) at the top; sagittal with anterior on the left
and superior at the top. An integer axis slices the stored voxel array as it is, without
reorientation. Values are the scaled data (scl_slope/scl_inter applied) as float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import io_orientation

from radsynth.io.errors import ImageReadError
from radsynth.io.reader import (
    DEFAULT_MAX_PIXELS,
    Axis,
    MedicalImage,
    check_frame,
    check_pixels,
    check_size,
)

# RAS world axis (0 = x right, 1 = y anterior, 2 = z superior) across which each plane is cut.
PLANE_NORMAL = {"sagittal": 0, "coronal": 1, "axial": 2}
# More voxels in one volume than this is a corrupt header (4 GB of float32).
MAX_VOXELS = 1_000_000_000


def read_nifti(
    path: str | Path,
    *,
    slice_index: int | None = None,
    axis: Axis = "axial",
    volume: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> MedicalImage:
    """Read one slice of a 3-D (or, with `volume`, 4-D) NIfTI file.

    `slice_index` counts along the chosen axis in RAS+ order (inferior to superior for axial,
    posterior to anterior for coronal, the patient's left to right for sagittal); default: the
    middle slice. Pixel spacing comes from the header's voxel sizes (mm).
    """
    path = Path(path)
    image = _load(path)
    shape = tuple(int(n) for n in image.shape)
    if not 2 <= len(shape) <= 4 or 0 in shape:
        raise ImageReadError(path, f"has shape {shape}; radsynth reads 2-D, 3-D or 4-D NIfTI")
    _check_volume(path, image, shape, max_pixels)
    n_volumes = shape[3] if len(shape) == 4 else 1
    volume_index = check_frame(path, volume, n_volumes, what="volumes (4-D NIfTI)")
    proxy = image.dataobj
    try:
        data = np.asarray(proxy[..., volume_index] if len(shape) == 4 else proxy[...])
    except (OSError, ValueError, EOFError, MemoryError) as error:
        raise ImageReadError(path, f"is a truncated or corrupt NIfTI file ({error!r})") from None
    data = data.reshape(data.shape + (1,) * (3 - data.ndim)) if data.ndim < 3 else data
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3]) + (1.0,) * 3
    slab, spacing, n_slices, index = _take_slice(path, data, image.affine, zooms, axis, slice_index)
    check_size(path, slab.shape[0], slab.shape[1], max_pixels)
    pixels = check_pixels(path, slab)
    header = image.header
    attributes: dict[str, Any] = {
        "format": "NIfTI-2" if isinstance(image, nib.Nifti2Image) else "NIfTI-1",
        "shape": list(shape),
        "axis": axis,
        "volume": volume_index,
        "datatype": str(header.get_data_dtype()),
    }
    description = bytes(header.get("descrip", b"")).split(b"\0")[0].decode("latin-1").strip()
    if description:
        attributes["descrip"] = description
    return MedicalImage(
        pixels=pixels,
        path=path,
        format="nifti",
        modality=None,
        pixel_spacing_mm=spacing,
        photometric="MONOCHROME2",
        bits_stored=int(np.dtype(header.get_data_dtype()).itemsize * 8),
        n_frames=n_slices,
        frame_index=index,
        window=_cal_window(header),
        attributes=attributes,
    )


def _load(path: Path) -> Any:
    try:
        image = nib.load(path)
    except (ImageFileError, OSError, ValueError, EOFError) as error:
        raise ImageReadError(path, f"is not a readable NIfTI file ({error})") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image | nib.AnalyzeImage):
        raise ImageReadError(path, f"is a {type(image).__name__}, not a NIfTI image")
    return image


def _check_volume(path: Path, image: Any, shape: tuple[int, ...], max_pixels: int) -> None:
    """Refuse absurd dimensions, and an uncompressed file shorter than its header says."""
    dims = (list(shape) + [1, 1])[:3]
    largest_plane = max(dims[0] * dims[1], dims[0] * dims[2], dims[1] * dims[2])
    if largest_plane > max_pixels or int(np.prod(dims)) > MAX_VOXELS:
        raise ImageReadError(
            path,
            f"declares an absurd size ({' x '.join(map(str, shape))} voxels); the header is "
            "probably corrupt, or raise max_pixels",
        )
    if path.name.lower().endswith(".nii"):
        itemsize = np.dtype(image.header.get_data_dtype()).itemsize
        needed = int(image.header.get_data_offset()) + int(np.prod(shape)) * itemsize
        if path.stat().st_size < needed:
            raise ImageReadError(
                path,
                f"is truncated: its header needs {needed:,} bytes, the file has "
                f"{path.stat().st_size:,}",
            )


def _take_slice(
    path: Path,
    data: np.ndarray,
    affine: np.ndarray,
    zooms: tuple[float, ...],
    axis: Axis,
    slice_index: int | None,
) -> tuple[np.ndarray, tuple[float, float] | None, int, int]:
    """Cut one slice; returns (pixels, (row, column) spacing in mm, number of slices, index)."""
    if isinstance(axis, int):
        if not 0 <= axis <= 2:
            raise ImageReadError(path, f"axis={axis} is not a voxel axis; use 0, 1 or 2")
        n_slices = data.shape[axis]
        index = _slice_number(path, slice_index, n_slices)
        rows, columns = [a for a in range(3) if a != axis]
        return np.take(data, index, axis=axis), _spacing(zooms, rows, columns), n_slices, index
    if axis not in PLANE_NORMAL:
        raise ImageReadError(path, f"axis={axis!r} is unknown; use axial, coronal, sagittal or 0-2")
    # Reorder and flip the voxel axes so that they run along RAS+ (x to the patient's right).
    orientation = io_orientation(affine)
    canonical = nib.orientations.apply_orientation(data, orientation)
    order = [int(a) for a in orientation[:, 0]]
    ras_zooms = [0.0, 0.0, 0.0]
    for voxel_axis, world_axis in enumerate(order):
        ras_zooms[world_axis] = zooms[voxel_axis]
    normal = PLANE_NORMAL[axis]
    n_slices = canonical.shape[normal]
    index = _slice_number(path, slice_index, n_slices)
    slab = np.take(canonical, index, axis=normal)  # the remaining two RAS axes, in order
    # Transpose so rows run along the later RAS axis; flip both so that rows go anterior or
    # superior to the top and columns put the patient's right (or anterior) on the left.
    pixels = slab.T[::-1, ::-1]
    rows, columns = [a for a in range(3) if a != normal][::-1]
    spacing = (ras_zooms[rows], ras_zooms[columns])
    valid = spacing if spacing[0] > 0 and spacing[1] > 0 else None
    return np.ascontiguousarray(pixels), valid, n_slices, index


def _spacing(zooms: tuple[float, ...], rows: int, columns: int) -> tuple[float, float] | None:
    spacing = (zooms[rows], zooms[columns])
    return spacing if spacing[0] > 0 and spacing[1] > 0 else None


def _slice_number(path: Path, slice_index: int | None, n_slices: int) -> int:
    if slice_index is None:
        return n_slices // 2
    if not 0 <= slice_index < n_slices:
        raise ImageReadError(
            path, f"slice_index={slice_index} is out of range: this axis has {n_slices} slices"
        )
    return slice_index


def _cal_window(header: Any) -> tuple[float, float] | None:
    """(centre, width) from cal_min/cal_max when the header sets a display range."""
    try:
        low, high = float(header["cal_min"]), float(header["cal_max"])
    except (KeyError, ValueError, TypeError):
        return None
    if high > low:
        return ((low + high) / 2.0, high - low)
    return None
