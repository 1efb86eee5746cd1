"""Reading one frame of a DICOM image with pydicom, done the way a viewer does it.

Order of operations (DICOM PS3.3 C.11 and PS3.4 N.2): decode the stored values (any transfer
syntax pydicom's pixel-data plugins handle: native, RLE, JPEG baseline/extended/lossless,
JPEG-LS, JPEG 2000, HTJ2K), apply the modality LUT (Rescale Slope/Intercept or a Modality LUT
Sequence; from the functional groups of enhanced multi-frame objects too), then keep the VOI
(window or VOI LUT) for display, and for MONOCHROME1 reflect the values so bone is bright.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array
from pydicom.pixels.decoders.base import get_decoder

from radsynth.io.errors import ImageReadError
from radsynth.io.reader import (
    DEFAULT_MAX_PIXELS,
    ColorPolicy,
    MedicalImage,
    VoiFunction,
    VoiLut,
    check_frame,
    check_pixels,
    check_size,
    colour_error,
    is_gray_rgb,
    to_luminance,
)

# Descriptive, non-identifying attributes copied into MedicalImage.attributes.
DESCRIPTIVE_KEYWORDS = (
    "SOPClassUID",
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "Laterality",
    "ImageLaterality",
    "PatientSex",
    "PatientAge",
    "Manufacturer",
    "KVP",
    "SliceThickness",
    "RescaleType",
    "PixelRepresentation",
    "BitsAllocated",
    "HighBit",
)
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
COLOUR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")


def read_dicom(
    path: str | Path,
    *,
    frame: int | None = None,
    color: ColorPolicy = "error",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    force: bool = False,
) -> MedicalImage:
    """Read one frame of a DICOM file; see `radsynth.io.reader.read_image` for the arguments."""
    path = Path(path)
    ds = _read_dataset(path, force)
    _check_image_header(path, ds, max_pixels)
    n_frames = _number_of_frames(path, ds)
    index = check_frame(path, frame, n_frames)
    stored = _decode_frame(path, ds, index if n_frames > 1 else None)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    notes: dict[str, Any] = {}
    if photometric in COLOUR_PHOTOMETRICS or stored.ndim == 3:
        values = _colour_to_gray(path, ds, stored, photometric, color, notes)
        modality_values = values
    else:
        modality_values = _modality_lut(ds, stored, index)
    pixels = check_pixels(path, modality_values)
    value_range = _value_range(ds, index)
    inverted = photometric == "MONOCHROME1"
    window, voi_function = _header_window(ds, index)
    if inverted and value_range is not None:
        reflect = value_range[0] + value_range[1]
        pixels = (reflect - pixels).astype(np.float32)
        if window is not None:
            shift = 1.0 if voi_function == "LINEAR" else 0.0
            window = (reflect - window[0] + shift, window[1])
    attributes = _descriptive_attributes(ds)
    attributes.update(notes)
    return MedicalImage(
        pixels=pixels,
        path=path,
        format="dicom",
        modality=str(ds.get("Modality", "")).strip() or None,
        pixel_spacing_mm=_pixel_spacing(ds, index, attributes),
        photometric=photometric,
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8),
        n_frames=n_frames,
        frame_index=index,
        value_range=value_range,
        window=window,
        voi_function=voi_function,
        voi_lut=_voi_lut(ds),
        inverted=inverted and value_range is not None,
        attributes=attributes,
        dataset=_header_only(ds),
    )


def _read_dataset(path: Path, force: bool) -> Dataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=force)
            if "TransferSyntaxUID" not in ds.file_meta:
                # A file without file meta (no preamble): its syntax is the one it was read with.
                implicit, little = ds.original_encoding
                ds.file_meta.TransferSyntaxUID = (
                    pydicom.uid.ImplicitVRLittleEndian
                    if implicit
                    else pydicom.uid.ExplicitVRLittleEndian
                    if little
                    else pydicom.uid.ExplicitVRBigEndian
                )
            return ds
    except InvalidDicomError as error:
        raise ImageReadError(path, f"is not a valid DICOM file ({error})") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ImageReadError(
            path, f"is a truncated or corrupt DICOM file: pydicom could not parse it ({error})"
        ) from None


MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


def _number_of_frames(path: Path, ds: Dataset) -> int:
    """Number of Frames (0028,0008), 1 when absent; a value that is no whole number is named."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warning of an invalid IS value
        value = ds.get("NumberOfFrames", 1) or 1
    try:
        frames = int(value)
    except (TypeError, ValueError):
        raise ImageReadError(
            path,
            f"has a Number of Frames (0028,0008) of {str(value)!r}, not a whole number: "
            "the header is corrupt",
        ) from None
    if frames < 1:
        raise ImageReadError(path, f"has a Number of Frames (0028,0008) of {frames}")
    return frames


def _check_image_header(path: Path, ds: Dataset, max_pixels: int) -> None:
    storage = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    if storage == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
        raise ImageReadError(
            path,
            "is a DICOMDIR (a media directory that lists files, not an image): pass one of "
            "the image files it lists",
        )
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        sop = ds.get("SOPClassUID")
        what = f"a {sop.name} object" if sop is not None else "an object without a SOP class"
        raise ImageReadError(
            path,
            f"contains no pixel data: it is {what}, not an image, or the file is cut short "
            "before its pixel data",
        )
    for keyword in ("Rows", "Columns"):
        if keyword not in ds:
            raise ImageReadError(path, f"lacks {keyword} (0028,00xx): the image header is corrupt")
    check_size(path, int(ds.Rows), int(ds.Columns), max_pixels)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_encapsulated:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            raise ImageReadError(
                path,
                f"uses transfer syntax {syntax.name} ({syntax}), which radsynth cannot decode; "
                "convert it to an uncompressed or JPEG/JPEG 2000 syntax first "
                "(e.g. with gdcmconv --raw or ffmpeg for video syntaxes)",
            ) from None
        if not decoder.is_available:
            missing = "; ".join(decoder.missing_dependencies)
            raise ImageReadError(
                path,
                f"uses transfer syntax {syntax.name}, whose decoder is not installed: {missing}",
            )


def _decode_frame(path: Path, ds: Dataset, index: int | None) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(pixel_array(ds, index=index))
    except (ValueError, RuntimeError, EOFError, OSError, KeyError, AttributeError) as error:
        text = str(error)
        if any(sign in text for sign in ("less than expected", "expected length", "end of")):
            problem = "is truncated: its pixel data is shorter than its header says"
        else:
            problem = "has pixel data pydicom cannot decode (corrupt data or wrong header)"
        detail = "; ".join(line.strip() for line in text.splitlines() if line.strip())
        raise ImageReadError(path, f"{problem} ({detail[:600]})") from None


def _colour_to_gray(
    path: Path,
    ds: Dataset,
    stored: np.ndarray,
    photometric: str,
    color: ColorPolicy,
    notes: dict[str, Any],
) -> np.ndarray:
    rgb = apply_color_lut(stored, ds) if photometric == "PALETTE COLOR" else stored
    if rgb.ndim != 3:
        raise ImageReadError(path, f"has {photometric} pixels of unexpected shape {rgb.shape}")
    if is_gray_rgb(rgb):
        notes["grayscale_from"] = f"{photometric} with equal channels"
        return rgb[..., 0].astype(np.float32)
    if color != "luminance":
        raise colour_error(path, f"{photometric}, {rgb.shape[-1]} samples per pixel")
    notes["grayscale_from"] = f"{photometric}, BT.601 luminance"
    return to_luminance(rgb)


def _frame_item(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    """The item of a functional-group macro for one frame: per-frame first, then shared."""
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = ds.get(groups)
        if not items:
            continue
        item = items[index] if groups.startswith("PerFrame") and index < len(items) else items[0]
        inner = item.get(sequence)
        if inner:
            return inner[0]
    return None


def _modality_lut(ds: Dataset, stored: np.ndarray, index: int) -> np.ndarray:
    if "ModalityLUTSequence" in ds or "RescaleSlope" in ds or "RescaleIntercept" in ds:
        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float64).astype(np.float32)
    item = _frame_item(ds, index, "PixelValueTransformationSequence")
    if item is not None and ("RescaleSlope" in item or "RescaleIntercept" in item):
        slope = float(item.get("RescaleSlope", 1.0))
        intercept = float(item.get("RescaleIntercept", 0.0))
        return (stored.astype(np.float64) * slope + intercept).astype(np.float32)
    return stored.astype(np.float32)


def _rescale(ds: Dataset, index: int) -> tuple[float, float]:
    source: Dataset | None = ds if "RescaleSlope" in ds else None
    if source is None:
        source = _frame_item(ds, index, "PixelValueTransformationSequence")
    if source is None:
        return 1.0, 0.0
    return float(source.get("RescaleSlope", 1.0)), float(source.get("RescaleIntercept", 0.0))


def _value_range(ds: Dataset, index: int) -> tuple[float, float] | None:
    """(min, max) the stored bits can express, after the modality rescale or LUT (a Modality LUT
    Sequence's outputs span the bits its LUT Descriptor names, PS3.3 C.11.1.1)."""
    if "PixelData" not in ds:
        return None
    if "ModalityLUTSequence" in ds:
        try:
            lut_bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        except (AttributeError, IndexError, TypeError, ValueError):
            return None
        return (0.0, float(2**lut_bits - 1)) if 0 < lut_bits <= 16 else None
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        low, high = 0, 2**bits - 1
    slope, intercept = _rescale(ds, index)
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return (float(ends[0]), float(ends[1]))


def _header_window(ds: Dataset, index: int) -> tuple[tuple[float, float] | None, VoiFunction]:
    source: Dataset | None = ds if "WindowCenter" in ds and "WindowWidth" in ds else None
    if source is None:
        source = _frame_item(ds, index, "FrameVOILUTSequence")
    if source is None or "WindowCenter" not in source or "WindowWidth" not in source:
        return None, "LINEAR"
    centre, width = source.WindowCenter, source.WindowWidth
    centre = centre[0] if isinstance(centre, pydicom.multival.MultiValue) else centre
    width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
    function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    if float(width) <= 0 or (function == "LINEAR" and float(width) < 1):
        return None, "LINEAR"
    return (float(centre), float(width)), function  # type: ignore[return-value]


def _voi_lut(ds: Dataset) -> VoiLut | None:
    items = ds.get("VOILUTSequence")
    if not items or "LUTDescriptor" not in items[0] or "LUTData" not in items[0]:
        return None
    item = items[0]
    descriptor = [int(v) for v in item.LUTDescriptor]
    first_mapped = descriptor[1]
    if int(ds.get("PixelRepresentation", 0) or 0) == 1 and first_mapped >= 2**15:
        first_mapped -= 2**16
    values = np.asarray(item.LUTData, dtype=np.float64).ravel()
    if values.size == 0:
        return None
    bits = descriptor[2] if 8 <= descriptor[2] <= 16 else int(np.ceil(np.log2(values.max() + 1)))
    return VoiLut(first_mapped=float(first_mapped), values=values, bits=max(bits, 1))


def _positive_pair(value: Any) -> tuple[float, float] | None:
    try:
        row, column = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        return None
    if row > 0 and column > 0 and np.isfinite(row) and np.isfinite(column):
        return (row, column)
    return None


def _pixel_spacing(
    ds: Dataset, index: int, attributes: dict[str, Any]
) -> tuple[float, float] | None:
    """(row, column) spacing in mm, from the first attribute that holds a positive value."""
    measures = _frame_item(ds, index, "PixelMeasuresSequence")
    candidates = [
        ("PixelSpacing", ds.get("PixelSpacing")),
        ("ImagerPixelSpacing", ds.get("ImagerPixelSpacing")),
        ("PixelMeasuresSequence", measures.get("PixelSpacing") if measures else None),
        ("NominalScannedPixelSpacing", ds.get("NominalScannedPixelSpacing")),
    ]
    for name, value in candidates:
        spacing = _positive_pair(value) if value is not None else None
        if spacing is not None:
            attributes["pixel_spacing_from"] = name
            return spacing
    for region in ds.get("SequenceOfUltrasoundRegions", []):
        # Physical units 3 = cm; DICOM gives the deltas per pixel in those units.
        units_x, units_y = (
            region.get("PhysicalUnitsXDirection"),
            region.get("PhysicalUnitsYDirection"),
        )
        if units_x == 3 and units_y == 3:
            spacing = _positive_pair(
                (abs(float(region.PhysicalDeltaY)) * 10, abs(float(region.PhysicalDeltaX)) * 10)
            )
            if spacing is not None:
                attributes["pixel_spacing_from"] = "SequenceOfUltrasoundRegions"
                return spacing
    return None


def _descriptive_attributes(ds: Dataset) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for keyword in DESCRIPTIVE_KEYWORDS:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        attributes[keyword] = str(value) if not isinstance(value, int | float) else value
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None:
        attributes["TransferSyntaxUID"] = str(syntax)
        attributes["TransferSyntax"] = syntax.name
    return attributes


def _header_only(ds: Dataset) -> Dataset:
    """A copy of the header without the (large) pixel data elements."""
    header = Dataset()
    for element in ds:
        if element.keyword not in PIXEL_KEYWORDS:
            header.add(element)
    if "file_meta" in ds.__dict__:
        header.file_meta = ds.file_meta
    return header
