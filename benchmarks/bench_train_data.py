"""Benchmark reading a training set: the first epoch read lazily (one image at a time, as
`radsynth train` does without --cache-images) against `--cache-images`' up-front decode in 1, 2,
... processes. Records per second, images and finding masks both.

    .venv/bin/python benchmarks/bench_train_data.py --data runs/builtin-data-v6
    .venv/bin/python benchmarks/bench_train_data.py --data DIR --workers 1 2 --resolution 256

A GPU step of the built-in model takes milliseconds, so a set read at one core's pace (the
lazy first epoch) keeps the GPU waiting for the whole first epoch; the up-front decode moves
that wait before training and spreads it over the cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from radsynth.train.data import ManifestImageDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with manifest.jsonl")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--limit", type=int, default=600, help="records read (the first N)")
    args = parser.parse_args()

    def dataset(cache: bool) -> ManifestImageDataset:
        data = ManifestImageDataset(args.data, args.resolution, cache=cache)
        data.records = data.records[: args.limit]
        data.captions = data.captions[: args.limit]
        return data

    lazy = dataset(False)
    count = len(lazy)
    started = time.perf_counter()
    for i in range(count):
        lazy.image(i)
        lazy.finding_mask(i)
    seconds = time.perf_counter() - started
    print(f"{count} records, {args.resolution} px, images and finding masks")
    print(f"lazy first epoch: {seconds:6.1f} s  {count / seconds:7.1f} records/s")
    for workers in args.workers:
        cached = dataset(True)
        started = time.perf_counter()
        cached.preload(workers, with_masks=True)
        seconds = time.perf_counter() - started
        print(
            f"preload, {workers} process{'es' if workers > 1 else ''}: {seconds:6.1f} s  "
            f"{count / seconds:7.1f} records/s (start-up included)"
        )


if __name__ == "__main__":
    main()
