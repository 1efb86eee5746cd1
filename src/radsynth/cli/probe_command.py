"""`radsynth figure1` and `radsynth probe`: the reference study's figures and its whole
protocol, made by a radsynth model and scored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from radsynth.cli.diffusion_commands import CutoffOption
from radsynth.paths import BUILTIN_MODEL


def figure1(
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    model: Annotated[
        Path | None, typer.Option("--model", help="model folder (default: the built-in model)")
    ] = None,
    n: Annotated[int, typer.Option("-n", help="images per prompt, all kept")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="seed of the first image; +1 per image")] = 0,
    steps: Annotated[int | None, typer.Option("--steps", help="denoising steps")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="guidance scale")] = None,
    guidance_cutoff: CutoffOption = None,
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
    if guidance_cutoff is not None:
        pipe.guidance_cutoff = guidance_cutoff
    steps = int(pipe.default("num_inference_steps", steps))
    guidance = float(pipe.default("guidance_scale", guidance))
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
    # What remakes each image with `radsynth generate PROMPT --seed SEED`: the sampler as run.
    info = {
        "Model": str(folder),
        "num_inference_steps": str(steps),
        "guidance_scale": str(guidance),
        "guidance_cutoff": str(pipe.guidance_cutoff),
    }
    grid = write_figure(out, "figure1", rows, info, title)
    typer.echo(f"wrote {grid} and {len(prompts) * n} single images in {out / 'figure1'}")


def _model_folder(model: Path | None) -> Path:
    folder = model or BUILTIN_MODEL
    if not (folder / "model_index.json").is_file():
        what = "the built-in model" if model is None else "--model"
        raise typer.BadParameter(
            f"no model folder at {folder} ({what}): expected model_index.json there "
            "(train one with `radsynth train`, or pass --model DIR)"
        )
    return folder


def probe(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="output folder; a previous probe run's files there are replaced, others kept",
        ),
    ],
    model: Annotated[
        Path | None, typer.Option("--model", help="model folder (default: the built-in model)")
    ] = None,
    n: Annotated[
        int | None, typer.Option("--n", "-n", help="images per prompt (default 4)")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the first image")] = 0,
    steps: Annotated[
        int | None, typer.Option("--steps", help="denoising steps (default: the model's)")
    ] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="guidance scale")] = None,
    guidance_cutoff: CutoffOption = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="smoke run: 1 image per prompt, 4 steps, 1 edit each")
    ] = False,
    full_bodies: Annotated[
        int | None, typer.Option("--full-bodies", help="knee-to-full-body cases (default 4)")
    ] = None,
    reader: Annotated[
        Path | None,
        typer.Option(
            "--reader",
            help="full reader folder (default: the shipped one), not a stage such as "
            "train-finding-reader's (that goes in READER/findings/)",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="torch CPU threads (default: torch's)")
    ] = None,
    keep_images: Annotated[
        bool, typer.Option(help="also write every generated image at full size in OUT/images")
    ] = True,
) -> None:
    """The study's protocol scored (Figures 1 to 4, pathology, bias, memorization): writes
    OUT/scores.json (each target with name, value, threshold, n, met), OUT/report.html and its
    figure PNGs. The default run of the built-in model takes about 2 minutes on 2 CPU cores.
    Re-using OUT: once this run is done, the previous probe run's files there (scores.json,
    report.html, the figure PNGs, images/) are replaced, so none is left beside the new scores;
    other files are kept. A --quick run's report says it is a smoke run."""
    import time

    import torch

    from radsynth.cli.checks import check_out
    from radsynth.probe.protocol import ProbeConfig, check_probe_reader, run_probe, total_units
    from radsynth.probe.report import write_report

    check_out(out)
    if n is not None and n < 1:
        raise typer.BadParameter(f"--n must be at least 1 image per prompt, got {n}")
    if steps is not None and steps < 1:
        raise typer.BadParameter(f"--steps must be at least 1, got {steps}")
    if full_bodies is not None and full_bodies < 0:
        raise typer.BadParameter(f"--full-bodies must be 0 or more, got {full_bodies}")
    folder = _model_folder(model)
    overrides: dict[str, object] = {
        "seed": seed,
        "steps": steps,
        "guidance": guidance,
        "guidance_cutoff": guidance_cutoff,
    }
    if n is not None:
        overrides["n"] = n
    if full_bodies is not None:
        overrides["full_body_cases"] = full_bodies
    if quick:
        overrides["steps"] = steps or 4
        config = ProbeConfig.quick(**overrides)
    else:
        config = ProbeConfig(**overrides)  # type: ignore[arg-type]
    the_reader: object = "default"
    if reader is not None:
        from radsynth.evaluate.reader import load_reader

        try:
            check_probe_reader(reader)  # config.json only: a stage is refused before loading
            load_reader(reader)
        except (FileNotFoundError, ValueError) as error:
            raise typer.BadParameter(str(error)) from None
        the_reader = reader
    if threads is not None:
        if threads < 1:
            raise typer.BadParameter(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    err = Console(stderr=True)
    if (out / "scores.json").is_file():
        err.print(
            f"{out} holds a previous probe run: its outputs (scores.json, report.html, the "
            "figure PNGs, images/) are replaced when this run is done; other files are kept"
        )
    started = time.perf_counter()
    columns = (TextColumn("[bold]probe[/] {task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=err) as progress:
        task = progress.add_task("loading", total=total_units(config))
        try:
            result = run_probe(
                folder,
                config,
                reader=the_reader,
                on_step=lambda label: progress.update(task, advance=1, description=label),
            )
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        progress.update(task, description="writing the report")
        report = write_report(result, out, keep_images=keep_images)
    minutes = (time.perf_counter() - started) / 60
    met = sum(t.met for t in result.targets)
    typer.echo(
        f"wrote {report} and {out / 'scores.json'}: {met} of {len(result.targets)} targets met "
        f"({minutes:.1f} min)"
    )


def probe_compare(
    runs: Annotated[list[Path], typer.Argument(help="probe output folders (or their scores.json)")],
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="a column title per run, in order (default: folder names)"),
    ] = None,
    findings: Annotated[
        bool, typer.Option("--findings", help="also the finding effect of each pathology prompt")
    ] = False,
    pool: Annotated[
        bool,
        typer.Option(
            "--pool",
            help="runs with the same --label (one model and sampler on several seeds) make one "
            "column: proportions pooled over all their images, other targets at their worst run; "
            "runs sharing images (the same seed, or seeds closer than a run's image count) are "
            "refused",
        ),
    ] = False,
) -> None:
    """Probe runs side by side (models, seeds, checkpoints): each target's value and n per run,
    bold where met, '(differs)' where the runs disagree on met, a row of the settings that differ
    between runs (e.g. a --quick run's), and the targets met per run; as a Markdown table on
    stdout."""
    from radsynth.probe.compare import (
        compare_runs,
        finding_effect_table,
        load_run,
        markdown_table,
        pool_runs,
    )

    labels = list(label or [])
    if labels and len(labels) != len(runs):
        raise typer.BadParameter(f"{len(labels)} --label for {len(runs)} runs: give one per run")
    try:
        loaded = [load_run(path, labels[i] if labels else None) for i, path in enumerate(runs)]
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from None
    if pool:
        if not labels:
            raise typer.BadParameter(
                "--pool needs a --label per run: runs with the same label are pooled"
            )
        groups: dict[str, list] = {}
        for run in loaded:
            groups.setdefault(run.label, []).append(run)
        try:
            loaded = [pool_runs(group, name) for name, group in groups.items()]
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    comparison = compare_runs(loaded)
    typer.echo(markdown_table(comparison), nl=False)
    if findings:
        table = finding_effect_table(comparison)
        typer.echo("\n" + (table or "no run measured the finding effect\n"), nl=False)


def register(app: typer.Typer) -> None:
    """Add the probe commands to `app`."""
    app.command("figure1")(figure1)
    app.command("probe")(probe)
    app.command("probe-compare")(probe_compare)
