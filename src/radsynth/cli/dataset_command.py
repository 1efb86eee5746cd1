"""`radsynth dataset`: build synthetic data sets from a SPEC, or bring real images in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from radsynth.cli.checks import check_out, was_interrupted

dataset_app = typer.Typer(
    help="Build synthetic data sets, or ingest real images (images + manifest).",
    no_args_is_help=True,
)


@dataset_app.command("ingest")
def ingest_command(
    source: Annotated[
        Path, typer.Argument(help="Folder with the DICOM/NIfTI/PNG/TIFF/JPEG files.")
    ],
    captions: Annotated[
        Path,
        typer.Option(
            "--captions",
            help="CSV: a 'path' column relative to SOURCE, and 'caption' and/or label columns "
            "(modality, region, view, laterality, sex, age, findings); optional patient_id "
            "and split. Column names in any case; others are ignored with a warning.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder for images/ and manifest.jsonl.")
    ],
    on_error: Annotated[
        str,
        typer.Option(
            "--on-error", help="skip: report bad rows and go on; fail: stop at the first."
        ),
    ] = "skip",
    color: Annotated[
        str,
        typer.Option(
            "--color", help="error: refuse colour images; luminance: convert to grayscale."
        ),
    ] = "error",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Ingest real images listed in a CSV into a folder that `radsynth train` reads."""
    from radsynth.io.ingest import IngestError, ingest

    err = Console(stderr=True, soft_wrap=True)
    if on_error not in ("skip", "fail"):
        err.print(f"error: --on-error must be skip or fail, got {on_error!r}")
        raise typer.Exit(code=2)
    if color not in ("error", "luminance"):
        err.print(f"error: --color must be error or luminance, got {color!r}")
        raise typer.Exit(code=2)
    check_out(out)
    try:
        report = ingest(
            source,
            captions,
            out,
            on_error=on_error,  # type: ignore[arg-type]
            color=color,  # type: ignore[arg-type]
            progress=not quiet,
        )
    except IngestError as error:
        err.print(f"error: {error}", markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    if report.ignored_columns:
        err.print(
            f"warning: ignored {len(report.ignored_columns)} columns of {captions} that radsynth "
            f"does not read: {', '.join(report.ignored_columns)}. It reads path, caption, "
            "modality, region, view, laterality, sex, age, findings, sequence, window, id, "
            "frame, slice, axis, patient_id (kept as subject_id) and split, in any case and "
            "with spaces or underscores; rename a column to keep it.",
            markup=False,
            highlight=False,
        )
    console = Console(soft_wrap=True)
    console.print(
        f"wrote {report.written} images to {report.manifest}"
        + (f" ({report.already_done} already there)" if report.already_done else ""),
        markup=False,
        highlight=False,
    )
    if report.changed:
        shown = ", ".join(report.changed[:5]) + (", ..." if len(report.changed) > 5 else "")
        err.print(
            f"note: {len(report.changed)} rows give another caption or labels than the records "
            f"already in {out} ({shown}); they keep their old records. Ingest into a fresh "
            "--out to use the CSV as it is now.",
            markup=False,
            highlight=False,
        )
    if report.problems:
        err.print(f"skipped {len(report.problems)} bad rows of {captions}:", markup=False)
        for problem in report.problems:
            err.print(f"  {problem}", markup=False, highlight=False)
    if report.written == 0 and report.already_done == 0:
        raise typer.Exit(code=1)


@dataset_app.command("build")
def build_command(
    spec: Annotated[Path, typer.Argument(help="SPEC file (.yaml, .yml or .toml).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder of the data set.")],
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish an interrupted build of the same SPEC.")
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="Torch threads per process (default: CPU cores / processes). Give the same "
            "number to builds that must match bit for bit with different process counts.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Build a synthetic data set: images, manifest (JSONL, CSV, Parquet) and summary.html.

    In K processes: accelerate launch --num_processes K -m radsynth dataset build SPEC --out DIR

    Any K gives the same files (bit for bit with the same --threads; DICOM files get fresh
    UIDs, a fresh synthetic patient ID and the time they were written).
    """
    from radsynth.datasets import BuildError, SpecError, build_dataset, load_spec

    err = Console(stderr=True, soft_wrap=True)
    check_out(out)
    try:
        report = build_dataset(
            load_spec(spec), out, resume=resume, threads=threads, progress=not quiet
        )
    except (SpecError, BuildError) as error:
        err.print(f"error: {error}", markup=False, highlight=False)
        raise typer.Exit(code=2) from None
    except (KeyboardInterrupt, SystemError) as error:
        if not was_interrupted(error):
            raise
        err.print(
            f"interrupted: the records written so far are kept; finish with "
            f"`radsynth dataset build {spec} --out {out} --resume`",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(code=130) from None
    if report.manifest is not None:
        names = ["manifest.jsonl", "manifest.csv", "manifest.parquet", "summary.html"]
        written = ", ".join(name for name in names if (out / name).is_file())
        Console(soft_wrap=True).print(
            f"built {report.total} images in {out} ({written}); "
            f"{report.already_done} were already done",
            markup=False,
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add the `dataset` command group to `app`."""
    app.add_typer(dataset_app, name="dataset")
