"""`radsynth train-reader`: render phantom cases, train the reader, report held-out figures."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[loss]}"),
        console=console,
    )


def _step_reporter(
    progress: Progress, tasks: dict[str, TaskID], console: Console, steps: int
) -> Callable[[int, int, dict[str, float]], None]:
    """A training run's `on_step`: the loss on the progress bar, and about 100 log lines when
    the console is not a terminal (a log file shows how far a run got)."""
    log_every = max(1, steps // 100)
    started = time.monotonic()

    def on_step(step: int, total: int, terms: dict[str, float]) -> None:
        if "train" not in tasks:
            tasks["train"] = progress.add_task("training", total=total, loss="")
        loss = sum(terms.values())
        progress.update(tasks["train"], completed=step, loss=f"loss {loss:.3f}")
        if step % log_every == 0 and not console.is_terminal:
            detail = " ".join(f"{k} {v:.3f}" for k, v in terms.items())
            elapsed = time.monotonic() - started
            console.print(f"step {step}/{total} {elapsed:.0f}s loss {loss:.3f} ({detail})")

    return on_step


def _cache_reporter(
    progress: Progress, tasks: dict[str, TaskID], split: str, unit: str = "cases"
) -> Callable[[int, int], None]:
    """An `on_progress` while the `unit` of `split` are rendered: one bar per split."""

    key = f"cache {split}"  # not "train": that is the training bar's (`_step_reporter`)

    def report(done: int, total: int) -> None:
        if key not in tasks:
            tasks[key] = progress.add_task(f"rendering {split} {unit}", total=total, loss="")
        progress.update(tasks[key], completed=done)

    return report


def train_reader_command(
    out: Annotated[Path, typer.Option(help="Folder for checkpoints, the reader and heldout.json.")],
    n: Annotated[int, typer.Option(help="Training cases (rendered once, cached).")] = 4000,
    heldout: Annotated[int, typer.Option(help="Held-out cases scored at the end.")] = 400,
    steps: Annotated[int, typer.Option(help="Optimiser steps (batch of 16).")] = 3000,
    size: Annotated[
        int,
        typer.Option(
            help="Reader input size in pixels: a multiple of 32 (of 8 with --tiny, whose "
            "encoder has 3 stages)."
        ),
    ] = 160,
    seed: Annotated[int, typer.Option(help="Seed of the cases and of training.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes rendering the cache.")] = 1,
    threads: Annotated[int, typer.Option(help="Torch threads for training.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Cases per step.")] = 16,
    cache: Annotated[
        Path | None, typer.Option(help="Folder of cached cases (default OUT/cache); reusable.")
    ] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 100,
    variant_share: Annotated[
        float,
        typer.Option(
            help="Share of training cases drawn as variant radiographs (bones removed, fused "
            "or duplicated, breasts removed, field shifted), so the reader must look."
        ),
    ] = 0.0,
    tiny: Annotated[
        bool, typer.Option(help="A tiny network (tests and smoke runs), not for real use.")
    ] = False,
) -> None:
    """Train the reader on phantoms; an interrupted run resumes from OUT's checkpoint."""
    from radsynth.evaluate.reader.training import TrainReaderConfig, train_reader

    config = TrainReaderConfig(
        out=out,
        n=n,
        heldout=heldout,
        steps=steps,
        size=size,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
        threads=threads,
        checkpoint_every=checkpoint_every,
        variant_share=variant_share,
        cache=cache,
        extra={"command": " ".join(["radsynth", *sys.argv[1:]])},
    )
    if tiny:
        config.widths, config.decoder_width, config.full_res_width = (8, 16, 32), 8, 4
    console = Console(stderr=True)
    try:
        with _progress(console) as progress:
            tasks: dict[str, TaskID] = {}

            def on_cache(split: str, done: int, total: int) -> None:
                _cache_reporter(progress, tasks, split, "shards")(done, total)

            on_step = _step_reporter(progress, tasks, console, steps)
            record = train_reader(config, on_step=on_step, on_cache=on_cache)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(json.dumps(record["heldout"]["accuracy"]))
    typer.echo(f"reader and held-out figures written to {out}")


def _train_stage(
    config: Any,
    build: Callable[..., dict[str, Any]],
    train: Callable[..., dict[str, Any]],
    score: Callable[[Any, Any, dict[str, Any]], dict[str, Any]],
    heldout: int,
    reader: Path | None,
) -> dict[str, Any]:
    """Render a stage's held-out cases beside its training cases (`config.cache`), train the
    stage (`train(config, ...)`), score it beside `reader` (`score(reader, the stage's network,
    held-out cases)`) and write the training record and figures to OUT/heldout.json; returns
    the figures. Bad input and a missing reader are typer errors."""
    from radsynth.evaluate.reader.inference import load_reader
    from radsynth.evaluate.reader.model import load_reader_net

    if heldout < 1:
        raise typer.BadParameter("--heldout must be at least 1")
    console = Console(stderr=True)
    try:
        base = load_reader(reader)
        with _progress(console) as progress:
            tasks: dict[str, TaskID] = {}
            on_step = _step_reporter(progress, tasks, console, config.steps)
            held = build(
                config.cache.with_name("cases-heldout.npz"),
                config.seed,
                "heldout",
                heldout,
                config.workers,
                _cache_reporter(progress, tasks, "heldout"),
            )
            record = train(
                config, on_step=on_step, on_cache=_cache_reporter(progress, tasks, "train")
            )
        figures = score(base, load_reader_net(config.out), held)
    except (ValueError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error)) from error
    result = {"train": record, "heldout": figures}
    (config.out / "heldout.json").write_text(json.dumps(result, indent=2) + "\n")
    return figures


# Options every stage command (carpal, finding, body) takes alike; defaults are each command's.
StageOut = Annotated[Path, typer.Option(help="Folder for checkpoints, the stage and heldout.json.")]
StageSteps = Annotated[int, typer.Option(help="Optimiser steps.")]
StageSeed = Annotated[int, typer.Option(help="Seed of the cases and of training.")]
StageWorkers = Annotated[int, typer.Option(help="Processes rendering the cases.")]
StageThreads = Annotated[int, typer.Option(help="Torch threads for training.")]
StageBatch = Annotated[int, typer.Option(help="Cases per step.")]
StageCache = Annotated[
    Path | None, typer.Option(help="Folder of the rendered cases (default OUT); reusable.")
]
StageCheckpoints = Annotated[int, typer.Option(help="Steps between checkpoints.")]
StageTiny = Annotated[
    bool, typer.Option(help="A tiny network (tests and smoke runs), not for real use.")
]


def _stage_config(make: Callable[..., Any], out: Path, cache: Path | None, **fields: Any) -> Any:
    """A stage's training config (`make`, e.g. TrainCarpalConfig) writing into OUT, its
    training cases in CACHE (default OUT)/cases-train.npz, the command line recorded."""
    return make(
        out=out,
        cache=(cache or out) / "cases-train.npz",
        extra={"command": " ".join(["radsynth", *sys.argv[1:]])},
        **fields,
    )


def train_carpal_reader_command(
    out: StageOut,
    n: Annotated[int, typer.Option(help="Training cases (PA hands and wrists, cached).")] = 3000,
    heldout: Annotated[int, typer.Option(help="Held-out cases scored at the end.")] = 300,
    steps: StageSteps = 2500,
    seed: StageSeed = 0,
    workers: StageWorkers = 1,
    threads: StageThreads = 1,
    batch_size: StageBatch = 24,
    cache: StageCache = None,
    reader: Annotated[
        Path | None,
        typer.Option(
            help="Reader whose carpal mask places the box in the held-out scoring "
            "(default: the shipped reader)."
        ),
    ] = None,
    checkpoint_every: StageCheckpoints = 100,
    tiny: StageTiny = False,
) -> None:
    """Train the reader's carpal stage on phantom PA hands and wrists; an interrupted run
    resumes from OUT's checkpoint. Copy OUT's config.json and reader.safetensors into a reader
    folder's `carpals/` to use it."""
    from radsynth.evaluate.reader.carpals import (
        CarpalStage,
        TrainCarpalConfig,
        build_carpal_cases,
        evaluate_carpal_stage,
        train_carpal_reader,
    )
    from radsynth.evaluate.reader.inference import Reader
    from radsynth.evaluate.reader.model import ReaderNet

    config = _stage_config(
        TrainCarpalConfig,
        out,
        cache,
        n=n,
        steps=steps,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
        threads=threads,
        checkpoint_every=checkpoint_every,
    )
    if tiny:
        config.widths = (8, 16, 32)

    def score(base: Reader, net: ReaderNet, held: dict[str, Any]) -> dict[str, Any]:
        return evaluate_carpal_stage(Reader(base.net, CarpalStage(net)), held)

    figures = _train_stage(config, build_carpal_cases, train_carpal_reader, score, heldout, reader)
    for kind in ("eight_shown", "seven_shown"):
        scores = figures[kind]
        typer.echo(
            f"{kind.replace('_', ' ')}: exact count {scores['with_stage']['exact']:.3f} with the "
            f"stage, {scores['reader_alone']['exact']:.3f} by the reader alone "
            f"({scores['with_stage']['n']} cases)"
        )
    typer.echo(f"carpal stage and held-out figures written to {out}")


def train_finding_reader_command(
    out: StageOut,
    n: Annotated[int, typer.Option(help="Training radiographs (cached).")] = 3000,
    heldout: Annotated[int, typer.Option(help="Held-out radiographs scored at the end.")] = 600,
    steps: StageSteps = 2000,
    seed: StageSeed = 0,
    workers: StageWorkers = 1,
    threads: StageThreads = 1,
    batch_size: StageBatch = 16,
    cache: StageCache = None,
    reader: Annotated[
        Path | None,
        typer.Option(
            help="Reader the stage is scored beside in the held-out figures "
            "(default: the shipped reader)."
        ),
    ] = None,
    checkpoint_every: StageCheckpoints = 100,
    plan: Annotated[
        str,
        typer.Option(
            help="Which cases: 'all' (every radiograph region, kind first; the stage reads "
            "every radiograph) or 'extremity' (fractures of the hand, wrist, knee and ankle, "
            "bone tumours of the knee and ankle; the stage reads those regions only)."
        ),
    ] = "all",
    blur: Annotated[
        float,
        typer.Option(
            help="Smooth half of the training images by a Gaussian of sigma up to this many "
            "px of the 256 px radiograph (0: none), as generated images are softer."
        ),
    ] = 0.0,
    tiny: StageTiny = False,
) -> None:
    """Train one of the reader's finding stages on phantom radiographs in which fractures,
    bone tumours, nodules, consolidations and effusions are common; an interrupted run resumes
    from OUT's checkpoint. Copy OUT's config.json and reader.safetensors into a reader folder's
    `findings/` (plan 'all') or `findings_<plan>/` to use it."""
    from functools import partial

    from radsynth.evaluate.reader.findings import (
        FindingStage,
        TrainFindingConfig,
        build_finding_cases,
        evaluate_finding_stage,
        kinds_it_reads,
        stage_plan,
        train_finding_reader,
        without_stage,
    )
    from radsynth.evaluate.reader.inference import Reader
    from radsynth.evaluate.reader.model import ReaderNet

    try:
        chosen = stage_plan(plan)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if blur < 0:
        raise typer.BadParameter("--blur must be at least 0")
    config = _stage_config(
        TrainFindingConfig,
        out,
        cache,
        plan=plan,
        blur=blur,
        n=n,
        steps=steps,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
        threads=threads,
        checkpoint_every=checkpoint_every,
    )
    if tiny:
        config.widths, config.size = (8, 16, 32), 64

    def score(base: Reader, net: ReaderNet, held: dict[str, Any]) -> dict[str, Any]:
        if chosen.regions is None:  # against the reader's network alone
            return evaluate_finding_stage(Reader(base.net, findings=FindingStage(net)), held)
        # A stage of some regions is added after the reader's own stages and scored against
        # the reader with those stages.
        added = [*base.finding_stages, FindingStage(net, regions=chosen.regions)]
        return evaluate_finding_stage(Reader(base.net, base.carpals, added), held, base)

    build = partial(build_finding_cases, plan=plan)
    figures = _train_stage(config, build, train_finding_reader, score, heldout, reader)
    # The stage answers for the kinds of its plan it reads better than the reader without it
    # (see `kinds_it_reads`), on the plan's regions.
    config_path = out / "config.json"
    saved = json.loads(config_path.read_text())
    saved["reads"] = kinds_it_reads(figures, chosen.kinds)
    saved["plan"] = plan
    if chosen.regions is not None:
        saved["regions"] = list(chosen.regions)
    config_path.write_text(json.dumps(saved, indent=2) + "\n")
    without = "reader alone" if chosen.regions is None else "without the stage"
    for kind in chosen.kinds:
        scores = figures[kind]
        staged, alone = scores["with_stage"], without_stage(scores)
        typer.echo(
            f"{kind}: {scores['shown']} shown; sensitivity {staged['sensitivity']} with the "
            f"stage ({alone['sensitivity']} {without}), specificity {staged['specificity']} "
            f"({alone['specificity']}), AUROC {staged['auroc']} ({alone['auroc']})"
        )
    typer.echo(f"the stage reads: {', '.join(saved['reads']) or 'none of its kinds'}")
    typer.echo(f"finding stage and held-out figures written to {out}")


def train_body_reader_command(
    out: StageOut,
    n: Annotated[int, typer.Option(help="Training cases (whole-body AP phantoms, cached).")] = 1600,
    heldout: Annotated[int, typer.Option(help="Held-out cases scored at the end.")] = 200,
    steps: StageSteps = 1500,
    seed: StageSeed = 0,
    workers: StageWorkers = 1,
    threads: StageThreads = 1,
    batch_size: StageBatch = 12,
    cache: StageCache = None,
    reader: Annotated[
        Path | None,
        typer.Option(
            help="Reader the stage is compared with in the held-out scoring "
            "(default: the shipped reader)."
        ),
    ] = None,
    checkpoint_every: StageCheckpoints = 100,
    tiny: StageTiny = False,
) -> None:
    """Train the reader's body stage on whole-body AP phantoms (the femur, tibia and lumbar
    vertebrae of a knee grown to a full body); an interrupted run resumes from OUT's
    checkpoint. Copy OUT's config.json and reader.safetensors into a reader folder's `body/`
    to use it."""
    from radsynth.evaluate.reader.body import (
        BodyStage,
        TrainBodyConfig,
        build_body_cases,
        evaluate_body_stage,
        train_body_reader,
    )
    from radsynth.evaluate.reader.inference import Reader
    from radsynth.evaluate.reader.model import ReaderNet

    config = _stage_config(
        TrainBodyConfig,
        out,
        cache,
        n=n,
        steps=steps,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
        threads=threads,
        checkpoint_every=checkpoint_every,
    )
    if tiny:
        config.widths = (8, 16, 32)

    def score(base: Reader, net: ReaderNet, held: dict[str, Any]) -> dict[str, Any]:
        return evaluate_body_stage(BodyStage(net), held, base)

    figures = _train_stage(config, build_body_cases, train_body_reader, score, heldout, reader)
    for name in ("with_stage", "reader_alone"):
        scores = figures[name]
        typer.echo(
            f"{name.replace('_', ' ')}: femur/tibia ratio error median "
            f"{scores['ratio_error_median']:.3f}, within 5 % in "
            f"{scores['ratio_within_5_percent']:.3f}; lumbar count exact in "
            f"{scores['lumbar_count_exact']:.3f} ({figures['n']} cases)"
        )
    typer.echo(f"body stage and held-out figures written to {out}")


def register(app: typer.Typer) -> None:
    """Add the `train-reader`, `train-carpal-reader`, `train-finding-reader` and
    `train-body-reader` commands."""
    app.command("train-reader")(train_reader_command)
    app.command("train-carpal-reader")(train_carpal_reader_command)
    app.command("train-finding-reader")(train_finding_reader_command)
    app.command("train-body-reader")(train_body_reader_command)
