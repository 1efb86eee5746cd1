"""read_image on NIfTI (slice and axis), PNG (8 and 16 bit), TIFF and JPEG files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sample_files import sample

from radsynth.io.errors import ImageReadError
from radsynth.io.provenance import PNG_SPACING_KEY
from radsynth.io.reader import read_image

SHAPE = (6, 5, 4)  # voxels along x (to the patient's right), y (anterior), z (superior)
ZOOMS = (0.5, 0.8, 2.0)  # mm


def coded_volume() -> np.ndarray:
    """A volume whose value tells its voxel: 10000*x + 100*y + z."""
    x, y, z = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    return (10000 * x + 100 * y + z).astype(np.float32)


def save_nifti(path: Path, volume: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(volume, affine), path)
    return path


@pytest.fixture
def ras_nifti(tmp_path: Path) -> Path:
    return save_nifti(tmp_path / "ras.nii.gz", coded_volume(), np.diag([*ZOOMS, 1.0]))


def test_nifti_axial_slice_is_in_radiological_layout(ras_nifti: Path) -> None:
    image = read_image(ras_nifti, slice_index=3, axis="axial")
    nx, ny, _ = SHAPE
    assert image.shape == (ny, nx)
    assert image.format == "nifti" and image.n_frames == 4 and image.frame_index == 3
    assert image.pixel_spacing_mm == pytest.approx((0.8, 0.5))
    # Top row is the most anterior y; the left column is the patient's right (largest x).
    assert image.pixels[0, 0] == 10000 * (nx - 1) + 100 * (ny - 1) + 3
    assert image.pixels[ny - 1, nx - 1] == 3


def test_nifti_coronal_and_sagittal(ras_nifti: Path) -> None:
    nx, ny, nz = SHAPE
    coronal = read_image(ras_nifti, slice_index=2, axis="coronal")
    assert coronal.shape == (nz, nx) and coronal.pixel_spacing_mm == pytest.approx((2.0, 0.5))
    assert coronal.pixels[0, 0] == 10000 * (nx - 1) + 100 * 2 + (nz - 1)  # superior, right
    sagittal = read_image(ras_nifti, slice_index=1, axis="sagittal")
    assert sagittal.shape == (nz, ny) and sagittal.pixel_spacing_mm == pytest.approx((2.0, 0.8))
    assert sagittal.pixels[0, 0] == 10000 * 1 + 100 * (ny - 1) + (nz - 1)  # superior, anterior


def test_nifti_default_middle_slice_and_voxel_axis(ras_nifti: Path) -> None:
    assert read_image(ras_nifti).frame_index == SHAPE[2] // 2
    voxel = read_image(ras_nifti, slice_index=4, axis=0)
    np.testing.assert_array_equal(voxel.pixels, coded_volume()[4])
    assert voxel.pixel_spacing_mm == pytest.approx((0.8, 2.0))
    with pytest.raises(ImageReadError, match="out of range"):
        read_image(ras_nifti, slice_index=4, axis="axial")


def test_nifti_flipped_storage_gives_the_same_picture(ras_nifti: Path, tmp_path: Path) -> None:
    # Stored left-to-right (LAS): x is flipped in the array and the affine says so.
    affine = np.diag([-ZOOMS[0], ZOOMS[1], ZOOMS[2], 1.0])
    affine[0, 3] = (SHAPE[0] - 1) * ZOOMS[0]
    las = save_nifti(tmp_path / "las.nii", coded_volume()[::-1].copy(), affine)
    for axis in ("axial", "coronal", "sagittal"):
        expected = read_image(ras_nifti, slice_index=1, axis=axis).pixels
        np.testing.assert_array_equal(read_image(las, slice_index=1, axis=axis).pixels, expected)


def test_nifti_4d_needs_a_volume(tmp_path: Path) -> None:
    volumes = np.stack([coded_volume(), coded_volume() + 0.5], axis=-1)
    path = save_nifti(tmp_path / "series.nii.gz", volumes, np.diag([*ZOOMS, 1.0]))
    with pytest.raises(ImageReadError, match="2 volumes"):
        read_image(path)
    second = read_image(path, frame=1, slice_index=0)
    assert second.pixels.min() == 0.5


def test_png_8_and_16_bit(tmp_path: Path) -> None:
    ramp8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(ramp8).save(tmp_path / "ramp8.png")
    image8 = read_image(tmp_path / "ramp8.png")
    assert image8.bits_stored == 8 and image8.format == "png"
    np.testing.assert_array_equal(image8.pixels, ramp8)
    ramp16 = (np.arange(64 * 64, dtype=np.uint32) * 16).astype(np.uint16).reshape(64, 64)
    info = PngInfo()
    info.add_text(PNG_SPACING_KEY, "0.2 0.25")
    Image.fromarray(ramp16).save(tmp_path / "ramp16.png", pnginfo=info)
    image16 = read_image(tmp_path / "ramp16.png")
    assert image16.bits_stored == 16 and image16.value_range == (0.0, 65535.0)
    np.testing.assert_array_equal(image16.pixels, ramp16)
    assert image16.pixel_spacing_mm == (0.2, 0.25)
    assert image16.windowed().max() == 1.0 and image16.windowed().min() == 0.0


def test_png_rgb_with_equal_channels_is_grayscale(tmp_path: Path) -> None:
    gray = np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "gray_rgb.png")
    image = read_image(tmp_path / "gray_rgb.png")
    np.testing.assert_array_equal(image.pixels, gray)


def test_png_16_bit_colour_and_gray_alpha_keep_their_16_bits(tmp_path: Path) -> None:
    """Pillow cuts 16-bit RGB and gray+alpha PNGs to 8 bits; radsynth reads all 16."""
    import cv2

    gray = np.random.default_rng(2).integers(0, 65536, (20, 30), dtype=np.uint16)
    opaque = np.full_like(gray, 65535)
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.stack([gray] * 3, axis=-1))
    cv2.imwrite(str(tmp_path / "rgba16.png"), np.stack([gray, gray, gray, opaque], axis=-1))
    for name in ("rgb16.png", "rgba16.png"):
        image = read_image(tmp_path / name)
        assert image.bits_stored == 16 and image.value_range == (0.0, 65535.0), name
        np.testing.assert_array_equal(image.pixels, gray)
    # cv2 writes gray+alpha as RGBA; a true LA16 file: IHDR colour type 4, 16 bits.
    la = np.stack([gray, opaque], axis=-1)
    write_png_raw(tmp_path / "la16.png", la, colour_type=4)
    image = read_image(tmp_path / "la16.png")
    assert image.bits_stored == 16 and image.photometric == "MONOCHROME2"
    np.testing.assert_array_equal(image.pixels, gray)
    colour = np.stack([gray, gray // 2, gray // 3], axis=-1)[..., ::-1]  # BGR for cv2
    cv2.imwrite(str(tmp_path / "colour16.png"), colour)
    with pytest.raises(ImageReadError, match="colour image"):
        read_image(tmp_path / "colour16.png")
    luma = read_image(tmp_path / "colour16.png", color="luminance").pixels
    assert luma.max() > 255  # on the 16-bit scale, not cut to 8 bits
    half_transparent = np.stack([gray, gray, gray, opaque // 2], axis=-1)
    cv2.imwrite(str(tmp_path / "alpha16.png"), half_transparent)
    with pytest.raises(ImageReadError, match="transparent"):
        read_image(tmp_path / "alpha16.png")


def write_png_raw(path: Path, samples: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG written byte by byte (Pillow and OpenCV write no 16-bit gray+alpha)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    h, w = samples.shape[:2]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in samples)
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_tiff_signed_8_bit_is_read_signed(tmp_path: Path) -> None:
    import tifffile

    values = np.arange(-128, 128, dtype=np.int8).reshape(16, 16)
    tifffile.imwrite(tmp_path / "s8.tif", values)
    image = read_image(tmp_path / "s8.tif")
    np.testing.assert_array_equal(image.pixels, values.astype(np.float32))
    assert image.value_range == (-128.0, 127.0)


def test_tiff_16_bit_with_spacing_and_pages(tmp_path: Path) -> None:
    pages = [np.full((10, 12), value, dtype=np.uint16) for value in (1000, 40000)]
    images = [Image.fromarray(page) for page in pages]
    path = tmp_path / "stack.tif"
    images[0].save(
        path, save_all=True, append_images=images[1:], resolution=40.0, resolution_unit=3
    )  # resolution_unit 3: pixels per centimetre
    with pytest.raises(ImageReadError, match="2 frames"):
        read_image(path)
    second = read_image(path, frame=1)
    assert second.format == "tiff" and second.bits_stored == 16
    np.testing.assert_array_equal(second.pixels, pages[1])
    assert second.pixel_spacing_mm == pytest.approx((0.25, 0.25))


def test_tiff_float(tmp_path: Path) -> None:
    values = np.linspace(-1000.0, 3000.0, 48, dtype=np.float32).reshape(6, 8)
    Image.fromarray(values, mode="F").save(tmp_path / "hu.tif")
    image = read_image(tmp_path / "hu.tif")
    np.testing.assert_array_equal(image.pixels, values)
    assert image.bits_stored == 32


def test_jpeg_grayscale(tmp_path: Path) -> None:
    y, x = np.mgrid[0:64, 0:64]
    smooth = (127 + 100 * np.sin(x / 9.0) * np.cos(y / 11.0)).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "smooth.jpg", quality=95)
    image = read_image(tmp_path / "smooth.jpg")
    assert image.format == "jpeg" and image.bits_stored == 8
    assert np.abs(image.pixels - smooth).mean() < 1.5  # lossy, but close


@pytest.mark.parametrize("name", ["693_UNCI.dcm", "CT_small.dcm", "MR_small.dcm"])
def test_the_display_range_gives_the_source_values_back(name: str) -> None:
    # A display value d stands for low + d x (high - low) inside the window: what a DICOM
    # output's Rescale Slope and Intercept record.
    image = read_image(sample(name))
    window = image.display_range()
    assert window is not None
    low, high = window
    inside = (image.pixels > low) & (image.pixels < high)
    assert inside.any()
    back = low + image.windowed() * (high - low)
    np.testing.assert_allclose(back[inside], image.pixels[inside], atol=1e-3 * (high - low))
    assert read_image(sample("RG1_UNCR.dcm")).display_range() is None  # MONOCHROME1, reflected
