"""`radsynth dataset ingest` on a small MIMIC-CXR-style tree built from real sample files."""

from __future__ import annotations

import csv
import shutil
import unicodedata
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import typer
from PIL import Image
from sample_files import sample
from typer.testing import CliRunner

from radsynth.cli import dataset_command
from radsynth.io.ingest import id_from_path, labels_from_row, to_uint16
from radsynth.io.manifest import read_manifest
from radsynth.io.png import read_png_text
from radsynth.io.reader import read_image
from radsynth.vocabulary import Finding

CHEST = "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.dcm"
HEAD_CT = "files/p10/p10000764/s57375967/096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4.dcm"
MR_FRAMES = "files/p11/p11000011/s51029426/emri.dcm"
MISSING = "files/p11/p11000011/s51029426/missing.dcm"
NOTES = "files/p12/p12000001/s52000001/notes.dcm"
COLOUR_US = "files/p12/p12000001/s52000001/us.dcm"
HEADER = ["path", "caption", "modality", "region", "view", "laterality", "sex", "age", "findings"]
HEADER += ["frame", "slice"]


def make_tree(root: Path) -> tuple[Path, Path]:
    """Copy real samples into a nested layout and write the CSV; return (source, csv)."""
    source = root / "mimic"
    for relative, name in [
        (CHEST, "RG1_UNCR.dcm"),
        (HEAD_CT, "693_UNCR.dcm"),
        (MR_FRAMES, "emri_small.dcm"),
        (COLOUR_US, "US1_UNCR.dcm"),
    ]:
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample(name), source / relative)
    (source / NOTES).write_text("report to follow\n")
    volume = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    (source / "nifti").mkdir()
    nib.save(nib.Nifti1Image(volume, np.diag([0.7, 0.7, 3.0, 1.0])), source / "nifti/abd.nii.gz")
    (source / "png").mkdir()
    ramp = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    Image.fromarray(ramp).save(source / "png/ankle.png")
    Image.fromarray(ramp).save(source / "png/elbow.png")
    rows = [
        [CHEST, "PA chest radiograph, nodule in the right upper lobe", "CR", "chest", "PA"]
        + ["", "F", "64", "lung_nodule:right_upper_lobe", "", ""],
        [HEAD_CT, "", "", "head", "axial", "", "", "", "", "", ""],
        [MR_FRAMES, "sagittal MRI of the knee", "MR", "knee", "", "", "", "", "", "2", ""],
        ["nifti/abd.nii.gz", "axial CT of the abdomen", "ct", "abdomen", "", "", "", "", ""]
        + ["", "1"],
        ["png/ankle.png", "AP radiograph of the left ankle", "xray", "ankle", "ap", "L"]
        + ["", "", "", "", ""],
        [MISSING, "chest radiograph", "xray", "chest", "", "", "", "", "", "", ""],
        [NOTES, "chest radiograph", "xray", "chest", "", "", "", "", "", "", ""],
        ["png/elbow.png", "elbow radiograph", "xray", "elbow", "", "", "", "", "", "", ""],
        [COLOUR_US, "ultrasound of the liver", "us", "liver", "", "", "", "", "", "", ""],
        ["../outside.dcm", "chest radiograph", "xray", "chest", "", "", "", "", "", "", ""],
    ]
    table = root / "captions.csv"
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return source, table


def canonical_caption_writer() -> object | None:
    try:
        from radsynth.vocabulary.captions import canonical_caption
    except ImportError:
        return None
    return canonical_caption


def invoke(*args: str) -> object:
    # The command group on its own app, as radsynth.cli.app registers it.
    app = typer.Typer()
    dataset_command.register(app)
    return CliRunner().invoke(app, ["dataset", "ingest", *args])


def test_ingest_mimic_style_tree(tmp_path: Path) -> None:
    source, table = make_tree(tmp_path)
    out = tmp_path / "ingested"
    result = invoke(str(source), "--captions", str(table), "--out", str(out))
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 0, output  # type: ignore[attr-defined]
    records = {record["source"]: record for record in read_manifest(out)}
    caption_writer = canonical_caption_writer()
    expected = {CHEST, MR_FRAMES, "nifti/abd.nii.gz", "png/ankle.png"}
    if caption_writer is not None:
        expected.add(HEAD_CT)
    assert set(records) == expected

    # Bad rows are named by CSV line, path and reason, and skipped.
    assert f"line 7: {MISSING}: no such file" in output
    assert f"line 8: {NOTES}: is not an image" in output
    assert "line 9: png/elbow.png: xray region 'elbow' is not known" in output
    assert f"line 10: {COLOUR_US}: is a colour image" in output
    assert "line 11: ../outside.dcm: the path leaves the source folder" in output
    if caption_writer is None:
        assert f"line 3: {HEAD_CT}: the caption cell is empty" in output

    chest = records[CHEST]
    assert chest["id"] == id_from_path(CHEST) and chest["image"] == f"images/{chest['id']}.png"
    assert chest["caption"] == "PA chest radiograph, nodule in the right upper lobe"
    labels = chest["labels"]
    assert (labels["modality"], labels["region"], labels["view"]) == ("xray", "chest", "pa")
    assert (labels["sex"], labels["age"]) == ("female", 64)
    assert labels["findings"] == [
        {"kind": "lung_nodule", "site": "right_upper_lobe", "qualifiers": []}
    ]
    stored = Image.open(out / chest["image"])
    assert stored.mode.startswith("I") and stored.size == (1841, 1955)
    expected_pixels = to_uint16(read_image(source / CHEST).windowed())
    np.testing.assert_array_equal(np.asarray(stored), expected_pixels)
    assert chest["pixel_spacing_mm"] is None  # the CR header says 0.000

    if caption_writer is not None:
        ct = records[HEAD_CT]
        assert ct["labels"]["modality"] == "ct"  # from the DICOM header
        ct_labels = labels_from_row(
            {"region": "head", "view": "axial"}, read_image(source / HEAD_CT)
        )
        assert ct["caption"] == caption_writer(ct_labels)  # type: ignore[operator]
        assert ct["pixel_spacing_mm"] == pytest.approx([0.478516, 0.478516])
        assert read_png_text(out / ct["image"])["pixel_spacing_mm"] == "0.478516 0.478516"
        assert read_image(out / ct["image"]).pixel_spacing_mm == pytest.approx((0.478516,) * 2)

    mr = records[MR_FRAMES]
    frame = read_image(source / MR_FRAMES, frame=2)
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / mr["image"])), to_uint16(frame.windowed())
    )
    assert records["nifti/abd.nii.gz"]["pixel_spacing_mm"] == pytest.approx([0.7, 0.7])
    assert records["png/ankle.png"]["labels"]["laterality"] == "left"

    # A second run resumes: nothing is written twice.
    again = invoke(str(source), "--captions", str(table), "--out", str(out), "--quiet")
    assert f"({len(records)} already there)" in again.output  # type: ignore[attr-defined]
    assert len(read_manifest(out)) == len(records)


def test_ingest_fail_mode_stops_at_the_first_bad_row(tmp_path: Path) -> None:
    source, table = make_tree(tmp_path)
    rows = list(csv.reader(table.open(encoding="utf-8")))
    with table.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([rows[0], rows[5], rows[6], rows[7]])  # png, missing, notes
    out = tmp_path / "strict"
    result = invoke(str(source), "--captions", str(table), "--out", str(out), "--on-error", "fail")
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 1, output  # type: ignore[attr-defined]
    assert f"line 3: {MISSING}: no such file" in output
    assert "notes.dcm" not in output
    assert [record["source"] for record in read_manifest(out)] == ["png/ankle.png"]


def test_ingest_rejects_a_csv_without_path_or_captions(tmp_path: Path) -> None:
    source, _ = make_tree(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,caption\nx.dcm,chest\n")
    result = invoke(str(source), "--captions", str(bad), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "no 'path' column" in result.output  # type: ignore[attr-defined]
    bare = tmp_path / "bare.csv"
    bare.write_text("path,notes\nx.dcm,none\n")
    result = invoke(str(source), "--captions", str(bare), "--out", str(tmp_path / "o"))
    assert "neither a 'caption' column nor label columns" in result.output  # type: ignore[attr-defined]


def test_labels_from_row_aliases() -> None:
    labels = labels_from_row(
        {"modality": "DX", "region": "Knee", "view": "LL", "laterality": "R", "sex": "M"}
        | {"age": "071Y", "findings": "fracture:patella; joint_effusion"}
    )
    assert (labels.modality, labels.region, labels.view) == ("xray", "knee", "lateral")
    assert (labels.laterality, labels.sex, labels.age) == ("right", "male", 71)
    assert [f.kind for f in labels.findings] == ["fracture", "joint_effusion"]
    assert labels_from_row({"findings": "No Finding"}).findings == ()
    chest = labels_from_row({"region": "chest", "findings": "Fracture:Clavicle:L; pacemaker::R"})
    assert chest.findings == (
        Finding("fracture", "clavicle", side="left"),
        Finding("pacemaker", side="right"),
    )


def test_ingest_converts_colour_when_asked(tmp_path: Path) -> None:
    source, _ = make_tree(tmp_path)
    table = tmp_path / "us.csv"
    table.write_text(
        f"path,caption,modality,region\n{COLOUR_US},ultrasound of the liver,US,liver\n"
    )
    out = tmp_path / "us"
    result = invoke(
        str(source), "--captions", str(table), "--out", str(out), "--color", "luminance"
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    (record,) = read_manifest(out)
    assert record["labels"]["modality"] == "us"
    expected = to_uint16(read_image(source / COLOUR_US, color="luminance").windowed())
    np.testing.assert_array_equal(np.asarray(Image.open(out / record["image"])), expected)


@pytest.mark.parametrize(
    "cell, years",
    [("64", 64), ("071Y", 71), ("45 years old", 45), ("18 months", 1), ("018M", 1)]
    + [("006M", 0), ("3 weeks", 0), ("003W", 0), ("010D", 0), ("24mo", 2)]
    + [("45-year-old", 45), ("45 y/o", 45), ("45 y.o.", 45), ("90+", 90)],
)
def test_ages_in_months_weeks_or_days_are_read_as_such(cell: str, years: int) -> None:
    # DICOM Age Strings and written-out units: "18 months" was stored as 18 years.
    assert labels_from_row({"age": cell}).age == years


@pytest.mark.parametrize("cell", ["adult", "45 lightyears", "45Q", "-3"])
def test_an_age_that_is_not_one_is_refused(cell: str) -> None:
    with pytest.raises(ValueError, match="is not an age"):
        labels_from_row({"age": cell})


def test_ids_stay_inside_the_output_and_slices_get_their_own(tmp_path: Path) -> None:
    source, _ = make_tree(tmp_path)
    table = tmp_path / "ids.csv"
    table.write_text(
        "path,id,caption,modality,region,frame,slice,axis\n"
        "png/ankle.png,../../escaped,ankle radiograph,xray,ankle,,,\n"
        "png/elbow.png,a/b,ankle radiograph,xray,ankle,,,\n"
        "png/elbow.png,patient 1 (2),ankle radiograph,xray,ankle,,,\n"
        f"{MR_FRAMES},,MRI of the knee,mri,knee,2,,\n"
        f"{MR_FRAMES},,MRI of the knee,mri,knee,3,,\n"
        "nifti/abd.nii.gz,,CT of the abdomen,ct,abdomen,,1,\n"
        "nifti/abd.nii.gz,,CT of the abdomen,ct,abdomen,,2,\n"
        "nifti/abd.nii.gz,,CT of the abdomen,ct,abdomen,,1,coronal\n"
    )
    out = tmp_path / "work" / "out"
    result = invoke(str(source), "--captions", str(table), "--out", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    said = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert said.count("names the image's file") == 2
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path / "work/escaped.png").exists()
    ids = [r["id"] for r in read_manifest(out)]
    stem = id_from_path(MR_FRAMES)
    assert ids == ["patient 1 (2)", f"{stem}_frame2", f"{stem}_frame3"] + [
        "nifti_abd_slice1",
        "nifti_abd_slice2",
        "nifti_abd_coronal_slice1",
    ]
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(f"{i}.png" for i in ids)
    assert id_from_path("ünï/mr.dcm") != id_from_path("üné/mr.dcm")
    decomposed = unicodedata.normalize("NFD", "Müller/mr.dcm")  # as macOS writes names
    assert id_from_path(decomposed) == id_from_path("Müller/mr.dcm") == "Müller_mr"


def test_a_rerun_with_an_edited_csv_says_which_rows_keep_their_old_records(
    tmp_path: Path,
) -> None:
    source, _ = make_tree(tmp_path)
    table = tmp_path / "edit.csv"
    rows = [
        "path,caption,modality,region,view",
        "png/ankle.png,AP radiograph of the left ankle,xray,ankle,ap",
        "png/elbow.png,,xray,knee,ap",
    ]
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert invoke(str(source), "--captions", str(table), "--out", str(out)).exit_code == 0  # type: ignore[attr-defined]
    same = invoke(str(source), "--captions", str(table), "--out", str(out))
    assert "note:" not in same.output  # type: ignore[attr-defined]
    rows[1] = "png/ankle.png,lateral radiograph of the left ankle,xray,ankle,lateral"
    rows[2] = "png/elbow.png,,xray,knee,lateral"
    table.write_text("\n".join(rows) + "\n")
    edited = invoke(str(source), "--captions", str(table), "--out", str(out))
    said = " ".join(edited.output.split())  # type: ignore[attr-defined]
    assert "note: 2 rows give another caption or labels" in said
    assert "png_ankle, png_elbow" in said
    assert [r["labels"]["view"] for r in read_manifest(out)] == ["ap", "ap"]  # kept, as said


def test_column_names_in_any_case_keep_patient_and_split_and_warn_of_the_rest(
    tmp_path: Path,
) -> None:
    source, _ = make_tree(tmp_path)
    table = tmp_path / "hospital.csv"
    table.write_text(
        "Path,Modality,Body Part,Region,View,Laterality,Sex,Age,Patient ID,Split,Comments\n"
        "png/ankle.png,XR,Ankle,ankle,AP,L,F,45,P0001,Train,seen twice\n"
        "png/elbow.png,XR,Ankle,ankle,Lat,R,M,033Y,P0002,test,\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = invoke(str(source), "--captions", str(table), "--out", str(out), "--quiet")
    output = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert result.exit_code == 0, output  # type: ignore[attr-defined]
    assert output.count("warning: ignored 2 columns") == 1
    assert "that radsynth does not read: Body Part, Comments." in output
    first, second = read_manifest(out)
    assert first["labels"]["modality"] == "xray" and first["labels"]["region"] == "ankle"
    assert (first["labels"]["view"], first["labels"]["laterality"]) == ("ap", "left")
    assert (first["labels"]["sex"], first["labels"]["age"]) == ("female", 45)
    assert (second["labels"]["view"], second["labels"]["sex"]) == ("lateral", "male")
    assert (first["subject_id"], first["split"]) == ("P0001", "train")
    assert (second["subject_id"], second["split"]) == ("P0002", "test")
    assert "Comments" not in first and "comments" not in first


def test_two_columns_for_one_field_are_refused(tmp_path: Path) -> None:
    source, _ = make_tree(tmp_path)
    table = tmp_path / "twice.csv"
    table.write_text("path,sex,Sex\npng/ankle.png,F,M\n", encoding="utf-8")
    result = invoke(str(source), "--captions", str(table), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    message = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert "two columns for 'sex': 'sex' and 'Sex'; keep one of them" in message
    # A CSV of known columns only is not warned about.
    table.write_text("PATH,Caption\npng/ankle.png,AP radiograph of the left ankle\n")
    result = invoke(str(source), "--captions", str(table), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0 and "warning" not in result.output  # type: ignore[attr-defined]
