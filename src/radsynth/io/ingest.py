"""Turning a folder of real images plus a CSV into a radsynth data folder that training reads.

The CSV has a `path` column (relative to the source folder; nested layouts such as MIMIC-CXR's
`files/p10/p10000032/s50414267/<dicom_id>.dcm` work as they are) and either a `caption` column,
label columns, or both. Label columns: modality, region, view, laterality, sex, age, findings
(kinds separated by ";", each optionally "kind:site", or "kind:site:side" for a limb finding
on a midline region: "fracture:clavicle:left" on a chest radiograph), sequence, window; they
are checked by `radsynth.vocabulary.labels.Labels`. Optional columns: `id` (else made from the
path), `frame` (multi-frame DICOM, 4-D NIfTI), `slice` and `axis` (NIfTI), `patient_id` (kept
as the record's `subject_id`, the field radsynth's phantoms give for patient-level splits;
`subject_id` is read too) and `split` (train, val, test: kept as the record's `split`).
Column names are matched ignoring case, spaces, hyphens and underscores ("Sex", "Patient ID",
"PatientID"; also "gender", "PatientSex" and "PatientAge"); columns of other names are ignored
and listed in the report's `ignored_columns`.

Each image is read with `read_image`, windowed for display (the header's window, else its own
range) and stored as a 16-bit PNG under `images/`, with its pixel spacing in a text chunk; one
record per image goes to `manifest.jsonl` (keys: id, image, caption, labels, pixel_spacing_mm,
source, source_format, width, height, and subject_id and split where the CSV gives them). A
rerun resumes: ids already in the manifest are skipped.
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from radsynth.io.errors import ImageReadError
from radsynth.io.manifest import MANIFEST_NAME, ManifestWriter, iter_manifest
from radsynth.io.provenance import PNG_SPACING_KEY, format_spacing_text
from radsynth.io.reader import ColorPolicy, MedicalImage, read_image
from radsynth.vocabulary.labels import MODALITIES, Finding, Labels
from radsynth.vocabulary.terms import YEARS_OLD

OnError = Literal["skip", "fail"]
LABEL_COLUMNS = (
    "modality",
    "region",
    "view",
    "laterality",
    "sex",
    "age",
    "findings",
    "sequence",
    "window",
)
# Common spellings in hospital CSVs and DICOM headers, mapped to radsynth's canonical values.
ALIASES: dict[str, dict[str, str]] = {
    "modality": {
        "cr": "xray",
        "dx": "xray",
        "rx": "xray",
        "xr": "xray",
        "x_ray": "xray",
        "radiograph": "xray",
        "radiography": "xray",
        "mr": "mri",
        "ultrasound": "us",
    },
    "view": {"ll": "lateral", "rl": "lateral", "lat": "lateral", "latero_lateral": "lateral"},
    "laterality": {"l": "left", "r": "right"},
    "sex": {"f": "female", "m": "male", "w": "female"},
}
NO_FINDING = {"", "none", "normal", "no_finding", "no_findings"}
OTHER_COLUMNS = ("path", "caption", "id", "frame", "slice", "axis", "subject_id", "split")
# Other names of columns, as their key (see `column_key`) -> the column radsynth reads.
COLUMN_ALIASES = {
    "patientid": "subject_id",
    "subject": "subject_id",
    "gender": "sex",
    "patientsex": "sex",
    "patientage": "age",
}


def column_key(name: str) -> str:
    """A CSV column name as it is matched: lower case, no spaces, hyphens or underscores."""
    return re.sub(r"[\s_-]+", "", name.strip().lower())


KNOWN_COLUMNS = {column_key(c): c for c in (*OTHER_COLUMNS, *LABEL_COLUMNS)} | COLUMN_ALIASES


class IngestError(ValueError):
    """The ingest cannot go on: a bad CSV or folder, or a bad row with on_error="fail"."""


@dataclass(frozen=True)
class RowProblem:
    """A CSV row that was not ingested: its line in the CSV, its path and why."""

    line: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.path or '(no path)'}: {self.reason}"


@dataclass
class IngestReport:
    """What an ingest run did."""

    manifest: Path  # the manifest.jsonl written to
    written: int = 0  # images written in this run
    already_done: int = 0  # rows skipped because their id was in the manifest already
    # Ids of skipped rows whose caption or labels differ from the record already there (an
    # edited CSV rerun into the same folder keeps the old records).
    changed: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)  # rows skipped as bad
    # CSV columns radsynth does not read (not stored anywhere), as the CSV names them.
    ignored_columns: list[str] = field(default_factory=list)


def ingest(
    source: str | Path,
    captions: str | Path,
    out: str | Path,
    *,
    on_error: OnError = "skip",
    color: ColorPolicy = "error",
    progress: bool = True,
) -> IngestReport:
    """Ingest the images listed in the CSV `captions` from folder `source` into folder `out`.

    Bad rows are collected in the report (`on_error="skip"`) or stop the run with an
    `IngestError` naming the CSV line, file and reason (`on_error="fail"`). `color="luminance"`
    converts colour images (e.g. ultrasound) to grayscale instead of refusing them.
    """
    source, captions, out = Path(source), Path(captions), Path(out)
    if not source.is_dir():
        raise IngestError(f"source folder {source} does not exist or is not a folder")
    rows, ignored = _read_rows(captions)
    caption_writer = _caption_writer()
    (out / "images").mkdir(parents=True, exist_ok=True)
    report = IngestReport(manifest=out / MANIFEST_NAME, ignored_columns=ignored)
    seen: set[str] = set()
    with ManifestWriter(out) as manifest, _progress(progress) as bar:
        before = {r["id"]: r for r in iter_manifest(manifest.path)} if manifest.done_ids else {}
        task = bar.add_task("ingest", total=len(rows)) if bar is not None else None
        for line, row in rows:
            try:
                record = _ingest_row(
                    source, out, row, caption_writer, color, manifest.done_ids, seen, before,
                    report.changed,
                )  # fmt: skip
            except (ImageReadError, ValueError) as error:
                reason = error.problem if isinstance(error, ImageReadError) else str(error)
                problem = RowProblem(line, str(row.get("path") or "").strip(), reason)
                if on_error == "fail":
                    raise IngestError(f"{captions}: {problem}") from None
                report.problems.append(problem)
            else:
                if record is None:
                    report.already_done += 1
                else:
                    manifest.append(record)
                    report.written += 1
            if bar is not None and task is not None:
                bar.advance(task)
    return report


def _progress(enabled: bool) -> Any:
    if not enabled:
        return nullcontext(None)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )


def _canonical_columns(captions: Path, names: list[str]) -> tuple[list[str], list[str]]:
    """The column radsynth reads under each CSV column name ("" for one it does not read),
    and the names of those it does not read. Two columns for one field are refused."""
    columns: list[str] = []
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        column = KNOWN_COLUMNS.get(column_key(name), "")
        if not column:
            if name.strip():
                ignored.append(name.strip())
        elif column in seen:
            raise IngestError(
                f"{captions} has two columns for {column!r}: {seen[column]!r} and "
                f"{name.strip()!r}; keep one of them"
            )
        else:
            seen[column] = name.strip()
        columns.append(column)
    return columns, ignored


def _read_rows(captions: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(CSV line number, row) pairs under radsynth's column names, and the names of the
    columns it does not read; checks the columns before any image is read."""
    if not captions.is_file():
        raise IngestError(f"captions CSV {captions} does not exist")
    try:
        with captions.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            given = list(reader.fieldnames or [])
            canonical, ignored = _canonical_columns(captions, given)
            reader.fieldnames = canonical
            rows = [(reader.line_num, {k: v for k, v in row.items() if k}) for row in _rows(reader)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise IngestError(f"{captions} is not a readable UTF-8 CSV file ({error})") from None
    columns = [c for c in canonical if c]
    if "path" not in columns:
        raise IngestError(
            f"{captions} has no 'path' column (columns: {', '.join(given) or 'none'}); "
            "add one with each image's path relative to the source folder"
        )
    if "caption" not in columns and not set(LABEL_COLUMNS) & set(columns):
        raise IngestError(
            f"{captions} has neither a 'caption' column nor label columns "
            f"({', '.join(LABEL_COLUMNS)}); add one of them"
        )
    return rows, ignored


def _rows(reader: csv.DictReader[str]) -> Iterator[dict[str, str]]:
    for row in reader:
        if any((value or "").strip() for key, value in row.items() if key is not None):
            yield {key: (value or "") for key, value in row.items() if key is not None}


def _caption_writer() -> Callable[[Labels], str] | None:
    """radsynth.vocabulary's make_caption in its canonical style, when the vocabulary has it."""
    try:
        from radsynth.vocabulary.captions import make_caption
    except ImportError:
        return None

    def write(labels: Labels) -> str:
        # The canonical style draws no random wording; the generator only fills the argument.
        return str(make_caption(labels, np.random.default_rng(0), style="canonical"))

    return write


def _ingest_row(
    source: Path,
    out: Path,
    row: Mapping[str, str],
    caption_writer: Callable[[Labels], str] | None,
    color: ColorPolicy,
    done_ids: set[str],
    seen: set[str],
    before: Mapping[str, Mapping[str, Any]] | None = None,
    changed: list[str] | None = None,
) -> dict[str, Any] | None:
    """Read, label, caption and store one row's image; None when its id was done before (its
    id goes to `changed` where the row's caption or labels differ from that record)."""
    relative = row.get("path", "").strip()
    if not relative:
        raise ValueError("the path cell is empty")
    file = _inside(source, relative)
    image_id = row.get("id", "").strip()
    if image_id and (image_id.startswith(".") or re.search(r'[/\\:*?"<>|\x00-\x1f]', image_id)):
        raise ValueError(
            f"id {image_id!r} names the image's file: it may not hold / \\ : * ? \" < > | "
            "or control characters, nor start with '.'"
        )
    frame, slice_index = _optional_int(row, "frame"), _optional_int(row, "slice")
    axis = row.get("axis", "").strip().lower() if slice_index is not None else ""
    image_id = image_id or id_from_path(relative, frame, slice_index, axis or None)
    if image_id in seen:
        raise ValueError(f"id {image_id!r} appears twice in the CSV; give each row its own id")
    seen.add(image_id)
    if image_id in done_ids:
        old = (before or {}).get(image_id)
        if old is not None and changed is not None and _row_differs(row, old):
            changed.append(image_id)
        return None
    image = read_image(
        file,
        frame=frame,
        slice_index=slice_index,
        axis=_axis(row),
        color=color,
    )
    labels = labels_from_row(row, image)
    caption = row.get("caption", "").strip()
    if not caption:
        if caption_writer is None:
            raise ValueError(
                "the caption cell is empty; fill it in (writing captions from labels needs "
                "radsynth.vocabulary.make_caption)"
            )
        caption = caption_writer(labels)
    name = f"images/{image_id}.png"
    text = {"Software": "radsynth", "Description": caption, "source": relative}
    if image.pixel_spacing_mm is not None:
        text[PNG_SPACING_KEY] = format_spacing_text(image.pixel_spacing_mm)
    save_png16(out / name, to_uint16(image.windowed()), text)
    spacing = image.pixel_spacing_mm
    return _optional_fields(row) | {
        "id": image_id,
        "image": name,
        "caption": caption,
        "labels": labels.to_dict(),
        "pixel_spacing_mm": list(spacing) if spacing is not None else None,
        "source": Path(relative).as_posix(),
        "source_format": image.format,
        "height": image.shape[0],
        "width": image.shape[1],
    }


def _optional_fields(row: Mapping[str, str]) -> dict[str, str]:
    """The record's `subject_id` and `split` where the row gives them (the split lower case)."""
    fields = {}
    subject = row.get("subject_id", "").strip()
    if subject:
        fields["subject_id"] = subject
    split = row.get("split", "").strip().lower()
    if split:
        fields["split"] = split
    return fields


def _row_differs(row: Mapping[str, str], record: Mapping[str, Any]) -> bool:
    """Whether a row gives a caption or a label other than its record holds."""
    caption = row.get("caption", "").strip()
    if caption and caption != record.get("caption"):
        return True
    try:
        said = labels_from_row(row).to_dict()
    except ValueError:
        return True
    held = record.get("labels") or {}
    return any(value not in (None, []) and held.get(key) != value for key, value in said.items())


def save_png16(path: Path, pixels: np.ndarray, text: Mapping[str, str]) -> None:
    """Write a uint16 array as a 16-bit grayscale PNG with text chunks, atomically.

    The same file `radsynth.io.png.write_png` writes; kept here because Pillow 13 refuses the
    explicit "I;16" mode that write_png passes for uint16 arrays.
    """
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(np.ascontiguousarray(pixels, dtype="<u2")).save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


def to_uint16(display: np.ndarray) -> np.ndarray:
    """Display values in [0, 1] as uint16 0..65535."""
    return np.round(np.clip(display, 0.0, 1.0) * 65535.0).astype(np.uint16)


def id_from_path(
    relative: str,
    frame: int | None = None,
    slice_index: int | None = None,
    axis: str | None = None,
) -> str:
    """A file-name-safe id from a relative path: "files/p10/x.dcm" -> "files_p10_x"; a frame
    or slice of the file adds "_frame3" or "_slice5" (an axis given: "_sagittal_slice5"), so
    one volume can give several rows.
    Letters outside ASCII are kept ("ünï/mr.dcm" -> "ünï_mr")."""
    path = Path(unicodedata.normalize("NFC", relative))  # one id for NFC and NFD (macOS) names
    stem = path.name
    for suffix in (".nii.gz", ".dcm", ".dicom", ".nii", ".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    parts = [*path.parent.parts, stem]
    if frame is not None:
        parts.append(f"frame{frame}")
    if slice_index is not None:
        parts.extend([axis or "", f"slice{slice_index}"])
    joined = "_".join(p for p in parts if p not in ("", "."))
    return re.sub(r"[^\w.-]+", "_", joined).strip("._")


def _inside(source: Path, relative: str) -> Path:
    root = source.resolve()
    file = (root / relative).resolve()
    if not file.is_relative_to(root):
        raise ValueError(f"the path leaves the source folder {source}; paths must stay inside it")
    if not file.is_file():
        raise ValueError(f"no such file under {source}")
    return file


def _optional_int(row: Mapping[str, str], column: str) -> int | None:
    value = row.get(column, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"column {column!r} must be a whole number, got {value!r}") from None


def _axis(row: Mapping[str, str]) -> Any:
    value = row.get("axis", "").strip().lower()
    if not value:
        return "axial"
    return int(value) if value.isdigit() else value


def _canonical(column: str, value: str) -> str | None:
    word = re.sub(r"[\s-]+", "_", value.strip().lower())
    if not word:
        return None
    return ALIASES.get(column, {}).get(word, word)


def labels_from_row(row: Mapping[str, str], image: MedicalImage | None = None) -> Labels:
    """Labels from a CSV row's label columns; the modality falls back to the DICOM header's.

    Raises ValueError (from `Labels`) naming the bad value and the allowed ones.
    """
    values: dict[str, Any] = {}
    for column in ("modality", "region", "view", "laterality", "sex", "sequence", "window"):
        values[column] = _canonical(column, row.get(column, ""))
    if values["modality"] is None and image is not None and image.modality:
        from_header = _canonical("modality", image.modality)
        values["modality"] = from_header if from_header in MODALITIES else None
    age = row.get("age", "").strip()
    if age:
        values["age"] = age_in_years(age)
    values["findings"] = _findings(row.get("findings", ""))
    return Labels(**values)


# An age's unit -> its length in years: DICOM Age String letters (045Y, 018M, 003W, 010D) and
# written-out units; no unit means years.
AGE_UNITS: dict[str, float] = {
    **dict.fromkeys(("", "y", "yr", "yrs", "year", "years", "yo"), 1.0),
    **dict.fromkeys(("m", "mo", "mos", "month", "months"), 1 / 12),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 / 365.25),
    **dict.fromkeys(("d", "day", "days"), 1 / 365.25),
}


def age_in_years(cell: str) -> int:
    """Whole years of an age cell: "45", "45 years", "045Y" (DICOM), "18 months" or "018M" (1),
    "3 weeks" (0); ValueError for anything else, rather than reading months as years."""
    # "45-year-old", "45 y/o", "45 y.o." and a de-identified "90+" are years too.
    text = YEARS_OLD.sub("yo", cell.strip().lower())
    text = re.sub(r"[-\s]+", " ", text)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\+?\s*([a-z]*)\.?(?: old)?", text)
    unit = match.group(2) if match else None
    if match is None or unit not in AGE_UNITS:
        raise ValueError(
            f"age {cell!r} is not an age: give years (45, '45 years', DICOM '045Y') or months, "
            "weeks or days ('18 months', '018M', '3 weeks', '010D')"
        )
    return int(float(match.group(1)) * AGE_UNITS[unit] + 1e-9)


def _findings(cell: str) -> tuple[Finding, ...]:
    findings = []
    for item in re.split(r"[;|]", cell):
        kind, _, place = item.partition(":")
        site, _, side = place.partition(":")
        kind_word = _canonical("findings", kind) or ""
        if kind_word in NO_FINDING:
            continue
        findings.append(
            Finding(
                kind_word,
                _canonical("findings", site),
                side=_canonical("laterality", side),
            )
        )
    return tuple(findings)
