"""`radsynth figure1`: the reference study's Figure 1, made by a radsynth model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

BUILTIN_MODEL = Path(__file__).resolve().parents[1] / "models" / "builtin"


def figure1(
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    model: Annotated[
        Path | None, typer.Option("--model", help="model folder (default: the built-in model)")
    ] = None,
    n: Annotated[int, typer.Option("-n", help="images per prompt, all kept")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="seed of the first image; +1 per image")] = 0,
    steps: Annotated[int | None, typer.Option("--steps", help="denoising steps")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="guidance scale")] = None,
) -> None:
    """Figure 1: "An X-ray of the <region>" for the study's eight regions, N images each, all kept:
    OUT/figure1.png (labelled grid) and OUT/figure1/*.png (single images, each with its seed)."""
    from radsynth.pipelines import TextToImagePipeline
    from radsynth.probe.figures import figure1_prompts, generate_rows, write_figure

    err = Console(stderr=True)
    folder = model or BUILTIN_MODEL
    if n < 1:
        raise typer.BadParameter(f"-n must be at least 1, got {n}")
    try:
        pipe = cast(TextToImagePipeline, TextToImagePipeline.from_pretrained(folder))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    pipe.set_progress_bar_config(disable=True)
    prompts = figure1_prompts()
    columns = (TextColumn("[bold]Figure 1"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=err) as progress:
        task = progress.add_task("prompts", total=len(prompts))
        rows = generate_rows(
            pipe,
            prompts,
            images_per_prompt=n,
            seed=seed,
            on_row=lambda done, _total: progress.update(task, completed=done),
            num_inference_steps=steps,
            guidance_scale=guidance,
        )
    title = f"radsynth {folder.name}: 'An X-ray of the <region>', {n} images per prompt, all kept"
    grid = write_figure(out, "figure1", rows, {"Model": str(folder)}, title)
    typer.echo(f"wrote {grid} and {len(prompts) * n} single images in {out / 'figure1'}")


def register(app: typer.Typer) -> None:
    """Add the probe commands to `app`."""
    app.command("figure1")(figure1)
