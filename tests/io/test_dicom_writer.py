"""write_synthetic_dicom: valid (dciodvfy), renders (dcm2pnm), marked synthetic, de-identified."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from sample_files import (
    assert_no_identifying_value_survives,
    dciodvfy_errors,
    dcm2pnm_render,
    sample,
)

from radsynth.io.dicom_writer import read_provenance, write_synthetic_dicom
from radsynth.io.provenance import Provenance
from radsynth.io.reader import read_image

PROVENANCE = Provenance(
    model_name="radsynth-xray-small",
    weights_sha256="0123456789abcdef" * 4,
    prompt="PA chest radiograph, nodule in the right upper lobe",
    seed=1234,
    num_inference_steps=25,
    guidance_scale=4.5,
)


def gradient(rows: int = 48, columns: int = 40) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:columns]
    return ((x + 2 * y) / (columns - 1 + 2 * (rows - 1))).astype(np.float32)


@pytest.fixture(scope="module")
def chest_source() -> object:
    return read_image(sample("RG1_UNCR.dcm"))


def test_sixteen_bit_output_is_valid_and_renders(tmp_path: Path) -> None:
    pixels = gradient()
    path = write_synthetic_dicom(
        tmp_path / "synthetic.dcm", pixels, provenance=PROVENANCE, pixel_spacing_mm=(0.2, 0.3)
    )
    assert dciodvfy_errors(path) == []
    rendered = np.asarray(Image.open(_render(path, tmp_path)))
    stored = np.round(pixels * 65535).astype(np.uint16)
    assert rendered.shape == pixels.shape
    # dcm2pnm scales the 16-bit range to 8 bits.
    assert np.abs(rendered.astype(int) - np.round(stored / 257.0)).max() <= 1
    back = read_image(path)
    np.testing.assert_array_equal(back.pixels, stored)
    assert back.pixel_spacing_mm == (0.2, 0.3) and back.bits_stored == 16


def _render(path: Path, tmp_path: Path) -> Path:
    out = tmp_path / (path.stem + ".pgm")
    dcm2pnm_render(path, out)
    return out


def test_eight_bit_output_renders_exactly(tmp_path: Path) -> None:
    pixels = (np.arange(30 * 50) % 256).astype(np.uint8).reshape(30, 50)
    path = write_synthetic_dicom(
        tmp_path / "knee.dcm",
        pixels,
        provenance=PROVENANCE,
        modality="CR",
        body_part="KNEE",
        laterality="L",
    )
    assert dciodvfy_errors(path) == []
    np.testing.assert_array_equal(np.asarray(Image.open(_render(path, tmp_path))), pixels)
    ds = pydicom.dcmread(path)
    assert (ds.Modality, ds.BodyPartExamined, ds.Laterality) == ("CR", "KNEE", "L")
    assert ds.BitsStored == 8


def test_marked_synthetic_with_provenance_and_fresh_uids(tmp_path: Path) -> None:
    first = pydicom.dcmread(
        write_synthetic_dicom(tmp_path / "a.dcm", gradient(), provenance=PROVENANCE)
    )
    second = pydicom.dcmread(
        write_synthetic_dicom(tmp_path / "b.dcm", gradient(), provenance=PROVENANCE)
    )
    assert first.SyntheticData == "YES"
    assert list(first.ImageType) == ["DERIVED", "SECONDARY"]
    assert first.ConversionType == "SYN"
    assert first.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        assert first[keyword].value != second[keyword].value
    assert first.PatientID != second.PatientID and first.PatientID.startswith("RADSYNTH-")
    assert first.ManufacturerModelName == "radsynth-xray-small"
    assert first.DeviceSerialNumber == PROVENANCE.weights_sha256
    assert PROVENANCE.prompt in first.DerivationDescription
    assert "seed 1234" in first.DerivationDescription
    equipment = first.ContributingEquipmentSequence[0]
    assert equipment.Manufacturer == "radsynth"
    assert equipment.PurposeOfReferenceCodeSequence[0].CodeValue == "109102"
    assert read_provenance(tmp_path / "a.dcm") == PROVENANCE


def test_no_identifying_attribute_survives_from_a_real_source(
    tmp_path: Path, chest_source: object
) -> None:
    source_path = sample("RG1_UNCR.dcm")
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    display = chest_source.windowed()[::8, ::8]  # type: ignore[attr-defined]
    path = write_synthetic_dicom(
        tmp_path / "from_chest.dcm", display, provenance=PROVENANCE, source=chest_source
    )
    assert dciodvfy_errors(path) == []
    output = pydicom.dcmread(path)
    # RG1 carries many identifying attributes: they were all compared
    assert assert_no_identifying_value_survives(source, output) >= 25
    text = path.read_bytes()
    for keyword in ("PatientName", "PatientID", "OtherPatientIDs", "InstitutionName"):
        assert str(source[keyword].value).encode() not in text
    assert (
        source.SOPInstanceUID.encode() not in text and source.StudyInstanceUID.encode() not in text
    )
    assert not any(element.tag.is_private for element in output.iterall())
    assert output.PatientIdentityRemoved == "YES"
    assert output.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert (output.Modality, output.BodyPartExamined) == ("CR", "CHEST")  # not identifying


def test_keep_patient_keeps_the_study_link_and_warns(
    tmp_path: Path, chest_source: object, caplog: pytest.LogCaptureFixture
) -> None:
    source = pydicom.dcmread(sample("RG1_UNCR.dcm"), stop_before_pixels=True)
    display = chest_source.windowed()[::8, ::8]  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="radsynth.io"):
        path = write_synthetic_dicom(
            tmp_path / "kept.dcm",
            display,
            provenance=PROVENANCE,
            source=chest_source,
            keep_patient=True,
        )
    assert "KEEPING PATIENT IDENTITY" in caplog.text
    assert dciodvfy_errors(path) == []
    output = pydicom.dcmread(path)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyID"):
        assert output[keyword].value == source[keyword].value
    assert output.AccessionNumber == source.AccessionNumber
    assert output.SeriesInstanceUID != source.SeriesInstanceUID
    assert output.SOPInstanceUID != source.SOPInstanceUID
    assert output.SyntheticData == "YES" and "PatientIdentityRemoved" not in output


def test_spacing_comes_from_the_source_when_not_given(tmp_path: Path) -> None:
    ct = read_image(sample("693_UNCR.dcm"))
    path = write_synthetic_dicom(
        tmp_path / "ct.dcm", ct.windowed(), provenance=PROVENANCE, source=sample("693_UNCR.dcm")
    )
    assert dciodvfy_errors(path) == []
    output = pydicom.dcmread(path)
    assert [float(v) for v in output.PixelSpacing] == pytest.approx([0.478516, 0.478516])
    assert output.Modality == "CT"


def test_bad_arguments_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lie in"):
        write_synthetic_dicom(tmp_path / "x.dcm", gradient() * 2, provenance=PROVENANCE)
    with pytest.raises(ValueError, match="2-D"):
        write_synthetic_dicom(tmp_path / "x.dcm", np.zeros((2, 3, 3)), provenance=PROVENANCE)
    with pytest.raises(ValueError, match="needs a DICOM source"):
        write_synthetic_dicom(
            tmp_path / "x.dcm", gradient(), provenance=PROVENANCE, keep_patient=True
        )
    with pytest.raises(ValueError, match="laterality"):
        write_synthetic_dicom(
            tmp_path / "x.dcm", gradient(), provenance=PROVENANCE, laterality="up"
        )
    assert not (tmp_path / "x.dcm").exists()
