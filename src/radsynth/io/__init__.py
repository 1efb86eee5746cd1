"""Reading medical images, writing PNG, synthetic DICOM and manifests."""

from __future__ import annotations

from radsynth.io.dicom_writer import read_provenance, write_synthetic_dicom
from radsynth.io.errors import ImageReadError
from radsynth.io.ingest import IngestError, IngestReport, ingest
from radsynth.io.manifest import MANIFEST_NAME, ManifestWriter, iter_manifest, read_manifest
from radsynth.io.png import read_png_text, write_png
from radsynth.io.provenance import Provenance, png_text_chunks
from radsynth.io.reader import MedicalImage, read_image

__all__ = [
    "MANIFEST_NAME",
    "ImageReadError",
    "IngestError",
    "IngestReport",
    "ManifestWriter",
    "MedicalImage",
    "Provenance",
    "ingest",
    "iter_manifest",
    "png_text_chunks",
    "read_image",
    "read_manifest",
    "read_png_text",
    "read_provenance",
    "write_png",
    "write_synthetic_dicom",
]
