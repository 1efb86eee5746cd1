"""One entry point, `read_image`, for DICOM, NIfTI, PNG, TIFF and JPEG files.

Every reader returns a `MedicalImage`: one 2-D frame as float32 in the source's own units (for
DICOM after the modality LUT, so Hounsfield units on CT), plus what a radiologist needs to
display and measure it: modality, pixel spacing in mm, photometric interpretation, bit depth,
frame count, the display window from the header and a few descriptive source attributes.

Conventions:

- `pixels` always read "higher is brighter". A MONOCHROME1 source (bone dark in the stored
  values, as in most CR) is reflected within its stored range, so bone is bright; `inverted` is
  then True and the header window is reflected with it.
- `pixel_spacing_mm` is (row spacing, column spacing): the distance between rows (vertical) and
  between columns (horizontal), as in DICOM Pixel Spacing (0028,0030).
- `windowed()` maps the pixels to display values in [0, 1] with the header's VOI LUT or window,
  or a window you give, or else the image's own minimum and maximum.

Bad input (an empty file, a text file, a truncated or corrupt file, colour where grayscale is
needed, NaN pixels, an absurd size) raises `ImageReadError` naming the file and the problem.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from radsynth.io.errors import ImageReadError

ColorPolicy = Literal["error", "luminance"]
VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]
Axis = Literal["axial", "coronal", "sagittal"] | int

# A frame larger than this many pixels is treated as a corrupt header rather than an image
# (100 megapixels: four times a full-field mammogram).
DEFAULT_MAX_PIXELS = 100_000_000
# ITU-R BT.601 luma weights, the ones DICOM uses for YBR_FULL.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz")
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima", "")


@dataclass(frozen=True)
class VoiLut:
    """A DICOM VOI LUT (0028,3010): `values[i]` is the output for input `first_mapped + i`
    (input in the source's modality units); outputs span 0 .. 2**bits - 1."""

    first_mapped: float
    values: np.ndarray
    bits: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        index = np.clip(np.round(x - self.first_mapped), 0, len(self.values) - 1).astype(np.int64)
        return (self.values[index] / float(2**self.bits - 1)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class MedicalImage:
    """One 2-D image frame with the metadata that matters for display and measurement."""

    pixels: np.ndarray  # float32 (rows, columns); source units, higher is brighter
    path: Path  # the file it was read from
    format: str  # "dicom", "nifti", "png", "tiff" or "jpeg"
    modality: str | None  # DICOM Modality code ("CR", "CT", "MR", "US", ...); None if unknown
    pixel_spacing_mm: tuple[float, float] | None  # (row, column) spacing in mm; None if unknown
    photometric: str  # the source's photometric interpretation ("MONOCHROME1", "RGB", ...)
    bits_stored: int  # bits per sample in the source (8, 12, 16, 32 for float)
    n_frames: int = 1  # frames (DICOM, TIFF), volumes (4-D NIfTI) or slices along the axis
    frame_index: int = 0  # which frame (or slice, for NIfTI) `pixels` is
    value_range: tuple[float, float] | None = None  # (min, max) the stored bits can express
    window: tuple[float, float] | None = None  # header (centre, width) in `pixels` units
    voi_function: VoiFunction = "LINEAR"  # DICOM VOI LUT Function of `window`
    voi_lut: VoiLut | None = field(default=None, repr=False)
    inverted: bool = False  # True when a MONOCHROME1 source was reflected (see module doc)
    attributes: Mapping[str, Any] = field(default_factory=dict)  # descriptive source attributes
    dataset: Any = field(default=None, repr=False)  # DICOM header (pydicom Dataset, no pixels)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of `pixels`."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    def windowed(
        self, window: tuple[float, float] | None = None, voi_function: VoiFunction | None = None
    ) -> np.ndarray:
        """Display values in [0, 1] (float32), bright = dense.

        `window` is (centre, width) in the units of `pixels` (HU on CT); without it the header's
        VOI LUT or window is used, else the image's own minimum to maximum.
        """
        if window is not None:
            return apply_window(self.pixels, window, voi_function or "LINEAR")
        if self.voi_lut is not None:
            source = self._unreflected()
            display = self.voi_lut(source)
            return 1.0 - display if self.inverted else display
        if self.window is not None:
            return apply_window(self.pixels, self.window, voi_function or self.voi_function)
        return min_max_scale(self.pixels)

    def display_range(self) -> tuple[float, float] | None:
        """The source values (`pixels` units: HU on CT) that `windowed()` shows as 0 and 1, where
        that mapping is a straight line (a LINEAR or LINEAR_EXACT window, or the image's own
        range); None for a VOI LUT table, a SIGMOID window or a reflected MONOCHROME1 image.
        A display value d then stands for low + d x (high - low)."""
        if self.voi_lut is not None or self.inverted:
            return None
        if self.window is None:
            low, high = float(self.pixels.min()), float(self.pixels.max())
            return (low, high) if high > low else None
        centre, width = self.window
        if self.voi_function == "LINEAR_EXACT":
            return (centre - width / 2, centre + width / 2)
        if self.voi_function == "LINEAR":
            return (centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2)
        return None

    def _unreflected(self) -> np.ndarray:
        """The pixels in the source's stored orientation (MONOCHROME1 reflection undone)."""
        if not self.inverted or self.value_range is None:
            return self.pixels
        low, high = self.value_range
        return (low + high) - self.pixels


def apply_window(
    pixels: np.ndarray, window: tuple[float, float], function: VoiFunction = "LINEAR"
) -> np.ndarray:
    """Map `pixels` through a DICOM window (centre, width in pixel units) to [0, 1] float32.

    The formulas are those of DICOM PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT, SIGMOID).
    """
    centre, width = float(window[0]), float(window[1])
    x = pixels.astype(np.float64, copy=False)
    if function == "LINEAR":
        if width < 1:
            raise ValueError(f"a LINEAR window needs width >= 1, got {width}; widen the window")
        if width == 1:
            out = (x > centre - 0.5).astype(np.float64)
        else:
            out = (x - (centre - 0.5)) / (width - 1) + 0.5
    elif function == "LINEAR_EXACT":
        if width <= 0:
            raise ValueError(f"a LINEAR_EXACT window needs width > 0, got {width}")
        out = (x - centre) / width + 0.5
    elif function == "SIGMOID":
        if width <= 0:
            raise ValueError(f"a SIGMOID window needs width > 0, got {width}")
        out = 1.0 / (1.0 + np.exp(-4.0 * (x - centre) / width))
    else:
        raise ValueError(f"unknown VOI function {function!r}; use LINEAR, LINEAR_EXACT or SIGMOID")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def min_max_scale(pixels: np.ndarray) -> np.ndarray:
    """Scale `pixels` linearly so its minimum is 0 and its maximum 1 (all zeros if flat)."""
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.float32)
    return ((pixels.astype(np.float64) - low) / (high - low)).astype(np.float32)


def to_luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an (..., 3) RGB array, as float32 in the input's units."""
    weights = np.asarray(LUMA_WEIGHTS, dtype=np.float64)
    return (rgb[..., :3].astype(np.float64) @ weights).astype(np.float32)


def is_gray_rgb(rgb: np.ndarray) -> bool:
    """True when all colour channels are equal: a grayscale image stored as colour."""
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    )


def colour_error(path: Path, kind: str) -> ImageReadError:
    """The error for a colour image read with color='error'."""
    return ImageReadError(
        path,
        f"is a colour image ({kind}) and radsynth works on grayscale; pass color='luminance' "
        "(CLI: --color luminance) to convert it with ITU-R BT.601 weights, or convert it first",
    )


def check_pixels(path: Path, pixels: np.ndarray) -> np.ndarray:
    """Return `pixels` as a float32 2-D array, or raise for NaN/inf values or an empty image."""
    if pixels.ndim != 2 or 0 in pixels.shape:
        raise ImageReadError(path, f"holds no 2-D image (pixel array shape {pixels.shape})")
    pixels = pixels.astype(np.float32, copy=False)
    finite = np.isfinite(pixels)
    if not finite.all():
        bad = int(pixels.size - np.count_nonzero(finite))
        raise ImageReadError(
            path,
            f"has {bad} NaN or infinite pixel values; replace them (e.g. numpy.nan_to_num) "
            "and save the image again",
        )
    return pixels


def check_size(path: Path, rows: int, columns: int, max_pixels: int) -> None:
    """Raise for a zero or absurdly large frame size (usually a corrupt header)."""
    if rows <= 0 or columns <= 0:
        raise ImageReadError(path, f"declares an empty image ({rows} x {columns} pixels)")
    if rows * columns > max_pixels:
        raise ImageReadError(
            path,
            f"declares an absurd size ({rows} x {columns} = {rows * columns:,} pixels per frame, "
            f"limit {max_pixels:,}); the header is probably corrupt, or raise max_pixels",
        )


def check_frame(path: Path, frame: int | None, n_frames: int, what: str = "frames") -> int:
    """Return the frame index to read, or raise when a multi-frame file needs a choice."""
    if frame is None:
        if n_frames > 1:
            raise ImageReadError(
                path,
                f"has {n_frames} {what}; choose one with frame=0..{n_frames - 1} "
                "(CLI and CSV: a 'frame' column)",
            )
        return 0
    if not 0 <= frame < n_frames:
        raise ImageReadError(path, f"has {n_frames} {what}; frame={frame} is out of range")
    return frame


def sniff_format(path: Path) -> str:
    """Name the file's format from its first bytes: dicom, nifti, png, tiff, jpeg; or raise."""
    if not path.exists():
        raise ImageReadError(path, "does not exist; check the path")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    size = path.stat().st_size
    if size == 0:
        raise ImageReadError(path, "is an empty file (0 bytes); copy it again from its source")
    with path.open("rb") as handle:
        head = handle.read(352)
    name = path.name.lower()
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if head[344:348] in (b"n+1\x00", b"n+2\x00"):
        return "nifti"
    # DICOM without the 128-byte preamble starts with a group 0002 or 0008 element tag.
    if head[:2] in (b"\x02\x00", b"\x08\x00") and path.suffix.lower() in DICOM_SUFFIXES:
        return "dicom-raw"
    kind = "text" if _looks_like_text(head) else "unknown binary data"
    raise ImageReadError(
        path,
        f"is not an image radsynth can read (its first bytes are {kind}); "
        "expected DICOM, NIfTI (.nii, .nii.gz), PNG, TIFF or JPEG",
    )


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_image(
    path: str | Path,
    *,
    frame: int | None = None,
    slice_index: int | None = None,
    axis: Axis = "axial",
    color: ColorPolicy = "error",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> MedicalImage:
    """Read one 2-D image from a DICOM, NIfTI, PNG, TIFF or JPEG file.

    `frame` picks the frame of a multi-frame DICOM or TIFF, or the volume of a 4-D NIfTI;
    a multi-frame file without it is an error. For NIfTI, `axis` ("axial", "coronal",
    "sagittal" in patient space, or a voxel axis 0-2) and `slice_index` (default: the middle
    slice) pick the slice. `color="luminance"` converts a colour image to grayscale; the default
    `"error"` refuses it. The format is told from the file's bytes, not its name.
    """
    path = Path(path)
    kind = sniff_format(path)
    if kind in ("dicom", "dicom-raw"):
        from radsynth.io.dicom_reader import read_dicom

        return read_dicom(
            path, frame=frame, color=color, max_pixels=max_pixels, force=kind == "dicom-raw"
        )
    if kind == "nifti":
        from radsynth.io.nifti_reader import read_nifti

        return read_nifti(
            path, slice_index=slice_index, axis=axis, volume=frame, max_pixels=max_pixels
        )
    return read_raster(path, frame=frame, color=color, max_pixels=max_pixels)


# --- PNG, TIFF, JPEG through Pillow --------------------------------------------------------

_PIL_FORMATS = {"PNG": "png", "TIFF": "tiff", "JPEG": "jpeg", "MPO": "jpeg"}


def read_raster(
    path: str | Path,
    *,
    frame: int | None = None,
    color: ColorPolicy = "error",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> MedicalImage:
    """Read a PNG, TIFF or JPEG file (8 or 16 bit grayscale, float TIFF, or colour)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:
        raise ImageReadError(
            path, f"declares an absurd size ({error}); the header is probably corrupt"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageReadError(path, f"is a corrupt or unsupported image file ({error})") from None
    with image:
        fmt = _PIL_FORMATS.get(str(image.format), str(image.format).lower())
        columns, rows = image.size
        check_size(path, rows, columns, max_pixels)
        n_frames = int(getattr(image, "n_frames", 1))
        index = check_frame(path, frame, n_frames)
        try:
            image.seek(index)
            image.load()
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageReadError(
                path, f"is truncated or corrupt: Pillow could not decode it ({error})"
            ) from None
        pixels, photometric, bits, notes = _pil_pixels(path, image, color)
        spacing = _raster_spacing(image)
        text = {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
    attributes: dict[str, Any] = {"format": str(image.format), "mode": image.mode, **notes}
    attributes.update({k: v for k, v in text.items() if len(v) <= 4096})
    return MedicalImage(
        pixels=check_pixels(path, pixels),
        path=path,
        format=fmt,
        modality=None,
        pixel_spacing_mm=spacing,
        photometric=photometric,
        bits_stored=bits,
        n_frames=n_frames,
        frame_index=index,
        value_range=(
            (-128.0, 127.0)
            if pixels.dtype == np.int8
            else (0.0, float(2**bits - 1))
            if bits <= 16
            else None
        ),
        attributes=attributes,
    )


def _pil_pixels(
    path: Path, image: Image.Image, color: ColorPolicy
) -> tuple[np.ndarray, str, int, dict[str, str]]:
    """Grayscale pixels, photometric term, bits per sample and notes for a Pillow image."""
    mode = image.mode
    if image.format == "PNG" and mode in ("LA", "RGB", "RGBA"):
        depth, colour_type = _png_ihdr(path)
        if depth == 16:  # colour type 4: gray+alpha, which Pillow opens as RGBA
            return _png16_colour(path, color, gray_alpha=colour_type == 4)
    if mode == "L" and image.format == "TIFF" and _tiff_sample_format(image) == 2:
        # Signed 8-bit samples, which Pillow opens as unsigned "L" (-128 read as 128).
        return np.asarray(image).view(np.int8), "MONOCHROME2", 8, {}
    if mode in ("LA", "PA", "RGBA", "La", "RGBa") or "transparency" in image.info:
        _refuse_transparency(path, np.asarray(image.convert("RGBA").getchannel("A")), 255)
    if mode == "1":
        return np.asarray(image, dtype=np.uint8), "MONOCHROME2", 1, {}
    if mode in ("L", "LA"):
        return np.asarray(image.getchannel(0)), "MONOCHROME2", 8, {}
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16), "MONOCHROME2", 16, {}
    if mode == "I":
        # Pillow opens some 16-bit PNGs as 32-bit "I"; a PNG cannot hold more than 16 bits.
        bits = 16 if image.format == "PNG" else 32
        return np.asarray(image), "MONOCHROME2", bits, {}
    if mode == "F":
        return np.asarray(image), "MONOCHROME2", 32, {}
    if mode in ("P", "PA"):
        image = image.convert("RGB")
        kind = "PALETTE COLOR"
    elif mode in ("RGB", "RGBA", "RGBX"):
        kind = "RGB"
    else:
        image = image.convert("RGB")
        kind = mode
    rgb = np.asarray(image)[..., :3]
    if is_gray_rgb(rgb):
        return rgb[..., 0], kind, 8, {"grayscale_from": f"{kind} with equal channels"}
    if color != "luminance":
        raise colour_error(path, kind)
    return to_luminance(rgb), kind, 8, {"grayscale_from": f"{kind}, BT.601 luminance"}


def _refuse_transparency(path: Path, alpha: np.ndarray, opaque: int) -> None:
    """Refuse an image with any pixel less than `opaque` in its alpha channel."""
    if alpha.min() < opaque:
        raise ImageReadError(
            path,
            f"has transparent pixels ({int((alpha < opaque).sum())} with alpha below "
            f"{opaque}); radsynth reads grayscale intensities and would drop the transparency: "
            "flatten the image onto a background first",
        )


def _png_ihdr(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR chunk (bytes 24 and 25 of the file)."""
    with path.open("rb") as f:
        head = f.read(26)
    return (head[24], head[25]) if len(head) == 26 else (0, 0)


def _tiff_sample_format(image: Image.Image) -> int:
    """A TIFF's SampleFormat (tag 339): 1 unsigned, 2 signed, 3 float; 1 when absent."""
    value = getattr(image, "tag_v2", {}).get(339, 1)
    return int(value[0] if isinstance(value, tuple | list) else value)


def _png16_colour(
    path: Path, color: ColorPolicy, gray_alpha: bool
) -> tuple[np.ndarray, str, int, dict[str, str]]:
    """A 16-bit RGB, RGBA or gray+alpha PNG, which Pillow cuts to 8 bits, read through OpenCV
    at its 16 bits (OpenCV gives gray+alpha as BGRA)."""
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16 or data.ndim != 3:
        raise ImageReadError(path, "is a 16-bit colour PNG that could not be decoded")
    if data.shape[2] == 4:
        _refuse_transparency(path, data[..., 3], 65535)
    rgb = data[..., 2::-1]
    if gray_alpha:  # opaque: its gray channel, as for an 8-bit gray+alpha PNG
        return rgb[..., 0].copy(), "MONOCHROME2", 16, {}
    kind = "RGB"
    if is_gray_rgb(rgb):
        return rgb[..., 0].copy(), kind, 16, {"grayscale_from": "16-bit RGB with equal channels"}
    if color != "luminance":
        raise colour_error(path, f"16-bit {kind}")
    return to_luminance(rgb), kind, 16, {"grayscale_from": "16-bit RGB, BT.601 luminance"}


def _raster_spacing(image: Image.Image) -> tuple[float, float] | None:
    """Pixel spacing in mm from radsynth's PNG text chunk or a TIFF in pixels per centimetre."""
    from radsynth.io.provenance import PNG_SPACING_KEY, parse_spacing_text

    text = getattr(image, "text", {})
    if PNG_SPACING_KEY in text:
        return parse_spacing_text(str(text[PNG_SPACING_KEY]))
    tags = getattr(image, "tag_v2", None)
    if tags is not None and tags.get(296) == 3:  # ResolutionUnit: centimetre
        x_res, y_res = tags.get(282), tags.get(283)
        if x_res and y_res and float(x_res) > 0 and float(y_res) > 0:
            return (10.0 / float(y_res), 10.0 / float(x_res))
    return None
