"""Real sample files shipped by pydicom and pydicom-data, and the DICOM checkers used by tests."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pydicom
import pytest
from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from pydicom.data import get_testdata_file


def sample(name: str) -> Path:
    """Path of a pydicom / pydicom-data sample file; skip the test if it is not installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = get_testdata_file(name, download=False)
    if found is None:
        pytest.skip(f"sample file {name} is not installed (pip install pydicom-data)")
    return Path(str(found))


def require_tool(name: str) -> str:
    """Full path of a command-line tool; skip the test with the install hint if it is absent."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed; run scripts/install_system_packages.sh")
    return found


# dicom3tools' dictionary in Debian 12 (release 20220618) predates Synthetic Data (0008,001C),
# which radsynth must write, so dciodvfy calls it an unrecognised even-group attribute. That one
# message is about the checker's age, not the file; every other error counts.
DCIODVFY_OUTDATED = "not a recognized standard attribute - (0x0008,0x001c)"


def dciodvfy_errors(path: Path) -> list[str]:
    """The Error lines dciodvfy reports for a file (apart from the outdated-dictionary one)."""
    tool = require_tool("dciodvfy")
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error") and DCIODVFY_OUTDATED not in line]


def dcm2pnm_render(path: Path, out: Path) -> bytes:
    """Render a DICOM file with dcmtk's dcm2pnm to a PGM file and return its bytes."""
    tool = require_tool("dcm2pnm")
    result = subprocess.run(
        [tool, "--write-raw-pnm", str(path), str(out)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def _in_profile(entry: tuple[int, ...], tag: pydicom.tag.BaseTag) -> bool:
    """Whether a PS3.15 table entry covers a tag; (group, element[, group mask, element mask])."""
    if len(entry) == 2:
        return tag == pydicom.tag.Tag(entry[0], entry[1])
    group, element, group_mask, element_mask = entry
    return (tag.group & group_mask) == group and (tag.element & element_mask) == element


def assert_no_identifying_value_survives(source: pydicom.Dataset, output: pydicom.Dataset) -> int:
    """Assert that no non-empty attribute of `source` in the PS3.15 basic profile reappears
    with its value in `output`; return how many source attributes were compared."""
    profile = dicom_anonymization_database_selector("dicomfields_2026c")["ALL_TAGS"]
    checked = 0
    for element in source.iterall():
        if element.value in (None, "", b"") or not any(
            _in_profile(e, element.tag) for e in profile
        ):
            continue
        checked += 1
        for found in output.iterall():
            if found.tag == element.tag:
                assert found.value != element.value, f"{found.keyword} survived"
    return checked
