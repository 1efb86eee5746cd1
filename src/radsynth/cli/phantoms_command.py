"""`radsynth phantoms`: write phantom cases (images, masks, manifest) or a contact sheet."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from scipy import ndimage

from radsynth.cli.checks import PHANTOMS_SETTINGS_NAME, check_out, was_interrupted
from radsynth.cli.vocabulary_command import with_vocabulary_hint
from radsynth.io.manifest import MANIFEST_NAME, ManifestWriter, read_manifest
from radsynth.io.masks import load_masks, write_masks
from radsynth.io.png import write_png
from radsynth.io.provenance import PNG_SPACING_KEY, format_spacing_text
from radsynth.phantoms.cases import MAX_SIZE, MIN_SIZE, Case, make_case, shared_subject
from radsynth.phantoms.contact_sheet import labelled_sheet, make_contact_sheet
from radsynth.vocabulary import Labels, make_caption, parse_prompt

PREVIEW_NAME = "preview.png"
SETTINGS_NAME = PHANTOMS_SETTINGS_NAME  # the options a folder's cases were drawn with
CASE_FOLDERS = ("images", "display", "masks")
PREVIEW_CASES = 32  # the first cases of a folder shown in its preview
PREVIEW_TILE = 160  # px
PREVIEW_COLUMNS = 8
FINDING_OUTLINE = (255, 64, 64)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )


def subject_seed_for(base_seed: int, index: int, images_per_subject: int) -> int | None:
    """The shared subject of case `index` when several cases image one subject."""
    if images_per_subject <= 1:
        return None
    return int(
        np.random.SeedSequence([base_seed, index // images_per_subject]).generate_state(1)[0]
    )


def write_case(out: Path, case_id: str, case: Case) -> dict:
    """Write a case's 16-bit and 8-bit PNGs and its masks; return its manifest record."""
    text = {
        "Software": "radsynth phantoms",
        "Synthetic": "YES",
        "Caption": case.caption,
        "Seed": str(case.seed),
        # The spacing, so a case read back (ingest, outpainting at the same spacing) keeps it.
        PNG_SPACING_KEY: format_spacing_text(
            (float(case.image.pixel_spacing_mm[0]), float(case.image.pixel_spacing_mm[1]))
        ),
    }
    write_png(out / "images" / f"{case_id}.png", case.image.to_uint16(), text)
    write_png(out / "display" / f"{case_id}.png", case.image.to_uint8(), text)
    write_masks(out / "masks" / f"{case_id}.npz", case.image.masks, case.image.image.shape)
    return {
        "id": case_id,
        "image": f"images/{case_id}.png",
        "image_8bit": f"display/{case_id}.png",
        "masks": f"masks/{case_id}.npz",
        **case.record(),
    }


@dataclass(frozen=True)
class _Job:
    out: Path
    index: int
    seed: int
    size: int
    modality: str | None
    region: str | None
    view: str | None
    subject_seed: int | None
    labels: Labels | None = None  # a prompt's labels: the fields and findings it fixes


def _run_job(job: _Job, write: bool = True) -> dict:
    """Make one case and write its files; the caller appends the record to the manifest.
    `write=False` only draws the case, at the smallest size, to check the job's options."""
    asked = job.labels or Labels()
    size = job.size if write or not MIN_SIZE <= job.size <= MAX_SIZE else MIN_SIZE
    case = make_case(
        job.seed,
        modality=job.modality,
        region=job.region,
        view=job.view,
        laterality=asked.laterality,
        sex=asked.sex,
        age=asked.age,
        findings_=asked.findings if job.labels is not None else None,
        sequence=asked.sequence,
        size=size,
        subject_seed=job.subject_seed,
    )
    return write_case(job.out, f"case_{job.index:06d}", case) if write else {}


def prompt_labels(
    prompt: str, modality: str | None, region: str | None, view: str | None
) -> Labels:
    """The labels of `prompt`, with --modality, --region and --view filling the fields it
    leaves open; ValueError where the prompt and an option disagree or the prompt does not
    parse (the parser's message names the unknown words)."""
    labels = parse_prompt(prompt)
    options = {"modality": modality, "region": region, "view": view}
    for name, value in options.items():
        said = getattr(labels, name)
        if value is not None and said is not None and value != said:
            raise ValueError(f"--{name} {value} disagrees with the prompt's {name} {said!r}")
    labels = replace(
        labels,
        modality=labels.modality or modality,
        region=labels.region or region,
        view=labels.view or view,
    )
    if labels.region is None and (labels.findings or labels.laterality):
        asks = "findings" if labels.findings else "a side"
        raise ValueError(
            f"the prompt asks for {asks} but names no region; name one (in the prompt or "
            "with --region), or the findings would be drawn where they cannot be seen"
        )
    return labels


def generate_cases(
    out: Path,
    n: int,
    *,
    seed: int,
    size: int,
    modality: str | None,
    region: str | None,
    view: str | None,
    images_per_subject: int,
    overwrite: bool,
    resume: bool,
    workers: int = 1,
    labels: Labels | None = None,
) -> int:
    """Write `n` cases to `out`; returns how many were written (resumed runs skip done ones).

    `labels` (a parsed prompt, see `prompt_labels`) fixes every field and finding it gives;
    the others are drawn per case. With `workers` > 1 cases are rendered in that many
    processes; the files and the manifest are the same as with one (records are appended in
    case order)."""
    if n < 1:
        raise typer.BadParameter("--n must be at least 1")
    if workers < 1:
        raise typer.BadParameter("--workers must be at least 1")
    check_out(out)
    settings = {
        "seed": seed,
        "size": size,
        "modality": modality,
        "region": region,
        "view": view,
        "images_per_subject": images_per_subject,
        "labels": labels.to_dict() if labels is not None else None,
    }
    # Everything the options ask is checked before the folder is touched, so a mistake leaves
    # no half-made folder behind (the first case is drawn small: the same checks, quickly).
    _run_job(
        _Job(out, 0, seed, size, modality, region, view, None, labels),
        write=False,
    )
    if out.exists() and any(out.iterdir()):
        if not (overwrite or resume):
            raise typer.BadParameter(
                f"{out} is not empty: pass --resume to finish an interrupted run "
                "or --overwrite to replace the cases it holds"
            )
        _check_phantoms_folder(out, settings if resume and not overwrite else None)
    if overwrite:
        for name in (MANIFEST_NAME, PREVIEW_NAME, SETTINGS_NAME):
            (out / name).unlink(missing_ok=True)
        for folder in CASE_FOLDERS:
            shutil.rmtree(out / folder, ignore_errors=True)
    for folder in CASE_FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
    (out / SETTINGS_NAME).write_text(json.dumps(settings, indent=1) + "\n")
    written = 0
    with ManifestWriter(out) as manifest, _progress() as progress:
        task = progress.add_task("phantoms", total=n, completed=len(manifest.done_ids))
        jobs = [
            _Job(
                out,
                i,
                seed + i,
                size,
                modality,
                region,
                view,
                subject_seed_for(seed, i, images_per_subject),
                labels,
            )
            for i in range(n)
            if f"case_{i:06d}" not in manifest.done_ids
        ]
        per_subject = max(1, images_per_subject)
        for record in _records(jobs, workers):
            # The subject a case images, to split by patient (cases sharing a body share it).
            index = int(record["id"].removeprefix("case_"))
            manifest.append({**record, "subject_id": _subject_id(record, index, seed, per_subject)})
            written += 1
            progress.advance(task)
    write_preview(out)
    return written


def _subject_id(record: dict, index: int, seed: int, per_subject: int) -> str:
    """The id of the person a case images: its group's ("subject_000009") where the case shows
    the group's shared subject; one of its own where a case fixed who it images (a fetal
    ultrasound in a group whose subject is a man or past the fetal cases' ages is another
    woman, who must not share the id)."""
    group = f"subject_{index // per_subject:06d}"
    subject_seed = subject_seed_for(seed, index, per_subject)
    if subject_seed is None:
        return group
    shared = shared_subject(subject_seed)
    drawn = record.get("subject") or {}
    if (drawn.get("sex"), drawn.get("age")) == (shared.sex, shared.age):
        return group
    return f"{group}_{record['id']}"


def _check_phantoms_folder(out: Path, settings: dict | None) -> None:
    """Refuse to resume or overwrite a folder that is not a phantoms folder (a data set, an
    ingested archive), and to resume one drawn with other options (`settings`; None: no
    comparison). A phantoms folder of an older radsynth has no settings file: its records are
    checked against the seeds instead."""
    from radsynth.datasets.build import SPEC_NAME

    foreign = [SPEC_NAME] if (out / SPEC_NAME).exists() else []
    manifest = out / MANIFEST_NAME
    lines = manifest.read_text(encoding="utf-8").splitlines(True) if manifest.exists() else []
    try:  # complete lines only: a run killed while writing leaves its last line cut short
        records = [json.loads(line) for line in lines if line.endswith("\n") and line.strip()]
    except json.JSONDecodeError:
        records = [{}]  # not a manifest radsynth wrote
    # Case folders of files radsynth did not record (a user's own images/) are not ours.
    unrecorded = not records and not (out / SETTINGS_NAME).exists()
    foreign += [f"{name}/" for name in CASE_FOLDERS if unrecorded and any((out / name).glob("*"))]
    if foreign or any("render" not in r or "image_8bit" not in r for r in records):
        what = f" (it holds {', '.join(foreign)})" if foreign else ""
        raise typer.BadParameter(
            f"{out} is not a folder of `radsynth phantoms` cases{what}; give another --out"
        )
    if settings is None:
        return
    saved_path = out / SETTINGS_NAME
    if saved_path.exists():
        saved = json.loads(saved_path.read_text())
        differ = [key for key in settings if saved.get(key) != settings[key]]
        if differ:
            said = ", ".join(
                f"{k} {_said(k, saved.get(k))} (now {_said(k, settings[k])})" for k in differ
            )
            raise typer.BadParameter(
                f"{out} was drawn with other options: {said}; resume with the same options, "
                "or pass --overwrite to replace its cases"
            )
        return
    for record in records:
        index = int(str(record["id"]).removeprefix("case_"))
        if record.get("seed") != settings["seed"] + index:
            raise typer.BadParameter(
                f"{out}: {record['id']} was drawn from seed {record.get('seed')}, not "
                f"{settings['seed'] + index}; resume with the run's --seed"
            )
        labels = record.get("labels") or {}
        for key in ("modality", "region", "view"):
            if settings[key] is not None and labels.get(key) != settings[key]:
                raise typer.BadParameter(
                    f"{out}: {record['id']} is a {key} {labels.get(key)!r} case, not "
                    f"{settings[key]!r}; resume with the run's options"
                )
        with Image.open(out / record["image"]) as image:
            if image.size != (settings["size"], settings["size"]):
                raise typer.BadParameter(
                    f"{out}: {record['id']} is {image.size[0]} px, not --size "
                    f"{settings['size']}; resume with the run's options"
                )


def _said(key: str, value: object) -> str:
    """A setting as a message shows it: a prompt's labels as their terse caption."""
    if key == "labels" and isinstance(value, dict):
        return repr(make_caption(Labels.from_dict(value), np.random.default_rng(0), "terse"))
    return repr(value)


def write_preview(out: Path) -> Path:
    """`OUT/preview.png`: the folder's first PREVIEW_CASES cases, each finding's mask outlined
    in red and each case titled with its terse caption (id, labels), for a look before use."""
    tiles = []
    for record in read_manifest(out)[:PREVIEW_CASES]:
        with Image.open(out / record["image_8bit"]) as shown:
            gray = np.asarray(shown.convert("L").resize((PREVIEW_TILE, PREVIEW_TILE)))
        tile = np.repeat(gray[..., None], 3, axis=2)
        for name, mask in load_masks(out / record["masks"]).items():
            if name.startswith("finding_"):
                small = Image.fromarray(mask).resize((PREVIEW_TILE, PREVIEW_TILE))
                inside = np.asarray(small, dtype=bool)
                tile[inside & ~ndimage.binary_erosion(inside)] = FINDING_OUTLINE
        try:
            labels = Labels.from_dict(record["labels"])
            title = make_caption(labels, np.random.default_rng(0), "terse")
        except (KeyError, TypeError, ValueError):  # a record of an older radsynth
            title = str(record.get("caption", ""))
        tiles.append((tile, f"{record['id'].removeprefix('case_')} {title}"))
    path = out / PREVIEW_NAME
    labelled_sheet(tiles, PREVIEW_TILE, PREVIEW_COLUMNS).save(path)
    return path


def _records(jobs: list[_Job], workers: int) -> Iterator[dict]:
    if workers == 1 or len(jobs) < 2:
        yield from map(_run_job, jobs)
        return
    # Fresh interpreters (spawn), each rendering with one thread: forking a process whose
    # OpenMP threads run is unsafe, and two threads per process would oversubscribe the cores.
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(_run_job, jobs, chunksize=4)


def phantoms(
    out: Annotated[
        Path | None, typer.Option(help="Folder for images, masks and manifest.jsonl.")
    ] = None,
    n: Annotated[int, typer.Option(help="Number of cases.")] = 16,
    size: Annotated[int, typer.Option(help="Image size in pixels (square).")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the first case; case i uses seed + i.")] = 0,
    modality: Annotated[
        str | None, typer.Option(help="xray, ct, mri or us (default: mixed).")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region, e.g. knee, chest, liver (default: mixed).")
    ] = None,
    view: Annotated[
        str | None, typer.Option(help="ap, pa, lateral, axial, sagittal, coronal.")
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            help="Draw every case as this prompt asks, e.g. 'PA chest radiograph with bilateral "
            "pleural effusions': its modality, region, view, side, sex, age and findings "
            "(none if it names none); what it leaves open is drawn per case."
        ),
    ] = None,
    images_per_subject: Annotated[
        int, typer.Option(help="Cases that share one subject's body.")
    ] = 1,
    workers: Annotated[int, typer.Option(help="Processes rendering cases in parallel.")] = 1,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace the cases of a phantoms folder (other files are left alone)."),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(help="Finish an interrupted run in the same folder, with the same options."),
    ] = False,
    contact_sheet: Annotated[
        Path | None,
        typer.Option(
            help="Write one labelled sheet of every region, view, modality and finding to this PNG."
        ),
    ] = None,
) -> None:
    """Write procedural phantom cases, or a contact sheet of them."""
    if contact_sheet is not None:
        if out is not None or prompt is not None:
            raise typer.BadParameter(
                "--contact-sheet writes one sheet of every region, view and finding; "
                "give it without --out and --prompt (the cases of a folder: OUT/preview.png)"
            )
        with _progress() as progress:
            task = progress.add_task("contact sheet", total=None)
            make_contact_sheet(
                contact_sheet,
                seed=seed,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        typer.echo(f"wrote {contact_sheet}")
        return
    if out is None:
        raise typer.BadParameter("give --out DIR for cases, or --contact-sheet FILE.png")
    try:
        labels = None
        if prompt is not None:
            labels = prompt_labels(prompt, modality, region, view)
            modality, region, view = labels.modality, labels.region, labels.view
        written = generate_cases(
            out,
            n,
            seed=seed,
            size=size,
            modality=modality,
            region=region,
            view=view,
            images_per_subject=images_per_subject,
            overwrite=overwrite,
            resume=resume,
            workers=workers,
            labels=labels,
        )
    except ValueError as error:
        typer.echo(f"error: {with_vocabulary_hint(str(error))}", err=True)
        raise typer.Exit(code=2) from None
    except (KeyboardInterrupt, SystemError) as error:
        if not was_interrupted(error):
            raise
        typer.echo(
            "interrupted: the cases written so far are kept; finish with the same command "
            "and --resume",
            err=True,
        )
        raise typer.Exit(code=130) from None
    typer.echo(f"wrote {written} cases to {out} (a look at them: {out / PREVIEW_NAME})")


def register(app: typer.Typer) -> None:
    """Add the `phantoms` command to `app`."""
    app.command("phantoms")(phantoms)
