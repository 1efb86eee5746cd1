"""Writing synthetic images as DICOM Secondary Capture objects, marked synthetic.

The IOD is Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7), built with highdicom:
8-bit (uint8 input) or 16-bit (uint16 input, or floats in [0, 1] scaled to 0..65535)
MONOCHROME2 grayscale, Explicit VR Little Endian. Its SC Image module carries Pixel Spacing
(0028,0030) through the Basic Pixel Spacing Calibration Macro, so spacing is kept when known.

How the object says it is synthetic, and where the provenance goes (all standard attributes):

========================================  ===================================================
Synthetic Data (0008,001C)                YES
Image Type (0008,0008)                    DERIVED\\SECONDARY
Conversion Type (0008,0064)               SYN (synthetic image)
Manufacturer (0008,0070)                  radsynth
Manufacturer's Model Name (0008,1090)     model name
Software Versions (0018,1020)             radsynth version
Device Serial Number (0018,1000)          SHA-256 of the model weights
Contributing Equipment Sequence           radsynth as Processing Equipment (DCM 109102), the
(0018,A001)                               model, weights hash, time and a one-line summary
Derivation Description (0008,2111)        prompt, model, weights hash, seed, steps, guidance
Image Comments (0020,4000)                "radsynth provenance: " + the Provenance as JSON
Series Description (0008,103E)            "SYNTHETIC radsynth"
Patient's Name / ID (0010,0010/0020)      SYNTHETIC^RADSYNTH / RADSYNTH-<random hex>
========================================  ===================================================

All UIDs are new. From a real source image only these non-identifying attributes carry over:
Modality, Body Part Examined, Laterality (or Image Laterality), Patient Orientation and, when
not given, pixel spacing. Nothing else of the source is copied, which meets the DICOM PS3.15
Basic Application Level Confidentiality Profile; the object then says so (Patient Identity
Removed = YES, De-identification Method Code Sequence = DCM 113100). With `keep_patient=True`
the patient and study identifiers and the Study Instance UID are kept instead, so the image
joins the source's study inside the hospital; a warning is logged, and such a file must not
leave it.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets
import warnings
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from radsynth.io.provenance import Provenance
from radsynth.io.reader import MedicalImage

logger = logging.getLogger("radsynth.io")

SYNTHETIC_PATIENT_NAME = "SYNTHETIC^RADSYNTH"
PROCESSING_EQUIPMENT = Code("109102", "DCM", "Processing Equipment")
BASIC_PROFILE = Code("113100", "DCM", "Basic Application Confidentiality Profile")
# Attributes kept with keep_patient=True: the patient's identity and the link to the study.
PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "AccessionNumber",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
# Body Part Examined terms of midline, unpaired anatomy (no Laterality attribute).
UNPAIRED_BODY_PARTS = frozenset(
    {
        "ABDOMEN",
        "BRAIN",
        "CHEST",
        "CSPINE",
        "GALLBLADDER",
        "HEAD",
        "HEART",
        "JAW",
        "LIVER",
        "LSPINE",
        "NECK",
        "PELVIS",
        "SKULL",
        "SPINE",
        "STERNUM",
        "THYROID",
        "TSPINE",
        "UTERUS",
        "WHOLEBODY",
    }
)
MAX_SHORT_TEXT = 1024  # ST value length (Derivation Description)
MAX_LONG_TEXT = 10240  # LT value length (Image Comments)

SourceLike = MedicalImage | Dataset | str | Path


def write_synthetic_dicom(
    path: str | Path,
    pixels: np.ndarray,
    *,
    provenance: Provenance,
    source: SourceLike | None = None,
    keep_patient: bool = False,
    pixel_spacing_mm: tuple[float, float] | None = None,
    modality: str | None = None,
    body_part: str | None = None,
    laterality: str | None = None,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    instance_number: int = 1,
    patient_id: str | None = None,
    display_range: tuple[float, float] | None = None,
) -> Path:
    """Write a 2-D grayscale image as a synthetic Secondary Capture DICOM file; return its path.

    `pixels`: uint8, uint16, or floats in [0, 1] (stored as 16 bit). `pixel_spacing_mm` is
    (row, column) in mm; without it the source's spacing is used when it has one. `modality`
    is a DICOM code ("CR", "DX", "CT", "MR", "US"; default the source's, else "OT"),
    `body_part` a Body Part Examined term ("CHEST") and `laterality` "R" or "L". `source` is
    the real image the output was made from (a MedicalImage, a pydicom Dataset or a DICOM
    path); see the module doc for what `keep_patient` keeps. Pass the same
    `study_instance_uid` / `series_instance_uid` (and a synthetic `patient_id`, see
    `synthetic_patient_id`) to group several outputs as one series of one patient.
    `display_range` (low, high): the source values float pixels 0 and 1 stand for (a CT's HU
    at its window's edges, `MedicalImage.display_range`); written as Rescale Slope, Intercept
    and Type (HU on CT) with that window, so a viewer reads the source's units back.
    """
    path = Path(path)
    stored, bits = _stored_pixels(pixels)
    header, source_spacing = _source_header(source)
    if keep_patient and header is None:
        raise ValueError("keep_patient=True needs a DICOM source to keep the patient and study of")
    spacing = _check_spacing(pixel_spacing_mm if pixel_spacing_mm is not None else source_spacing)
    source_modality = str(header.get("Modality", "")).strip() if header is not None else ""
    modality = _check_modality(modality or source_modality or "OT")
    kept = _kept_patient_study(header) if keep_patient and header is not None else {}
    if kept:
        logger.warning(
            "KEEPING PATIENT IDENTITY: %s carries the patient's name, ID, birth date and study "
            "identifiers of its source (keep_patient=True). It is for use inside the hospital "
            "only; do not share it or put it in a data set.",
            path,
        )
    now = datetime.datetime.now()
    study_uid = study_instance_uid or kept.get("StudyInstanceUID") or hd.UID()
    if patient_id is not None and "PatientID" not in kept:
        kept = {**kept, "PatientID": patient_id}
    image = _new_sc_image(
        stored, bits, kept, spacing, provenance, now, study_uid, series_instance_uid
    )
    image.InstanceNumber = instance_number
    _mark_synthetic(image, provenance)
    _describe_image(image, header, modality, body_part, laterality, bits)
    if display_range is not None:
        _rescale_to(image, display_range, bits, modality)
    if "IssuerOfPatientID" in kept:
        image.IssuerOfPatientID = kept["IssuerOfPatientID"]
    if header is not None and not keep_patient:
        image.PatientIdentityRemoved = "YES"
        image.DeidentificationMethodCodeSequence = [hd.sr.CodedConcept.from_code(BASIC_PROFILE)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save_as(tmp, enforce_file_format=True)
    tmp.replace(path)
    return path


def synthetic_patient_id() -> str:
    """A fresh synthetic Patient ID ("RADSYNTH-" and 12 random hex digits)."""
    return f"RADSYNTH-{secrets.token_hex(6).upper()}"


def _new_sc_image(
    stored: np.ndarray,
    bits: int,
    kept: dict[str, Any],
    spacing: tuple[float, float] | None,
    provenance: Provenance,
    now: datetime.datetime,
    study_uid: str,
    series_instance_uid: str | None,
) -> hd.sc.SCImage:
    """The Secondary Capture object with patient, study, equipment and pixel modules."""
    with warnings.catch_warnings():
        # A kept one-part name such as "ward" stays as the source spelled it.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        return hd.sc.SCImage(
            pixel_array=stored,
            photometric_interpretation="MONOCHROME2",
            bits_allocated=bits,
            coordinate_system="PATIENT",
            study_instance_uid=study_uid,
            series_instance_uid=series_instance_uid or hd.UID(),
            series_number=1,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="radsynth",
            patient_id=kept.get("PatientID", synthetic_patient_id()),
            patient_name=kept.get("PatientName", SYNTHETIC_PATIENT_NAME),
            patient_birth_date=kept.get("PatientBirthDate"),
            patient_sex=kept.get("PatientSex") or None,
            accession_number=kept.get("AccessionNumber"),
            study_id=kept.get("StudyID", "1"),
            study_date=kept.get("StudyDate") or now.date(),
            study_time=kept.get("StudyTime") or now.time().replace(microsecond=0),
            referring_physician_name=kept.get("ReferringPhysicianName"),
            pixel_spacing=spacing,
            patient_orientation=("A", "F"),  # placeholder; replaced in _describe_image
            contributing_equipment=[_contributing_equipment(provenance, now)],
        )


def _stored_pixels(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """The array to store and its bits per pixel (8 or 16)."""
    array = np.asarray(pixels)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"write_synthetic_dicom takes one 2-D grayscale image, got shape {array.shape}"
        )
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array), 8
    if array.dtype == np.uint16:
        return np.ascontiguousarray(array), 16
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("pixels contain NaN or infinite values; clean them before writing")
        if array.min() < 0.0 or array.max() > 1.0:
            raise ValueError(
                f"float pixels must lie in [0, 1] (got {array.min():g} to {array.max():g}); "
                "window them first (MedicalImage.windowed) or pass uint8/uint16"
            )
        return np.round(array * 65535.0).astype(np.uint16), 16
    raise ValueError(f"pixels must be uint8, uint16 or float in [0, 1], got {array.dtype}")


def _source_header(source: SourceLike | None) -> tuple[Dataset | None, tuple[float, float] | None]:
    """The source's DICOM header (None for non-DICOM sources) and its pixel spacing."""
    if source is None:
        return None, None
    if isinstance(source, MedicalImage):
        return source.dataset, source.pixel_spacing_mm
    if isinstance(source, Dataset):
        header = source
    else:
        try:
            header = pydicom.dcmread(source, stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError, ValueError) as error:
            raise ValueError(f"source {source} is not a readable DICOM file ({error})") from None
    spacing = header.get("PixelSpacing") or header.get("ImagerPixelSpacing")
    pair = (float(spacing[0]), float(spacing[1])) if spacing else None
    return header, pair if pair and min(pair) > 0 else None


def _check_spacing(spacing: tuple[float, float] | None) -> tuple[float, float] | None:
    if spacing is None:
        return None
    row, column = float(spacing[0]), float(spacing[1])
    if not (np.isfinite(row) and np.isfinite(column) and row > 0 and column > 0):
        raise ValueError(f"pixel_spacing_mm must be two positive numbers in mm, got {spacing}")
    return (row, column)


def _check_modality(modality: str) -> str:
    code = modality.strip().upper()
    if not code or len(code) > 16 or not code.replace("_", "").isalnum():
        raise ValueError(
            f"modality must be a DICOM code such as CR, DX, CT, MR, US, got {modality!r}"
        )
    return code


def _kept_patient_study(header: Dataset) -> dict[str, Any]:
    return {kw: header.get(kw) for kw in PATIENT_STUDY_KEYWORDS if header.get(kw) not in (None, "")}


def _contributing_equipment(
    provenance: Provenance, now: datetime.datetime
) -> hd.base_content.ContributingEquipment:
    return hd.base_content.ContributingEquipment(
        manufacturer="radsynth",
        purpose_of_reference=PROCESSING_EQUIPMENT,
        manufacturer_model_name=provenance.model_name[:64],
        software_versions=f"radsynth {provenance.radsynth_version}"[:64],
        device_serial_number=provenance.weights_sha256,
        contribution_datetime=now,
        contribution_description=_short_text(f"Synthetic image: {provenance.summary()}"),
    )


def _short_text(text: str) -> str:
    """Clip to the 1024 characters an ST value may hold."""
    return text if len(text) <= MAX_SHORT_TEXT else text[: MAX_SHORT_TEXT - 3] + "..."


def _mark_synthetic(image: Dataset, provenance: Provenance) -> None:
    image.SyntheticData = "YES"
    image.ImageType = ["DERIVED", "SECONDARY"]
    image.ConversionType = "SYN"
    image.BurnedInAnnotation = "NO"
    image.LossyImageCompression = "00"
    image.ManufacturerModelName = provenance.model_name[:64]
    image.SoftwareVersions = f"radsynth {provenance.radsynth_version}"[:64]
    if provenance.weights_sha256:
        image.DeviceSerialNumber = provenance.weights_sha256
    image.SeriesDescription = "SYNTHETIC radsynth"
    image.DerivationDescription = _short_text(
        f"Synthetic image generated from the text prompt {provenance.prompt!r}; "
        f"{provenance.summary()}"
    )
    comments = f"radsynth provenance: {provenance.to_json()}"
    if len(comments) > MAX_LONG_TEXT:
        raise ValueError(
            f"the provenance is {len(comments)} characters, more than the {MAX_LONG_TEXT} "
            "Image Comments can hold; shorten the prompt"
        )
    image.ImageComments = comments


def _describe_image(
    image: Dataset,
    header: Dataset | None,
    modality: str,
    body_part: str | None,
    laterality: str | None,
    bits: int,
) -> None:
    """Modality, anatomy and display window: given values first, else the source's."""
    source = header if header is not None else Dataset()
    image.Modality = modality
    part = body_part or str(source.get("BodyPartExamined", "")).strip()
    if part:
        image.BodyPartExamined = part.upper()[:16]
    side = laterality or str(source.get("Laterality") or source.get("ImageLaterality") or "")
    side = side.strip().upper()
    if side:
        if side not in ("R", "L"):
            raise ValueError(f"laterality must be 'R' or 'L', got {laterality!r}")
        image.Laterality = side
    elif part.upper() not in UNPAIRED_BODY_PARTS:
        # Laterality is Type 2C in General Series: needed (empty = unknown) unless the body
        # part is known to be unpaired, where it must be absent.
        image.Laterality = ""
    orientation = source.get("PatientOrientation")
    image.PatientOrientation = list(orientation) if orientation else ""
    top = 2**bits
    image.WindowCenter = str(top // 2)
    image.WindowWidth = str(top)


def _rescale_to(
    image: Dataset, display_range: tuple[float, float], bits: int, modality: str
) -> None:
    """Stored 0 .. 2^bits - 1 stand for `display_range`: Modality LUT (rescale) and window."""
    low, high = (float(v) for v in display_range)
    if not high > low:
        raise ValueError(f"display_range must rise, got {display_range}")
    image.RescaleIntercept = f"{low:.6g}"
    image.RescaleSlope = f"{(high - low) / (2**bits - 1):.10g}"[:16]
    image.RescaleType = "HU" if modality == "CT" else "US"  # US: unspecified
    image.WindowCenter = f"{(low + high) / 2:.6g}"
    image.WindowWidth = f"{high - low:.6g}"


def read_provenance(path: str | Path) -> Provenance:
    """Read back the Provenance that `write_synthetic_dicom` stored in Image Comments."""
    header = pydicom.dcmread(path, stop_before_pixels=True)
    comments = str(header.get("ImageComments", ""))
    marker = "radsynth provenance: "
    if not comments.startswith(marker):
        raise ValueError(f"{path} carries no radsynth provenance in Image Comments")
    return Provenance.from_dict(json.loads(comments[len(marker) :]))
