"""Benchmark the seam blending of the masked pipelines (`radsynth.pipelines.seams`): seconds to
set up one mask's system (build and factorize) and to blend one image with it, at several sizes.

    .venv/bin/python benchmarks/bench_seams.py
    .venv/bin/python benchmarks/bench_seams.py --sizes 256 512 1024 --batch 4

The mask is the hardest case the pipelines meet: almost the whole image regenerated (a 4-pixel
kept frame), so the system has nearly H x W unknowns. A batch of images sharing one mask pays
for the set-up once. Random images: the cost does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from radsynth.pipelines.seams import SeamSystem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--batch", type=int, default=4, help="images blended with one system")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'size':>6} {'unknowns':>9} {'set-up s':>9} {'per image s':>12} {'batch s':>8}")
    for size in args.sizes:
        mask = np.zeros((size, size), dtype=bool)
        mask[4:-4, 4:-4] = True
        start = time.perf_counter()
        system = SeamSystem(mask)
        set_up = time.perf_counter() - start
        times = []
        for _ in range(args.batch):
            generated, original = rng.random((2, size, size))
            start = time.perf_counter()
            system.blend(generated, original)
            times.append(time.perf_counter() - start)
        per_image = float(np.median(times))
        total = set_up + sum(times)
        print(f"{size:>6} {int(mask.sum()):>9} {set_up:>9.2f} {per_image:>12.3f} {total:>8.2f}")


if __name__ == "__main__":
    main()
