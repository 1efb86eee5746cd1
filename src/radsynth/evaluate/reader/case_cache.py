"""Rendered training cases of the reader's stages, cached in one .npz (no pickle).

A stage's cases are drawn by a `render(seed, split, index)` function that depends on its three
arguments only, so a cache can be extended, cut short or shared between runs, and rendered in
several processes in any order.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

Render = Callable[[int, str, int], dict[str, np.ndarray]]
CHUNK = 50  # cases per job


def _render_range(args: tuple[Render, int, str, int, int]) -> dict[str, np.ndarray]:
    render, seed, split, start, stop = args
    cases = [render(seed, split, i) for i in range(start, stop)]
    return {key: np.stack([c[key] for c in cases]) for key in cases[0]}


def build_cases(
    path: Path,
    render: Render,
    meta: dict[str, Any],
    n: int,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
    what: str = "cases",
) -> dict[str, np.ndarray]:
    """The first `n` cases `render(meta["seed"], meta["split"], i)`, rendered once into `path`.
    A file with more cases gives its first `n`, one with fewer is extended; a file written with
    other `meta` (seed, split, sizes, mix) is refused. `render` must be a module-level function
    when `workers` > 1 (the processes are spawned)."""
    seed, split = int(meta["seed"]), str(meta["split"])
    have: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            found = json.loads(str(data["meta"]))
            cached = int(found.pop("n", 0))
            if found != json.loads(json.dumps(meta)):
                raise ValueError(
                    f"{path} holds other {what} (seed {found.get('seed')}, split "
                    f"{found.get('split')!r}): delete it or use another --cache"
                )
            have = {k: data[k] for k in data.files if k != "meta"}
        if cached >= n:
            return {k: v[:n] for k, v in have.items()}
    start = len(next(iter(have.values()))) if have else 0
    jobs = [(render, seed, split, first, min(n, first + CHUNK)) for first in range(start, n, CHUNK)]
    parts: list[dict[str, np.ndarray]] = [have] if have else []
    if workers <= 1:
        for job in jobs:
            parts.append(_render_range(job))
            if on_progress:
                on_progress(job[4], n)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for job, part in zip(jobs, pool.map(_render_range, jobs), strict=True):
                parts.append(part)
                if on_progress:
                    on_progress(job[4], n)
    data = {key: np.concatenate([p[key] for p in parts]) for key in parts[-1]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    record = json.dumps({**meta, "n": n})
    np.savez_compressed(tmp, allow_pickle=False, meta=np.array(record), **data)
    tmp.replace(path)
    return data
