"""read_image on real DICOM files: rescale, windowing, MONOCHROME1, bit depth, frames, codecs."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_voi_lut
from sample_files import require_tool, sample

from radsynth.io.errors import ImageReadError
from radsynth.io.reader import apply_window, read_image


def raw_pixels(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path).pixel_array


def test_monochrome1_chest_is_inverted_so_bone_is_bright() -> None:
    path = sample("RG1_UNCR.dcm")
    image = read_image(path)
    stored = raw_pixels(path).astype(np.float32)
    assert image.photometric == "MONOCHROME1" and image.inverted
    assert image.value_range == (0.0, 2.0**15 - 1)
    np.testing.assert_array_equal(image.pixels, 32767.0 - stored)
    # Display = 1 - (the header's LINEAR window applied to the stored values), DICOM PS3.3.
    expected = 1.0 - apply_window(stored, (15000.0, 30000.0), "LINEAR")
    np.testing.assert_allclose(image.windowed(), expected, atol=1e-6)
    display = image.windowed()
    rows, cols = display.shape
    mediastinum = display[rows // 3 : rows // 2, cols // 2 - 100 : cols // 2 + 100].mean()
    right_lung = display[rows // 3 : rows // 2, cols // 5 : cols // 3].mean()
    left_lung = display[rows // 3 : rows // 2, 2 * cols // 3 : 4 * cols // 5].mean()
    assert mediastinum > right_lung + 0.15 and mediastinum > left_lung + 0.15


def test_monochrome1_through_a_modality_lut_is_reflected(tmp_path: Path) -> None:
    """A Modality LUT Sequence's outputs span its descriptor's bits: a MONOCHROME1 image read
    through one is reflected on that range (it was shown as a negative, bone dark)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(sample("mlut_18.dcm"))
        modality = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    assert int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) == 16
    plain = read_image(sample("mlut_18.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    image = read_image(tmp_path / "m1.dcm")
    assert image.inverted and image.value_range == (0.0, 65535.0)
    np.testing.assert_array_equal(image.pixels, 65535.0 - modality)
    np.testing.assert_allclose(image.windowed(), 1.0 - plain.windowed(), atol=1e-6)


def test_ct_rescale_gives_hounsfield_units_and_header_window() -> None:
    path = sample("693_UNCR.dcm")
    image = read_image(path)
    stored = raw_pixels(path)
    assert image.modality == "CT" and image.photometric == "MONOCHROME2"
    np.testing.assert_array_equal(image.pixels, stored.astype(np.float32) - 1024.0)
    assert image.pixels[:40, :40].mean() < -900  # air around the head
    assert image.window == (40.0, 100.0)
    assert image.pixel_spacing_mm == pytest.approx((0.478516, 0.478516))
    brain_window = image.windowed()
    assert brain_window.min() == 0.0 and brain_window.max() == 1.0
    bone = image.windowed(window=(500.0, 2000.0))
    assert bone.mean() != pytest.approx(brain_window.mean())


def test_sixteen_bit_range_is_kept() -> None:
    chest = read_image(sample("RG1_UNCR.dcm"))
    assert chest.bits_stored == 15 and chest.pixels.dtype == np.float32
    assert len(np.unique(chest.pixels)) > 4096  # more levels than 12 bits, let alone 8
    path = sample("MR2_UNCR.dcm")
    mr = read_image(path)
    assert mr.bits_stored == 12
    slope, intercept = 3.774114, 0.000061  # the file's Rescale Slope and Intercept
    expected = raw_pixels(path).astype(np.float64) * slope + intercept
    np.testing.assert_allclose(mr.pixels, expected, rtol=1e-6)
    signed = read_image(sample("MR_small.dcm"))
    assert signed.value_range == (-32768.0, 32767.0)


def test_window_from_header_follows_dicom_formula() -> None:
    image = read_image(sample("MR_small.dcm"))
    assert image.window == (600.0, 1600.0)
    x = image.pixels.astype(np.float64)
    expected = np.clip((x - 599.5) / 1599.0 + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(image.windowed(), expected, atol=1e-6)


def test_voi_lut_sequence_matches_pydicom() -> None:
    path = sample("vlut_04.dcm")
    image = read_image(path)
    assert image.voi_lut is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        reference = apply_voi_lut(ds.pixel_array, ds).astype(np.float64)
    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
    np.testing.assert_allclose(image.windowed(), reference / (2**bits - 1), atol=1e-6)


def test_pixel_spacing_from_ultrasound_regions_and_zero_spacing_is_unknown() -> None:
    path = sample("JPGLosslessP14SV1_1s_1f_8b.dcm")
    region = pydicom.dcmread(path, stop_before_pixels=True).SequenceOfUltrasoundRegions[0]
    image = read_image(path)
    assert image.pixel_spacing_mm == pytest.approx(
        (abs(region.PhysicalDeltaY) * 10, abs(region.PhysicalDeltaX) * 10)
    )
    assert read_image(sample("RG1_UNCR.dcm")).pixel_spacing_mm is None  # header says 0.000


@pytest.mark.parametrize(
    ("plain", "compressed", "syntax"),
    [
        ("MR_small.dcm", "MR_small_RLE.dcm", pydicom.uid.RLELossless),
        ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm", pydicom.uid.JPEGLSLossless),
        ("MR_small.dcm", "MR_small_jp2klossless.dcm", pydicom.uid.JPEG2000Lossless),
        ("693_UNCR.dcm", "693_J2KR.dcm", pydicom.uid.JPEG2000Lossless),
        ("RG1_UNCR.dcm", "RG1_J2KR.dcm", pydicom.uid.JPEG2000Lossless),
        ("MR2_UNCR.dcm", "MR2_J2KR.dcm", pydicom.uid.JPEG2000Lossless),
    ],
)
def test_lossless_transfer_syntaxes_decode_to_the_uncompressed_twin(
    plain: str, compressed: str, syntax: str
) -> None:
    reference = read_image(sample(plain))
    image = read_image(sample(compressed))
    assert image.attributes["TransferSyntaxUID"] == syntax
    np.testing.assert_array_equal(image.pixels, reference.pixels)
    np.testing.assert_array_equal(image.windowed(), reference.windowed())


@pytest.mark.parametrize(
    ("compressed", "syntax"),
    [
        ("emri_small_RLE.dcm", pydicom.uid.RLELossless),
        ("emri_small_jpeg_ls_lossless.dcm", pydicom.uid.JPEGLSLossless),
        ("emri_small_jpeg_2k_lossless.dcm", pydicom.uid.JPEG2000Lossless),
    ],
)
def test_multiframe_compressed_frame_matches_uncompressed(compressed: str, syntax: str) -> None:
    reference = read_image(sample("emri_small.dcm"), frame=7)
    image = read_image(sample(compressed), frame=7)
    assert image.attributes["TransferSyntaxUID"] == syntax
    np.testing.assert_array_equal(image.pixels, reference.pixels)


def test_jpeg_lossless_and_baseline_match_the_uncompressed_colour_image() -> None:
    reference = read_image(sample("SC_rgb.dcm"), color="luminance").pixels
    lossless = read_image(sample("SC_rgb_jpeg_gdcm.dcm"), color="luminance")
    assert lossless.attributes["TransferSyntaxUID"] == pydicom.uid.JPEGLosslessSV1
    np.testing.assert_array_equal(lossless.pixels, reference)
    baseline = read_image(sample("SC_rgb_dcmtk_+eb+cr.dcm"), color="luminance")
    assert baseline.attributes["TransferSyntaxUID"] == pydicom.uid.JPEGBaseline8Bit
    assert np.abs(baseline.pixels - reference).max() <= 2.0  # lossy, but close


def test_grayscale_jpeg_lossless_matches_dcmtk_decoder(tmp_path: Path) -> None:
    tool = require_tool("dcmdjpeg")
    path = sample("JPGLosslessP14SV1_1s_1f_8b.dcm")
    plain = tmp_path / "plain.dcm"
    subprocess.run([tool, str(path), str(plain)], check=True, capture_output=True, timeout=60)
    decoded = read_image(plain)
    assert decoded.attributes["TransferSyntaxUID"] != pydicom.uid.JPEGLosslessSV1
    np.testing.assert_array_equal(read_image(path).pixels, decoded.pixels)


def test_multiframe_needs_a_frame_choice() -> None:
    path = sample("emri_small.dcm")
    with pytest.raises(ImageReadError, match=r"has 10 frames; choose one with frame=0\.\.9"):
        read_image(path)
    with pytest.raises(ImageReadError, match="out of range"):
        read_image(path, frame=10)
    image = read_image(path, frame=4)
    assert (image.n_frames, image.frame_index) == (10, 4)
    np.testing.assert_array_equal(image.pixels, raw_pixels(path)[4].astype(np.float32))


def test_colour_is_refused_or_converted_to_luminance() -> None:
    path = sample("US1_UNCR.dcm")
    with pytest.raises(ImageReadError, match="colour image.*color='luminance'"):
        read_image(path)
    image = read_image(path, color="luminance")
    rgb = raw_pixels(path).astype(np.float64)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(image.pixels, expected, atol=1e-3)
    assert image.photometric == "RGB" and "luminance" in image.attributes["grayscale_from"]


def test_source_attributes_and_header_without_pixels() -> None:
    image = read_image(sample("RG1_UNCR.dcm"))
    assert image.attributes["BodyPartExamined"] == "CHEST"
    assert image.attributes["ViewPosition"] == "PA"
    assert "PixelData" not in image.dataset
    assert image.dataset.PatientID == "9RG1"


def test_dicom_without_preamble_or_file_meta_is_read(tmp_path: Path) -> None:
    source = sample("MR_small.dcm")
    ds = pydicom.dcmread(source)
    ds.preamble = None
    del ds.file_meta
    raw = tmp_path / "raw.dcm"
    ds.save_as(raw, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert raw.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(read_image(raw).pixels, read_image(source).pixels)
