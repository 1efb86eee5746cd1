"""`radsynth evaluate`: score a folder of synthetic images against real (and training) images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from radsynth.cli.checks import check_out


def evaluate_command(
    real: Annotated[
        Path,
        typer.Option(
            "--real", help="Folder of real images (PNG/DICOM/..., or with manifest.jsonl)."
        ),
    ],
    synthetic: Annotated[
        Path,
        typer.Option(
            "--synthetic",
            help="Folder of generated images; a manifest.jsonl with prompts, labels or "
            "captions groups them by prompt for MS-SSIM diversity and gives what conditional "
            "accuracy and the anatomy checks score.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for scores.json and report.html.")],
    train: Annotated[
        Path | None,
        typer.Option("--train", help="Training images: audit the synthetic ones for copies."),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            help="Resize every image to SIZE x SIZE px (default: keep one shared square size, "
            "else 128).",
        ),
    ] = None,
    k: Annotated[
        int, typer.Option("--k", help="Neighbours for precision/recall/density/coverage.")
    ] = 5,
    on_error: Annotated[
        str,
        typer.Option("--on-error", help="fail: stop at an unreadable file; skip: list and go on."),
    ] = "fail",
    color: Annotated[
        str,
        typer.Option(
            "--color",
            help="error: refuse colour images; luminance: convert them to grayscale "
            "(ITU-R BT.601).",
        ),
    ] = "error",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Fréchet distance, precision/recall/density/coverage, MS-SSIM diversity, conditional
    accuracy, anatomy checks of radiographs whose prompt names a region, and a memorization
    audit; writes OUT/scores.json and OUT/report.html."""
    from radsynth.evaluate.metrics.suite import (
        EvaluateError,
        EvaluateOptions,
        evaluate_folders,
        write_report,
    )

    err = Console(stderr=True, soft_wrap=True)
    if on_error not in ("fail", "skip"):
        err.print(f"error: --on-error must be fail or skip, got {on_error!r}", markup=False)
        raise typer.Exit(code=2)
    if color not in ("error", "luminance"):
        err.print(f"error: --color must be error or luminance, got {color!r}", markup=False)
        raise typer.Exit(code=2)
    if k < 1 or (size is not None and size < 32):
        err.print("error: --k must be at least 1 and --size at least 32", markup=False)
        raise typer.Exit(code=2)
    check_out(out)
    if (out / "scores.json").is_file():
        typer.echo(
            f"note: {out} holds an earlier evaluation; its scores.json and report.html will be "
            "replaced (give another --out to keep them)",
            err=True,
        )
    options = EvaluateOptions(
        size=size,
        k=k,
        on_error=on_error,  # type: ignore[arg-type]
        color=color,  # type: ignore[arg-type]
        progress=not quiet,
    )
    try:
        result = evaluate_folders(real, synthetic, train, options)
    except EvaluateError as error:
        err.print(f"error: {error}", markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    json_path, html_path = write_report(result, out)
    console = Console(soft_wrap=True)
    for note in result["notes"]:
        err.print(f"note: {note}", markup=False, highlight=False)
    for name, image_set in result["sets"].items():
        for problem in image_set["skipped"]:
            err.print(f"skipped ({name}): {problem}", markup=False, highlight=False)
    console.print(
        f"features: {result['extractor']['name']}; wrote {json_path} and {html_path}",
        markup=False,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add `radsynth evaluate` to the app."""
    app.command("evaluate")(evaluate_command)
