"""Phantom radiographs per second at 256 x 256 on this machine.

Prints images per second for x-ray cases (random region, view and side; findings off):
- one process, a new subject (body) for every image;
- one process, several images per subject (as a data set with a few radiographs per patient);
- two processes, each as above.
Run: .venv/bin/python benchmarks/bench_phantoms.py [--n 200] [--size 256]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

N_WARMUP = 4


def _run(args: tuple[int, int, int, int]) -> tuple[int, float]:
    start_seed, n, size, per_subject = args
    import numpy as np

    from radsynth.phantoms.cases import make_case

    def case(i: int):
        subject = None
        if per_subject > 1:
            subject = int(
                np.random.SeedSequence([start_seed, i // per_subject]).generate_state(1)[0]
            )
        return make_case(
            start_seed + i, modality="xray", size=size, findings_=(), subject_seed=subject
        )

    for i in range(N_WARMUP):  # compile and warm caches outside the timing
        case(10_000_000 + i)
    begin = time.perf_counter()
    for i in range(n):
        case(i)
    return n, time.perf_counter() - begin


def _rate(processes: int, n: int, size: int, per_subject: int) -> float:
    if processes == 1:
        done, seconds = _run((0, n, size, per_subject))
        return done / seconds
    # Fresh interpreters (spawn): a forked copy of a process whose OpenMP threads are running
    # is not safe. Each worker renders with one thread.
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        jobs = [(k * 1_000_000, n // processes, size, per_subject) for k in range(processes)]
        results = list(pool.map(_run, jobs))
    return sum(done for done, _ in results) / max(seconds for _, seconds in results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--per-subject", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting")
    args = parser.parse_args(argv)
    print(f"x-ray phantoms at {args.size}x{args.size}, {os.cpu_count()} CPU cores")
    print(f"images/s, median and best of {args.repeat} runs of {args.n} images (machines vary):")
    for processes, per_subject in ((1, 1), (1, args.per_subject), (2, 1), (2, args.per_subject)):
        rates = sorted(_rate(processes, args.n, args.size, per_subject) for _ in range(args.repeat))
        print(
            f"  {processes} process(es), {per_subject} image(s) per subject: "
            f"median {rates[len(rates) // 2]:5.1f}, best {rates[-1]:5.1f}"
        )


if __name__ == "__main__":
    main()
