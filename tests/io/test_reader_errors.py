"""Bad input gives an ImageReadError that names the file and the problem, never a traceback."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from sample_files import sample

from radsynth.io.errors import ImageReadError
from radsynth.io.reader import read_image


def read_error(path: Path, **kwargs: object) -> ImageReadError:
    with pytest.raises(ImageReadError) as info:
        read_image(path, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert isinstance(error, ValueError)
    assert str(error).startswith(f"{path}: ")
    assert error.path == path
    return error


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    assert "empty file" in read_error(path).problem


def test_text_file_named_dcm(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("patient was seen in clinic; image to follow\n" * 20)
    problem = read_error(path).problem
    assert "not an image" in problem and "text" in problem


def test_unknown_binary_and_missing_file_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 4)
    assert "unknown binary data" in read_error(path).problem
    assert "does not exist" in read_error(tmp_path / "missing.dcm").problem
    assert "folder" in read_error(tmp_path).problem


def test_truncated_dicom(tmp_path: Path) -> None:
    data = sample("RG3_UNCR.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) * 3 // 5])
    assert "truncated" in read_error(path).problem


def test_dicom_without_pixel_data(tmp_path: Path) -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    del ds.PixelData
    path = tmp_path / "header_only.dcm"
    ds.save_as(path)
    problem = read_error(path).problem
    assert "no pixel data" in problem and "CT Image Storage" in problem


def test_a_dicomdir_and_a_corrupt_frame_count_are_named(tmp_path: Path) -> None:
    # A DICOMDIR was "an object without a SOP class ... or cut short"; a Number of Frames of
    # '1A' was a bare "invalid literal for int()" with no file or attribute named.
    dicomdir = Path(str(pydicom.data.get_testdata_file("DICOMDIR", download=False)))
    assert "is a DICOMDIR" in read_error(dicomdir).problem
    problem = read_error(sample("badVR.dcm")).problem
    assert "Number of Frames (0028,0008) of '1A', not a whole number" in problem


def test_rgb_where_grayscale_is_needed(tmp_path: Path) -> None:
    problem = read_error(sample("SC_rgb.dcm")).problem
    assert "colour" in problem and "color='luminance'" in problem
    path = tmp_path / "colour.png"
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red
    Image.fromarray(rgb).save(path)
    assert "colour" in read_error(path).problem
    assert read_image(path, color="luminance").pixels.max() == pytest.approx(0.299 * 200, abs=0.01)


def test_nan_pixels(tmp_path: Path) -> None:
    volume = np.ones((8, 8, 4), dtype=np.float32)
    volume[2, 3, 2] = np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.eye(4)), path)
    problem = read_error(path, slice_index=2).problem
    assert "1 NaN or infinite" in problem
    assert read_image(path, slice_index=1).pixels.max() == 1.0  # the other slices are fine
    tiff = tmp_path / "inf.tif"
    plane = np.zeros((6, 6), dtype=np.float32)
    plane[0, 0] = np.inf
    Image.fromarray(plane, mode="F").save(tiff)
    assert "NaN or infinite" in read_error(tiff).problem


def test_absurd_size_dicom(tmp_path: Path) -> None:
    ds = pydicom.dcmread(sample("MR_small.dcm"))
    ds.Rows, ds.Columns = 60000, 60000
    path = tmp_path / "huge.dcm"
    ds.save_as(path)
    assert "absurd size" in read_error(path).problem


def png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def test_absurd_size_png(tmp_path: Path) -> None:
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    assert "absurd size" in read_error(path).problem


def test_truncated_png(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in read_error(path).problem


def test_unsupported_transfer_syntax(tmp_path: Path) -> None:
    ds = pydicom.dcmread(sample("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    path = tmp_path / "video.dcm"
    ds.save_as(path)
    problem = read_error(path).problem
    assert "MPEG2 Main Profile / Main Level" in problem and "cannot decode" in problem


def test_corrupt_nifti(tmp_path: Path) -> None:
    path = tmp_path / "broken.nii"
    path.write_bytes(b"\x5c\x01\x00\x00" + b"\x00" * 400)
    assert "NIfTI" in read_error(path).problem


def nifti_header_only(path: Path, shape: tuple[int, ...]) -> Path:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    header["vox_offset"] = 352
    path.write_bytes(header.binaryblock + b"\x00" * 1004)
    return path


def test_absurd_and_truncated_nifti(tmp_path: Path) -> None:
    huge = nifti_header_only(tmp_path / "huge.nii", (30000, 30000, 3000))
    assert "absurd size" in read_error(huge).problem
    short = nifti_header_only(tmp_path / "short.nii", (300, 300, 30))
    assert "truncated" in read_error(short).problem
    volume = tmp_path / "cut.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((40, 40, 20)), np.eye(4)), volume)
    data = volume.read_bytes()
    volume.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in read_error(volume).problem


def test_transparency_is_refused_and_an_opaque_alpha_is_read(tmp_path: Path) -> None:
    pixels = np.zeros((8, 8, 2), np.uint8)
    pixels[..., 0], pixels[..., 1] = 100, 255
    Image.fromarray(pixels, "LA").save(tmp_path / "opaque.png")
    assert read_image(tmp_path / "opaque.png").pixels.max() == 100
    pixels[:2, :2, 1] = 0  # four transparent pixels: their grey would be read as if shown
    Image.fromarray(pixels, "LA").save(tmp_path / "clear.png")
    rgba = np.concatenate([np.repeat(pixels[..., :1], 3, axis=2), pixels[..., 1:]], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear_rgba.png")
    for name in ("clear.png", "clear_rgba.png"):
        with pytest.raises(ImageReadError, match="has transparent pixels \\(4 with alpha"):
            read_image(tmp_path / name)
