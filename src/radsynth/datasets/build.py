"""Building a synthetic data set from a SPEC: deterministic, resumable, split over processes.

Run in one process, or in K under `accelerate launch --num_processes K`: process `rank` makes
the records whose index i has i % K == rank. Record i depends on the SPEC and i alone (seed
`spec.seed + i`, split from a hash of the seed), so any K gives the same files, bit for bit
when every process runs the same number of torch threads (`threads`). With different thread
counts (the default gives each of K processes cores // K) PyTorch's oneDNN convolutions may
round differently, which can move a model's pixel by one 16-bit step; phantoms are unaffected.

Crash safety (a kill -9 at any moment loses nothing that a resumed build cannot finish):

1. The main process checks the output folder and saves the normalised SPEC as `spec.json`;
   a resumed build must match it, and cut-short journal lines are removed.
2. Each process writes a record's files (temporary names, then `os.replace`) and only then
   appends the record to its own journal, flushed and fsynced. Records already in any
   journal are skipped, so no record is made twice and none is lost.
3. When every process is done, the main process merges the journals in index order into
   the manifest files and the summary page (again temporary names, then renamed), and
   removes temporary files that killed runs left behind.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from radsynth.datasets import journal
from radsynth.datasets.export import export_manifest
from radsynth.datasets.records import (
    DICOM_DIR,
    DISPLAY_DIR,
    IMAGE_DIR,
    MASK_DIR,
    OUTPUT_DIRS,
    make_record,
)
from radsynth.datasets.sources import open_source
from radsynth.datasets.spec import DatasetSpec
from radsynth.datasets.summary import write_summary

SPEC_NAME = "spec.json"
POLL_SECONDS = 0.5  # how often the main process looks at the other processes' journals


class BuildError(ValueError):
    """A build that cannot start or finish; the message says what to do."""


@dataclass
class BuildReport:
    """What a build did."""

    out: Path
    total: int  # records in the data set
    written: int  # records this process made in this run
    already_done: int  # records found done when this run started (resumed)
    num_processes: int
    manifest: Path | None  # the merged manifest (main process only)


@dataclass
class _Runtime:
    """Who this process is: its rank among `num_processes`, and its torch device."""

    rank: int
    num_processes: int
    is_main: bool
    device: Any
    state: Any  # accelerate.PartialState, for wait_for_everyone

    def wait(self) -> None:
        if self.num_processes > 1:
            self.state.wait_for_everyone()


def _runtime() -> _Runtime:
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # Without a GPU, processes started by `accelerate launch` talk over gloo on the CPU
    # (PartialState, unlike Accelerator, does not read ACCELERATE_USE_CPU by itself).
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    return _Runtime(
        state.process_index,
        state.num_processes,
        state.is_main_process,
        state.device,
        state,
    )


def build_dataset(
    spec: DatasetSpec,
    out: str | Path,
    *,
    resume: bool = False,
    threads: int | None = None,
    progress: bool = True,
) -> BuildReport:
    """Build the data set of `spec` in `out` (see the module doc); return what was done.

    `threads`: torch (and numba) threads of this process; default the CPU cores divided by
    the number of processes. `resume=True` finishes an interrupted build of the same SPEC.
    """
    out = Path(out)
    runtime = _runtime()
    _set_threads(spec, threads, runtime)
    # The source is opened first: a SPEC the model or the phantoms cannot make fails before
    # anything is written.
    source = open_source(spec, runtime.device if runtime.device.type != "cpu" else None)
    if runtime.is_main:
        _prepare_folder(spec, out, resume, source.model_sha256)
    runtime.wait()
    done = journal.done_mask(out, spec.total)
    starts = [0, *accumulate(entry.count for entry in spec.prompts)]
    bar = _progress_bar(progress and runtime.is_main, runtime.num_processes)
    counter = journal.JournalCounter(out)
    written = 0
    with bar, journal.JournalWriter(out, runtime.rank) as writer:
        task = bar.add_task("dataset", total=spec.total, completed=counter.count())
        last_poll = time.monotonic()
        for index in range(runtime.rank, spec.total, runtime.num_processes):
            if done[index]:
                continue
            entry_index = bisect.bisect_right(starts, index) - 1
            writer.append(make_record(spec, source, out, index, entry_index))
            written += 1
            if time.monotonic() - last_poll > POLL_SECONDS:
                bar.update(task, completed=counter.count())
                last_poll = time.monotonic()
        if runtime.is_main:
            # Keep the bar moving while the other processes finish their shares.
            while counter.count() < spec.total and runtime.num_processes > 1:
                bar.update(task, completed=counter.count())
                time.sleep(POLL_SECONDS)
            bar.update(task, completed=counter.count())
    runtime.wait()
    manifest = _finish(spec, out) if runtime.is_main else None
    already = int(done.sum())
    return BuildReport(out, spec.total, written, already, runtime.num_processes, manifest)


def _prepare_folder(spec: DatasetSpec, out: Path, resume: bool, model_sha256: str | None) -> None:
    """Check `out` (empty, or a resumable build of the same SPEC and model weights) and lay
    it out; `spec.json` holds the normalised SPEC and the weights' SHA-256."""
    saved = out / SPEC_NAME
    wanted = {**spec.to_dict(), "model_sha256": model_sha256}
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise BuildError(
                f"{out} is not empty: pass --resume to finish an interrupted build of the "
                "same SPEC, or choose a new folder"
            )
        if not saved.is_file():
            raise BuildError(f"{out} holds no {SPEC_NAME}: it is not a radsynth data set build")
        before = json.loads(saved.read_text(encoding="utf-8"))
        changed = sorted(key for key in wanted if before.get(key) != wanted[key])
        if changed:
            raise BuildError(
                f"{out} was built from another SPEC or model (differs in: "
                f"{', '.join(changed)}); resume with the SPEC and model it was started with, "
                "or build into a new folder"
            )
        journal.drop_partial_lines(out)
    out.mkdir(parents=True, exist_ok=True)
    needed = {
        IMAGE_DIR: "png" in spec.formats,
        DISPLAY_DIR: "png" in spec.formats,
        DICOM_DIR: "dicom" in spec.formats,
        MASK_DIR: spec.source == "phantoms",
    }
    for name in OUTPUT_DIRS:
        if needed[name]:  # no empty folders of formats the SPEC does not ask for
            (out / name).mkdir(exist_ok=True)
    tmp = saved.with_name(SPEC_NAME + ".tmp")
    tmp.write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(saved)


def _set_threads(spec: DatasetSpec, threads: int | None, runtime: _Runtime) -> None:
    """Share the CPU cores among the processes (a GPU process keeps torch's default)."""
    if threads is not None and threads < 1:
        raise BuildError(f"threads must be at least 1, got {threads}")
    if runtime.device.type != "cpu" and threads is None:
        return
    count = threads or max(1, (os.cpu_count() or 1) // runtime.num_processes)
    import torch

    torch.set_num_threads(count)
    if spec.source == "phantoms":
        import numba

        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def _progress_bar(show: bool, num_processes: int) -> Progress:
    label = "building" if num_processes == 1 else f"building ({num_processes} processes)"
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show,
    )


def _finish(spec: DatasetSpec, out: Path) -> Path:
    """Merge the journals into the manifest files and the summary; sweep temporary files."""
    prompts = [entry.prompt for entry in spec.prompts]
    write_summary(out, journal.merged_records(out, spec.total), prompts)
    paths = export_manifest(out, journal.merged_records(out, spec.total))
    for name in OUTPUT_DIRS:
        for stale in (out / name).glob("*.tmp*") if (out / name).is_dir() else ():
            stale.unlink()
    return paths[-1]
