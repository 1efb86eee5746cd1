"""Benchmark `radsynth dataset build`: images per second with 1 and 2 processes, and peak
memory (RSS) for two sizes of N.

    .venv/bin/python benchmarks/bench_dataset.py                    # built-in architecture
    .venv/bin/python benchmarks/bench_dataset.py --source phantoms  # phantom radiographs
    .venv/bin/python benchmarks/bench_dataset.py --model DIR        # a trained model folder

Without --model the model is the "builtin" preset with random weights saved to a temporary
folder: generation speed does not depend on the weights. Every process runs with ONE torch
(and numba) thread, so 1 and 2 processes compare the same work per core; the 2-process build
runs under `accelerate launch --multi_gpu --num_processes 2` with ACCELERATE_USE_CPU=true.

Images per second count the steady state: from the moment every process has journaled its
first image to the last image, so start-up (imports, loading the model) and the final merge
are left out; wall time, which includes them, is printed too. The two process counts run in
turn, `--repeats` times each, and the medians are compared. Peak memory is the largest
resident set of any process of a build (getrusage of the children, measured in a fresh
wrapper process per build).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from radsynth.datasets.journal import count_done

MEASURE = """
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": code, "peak_mib": peak_kib / 1024}))
"""


def write_spec(folder: Path, source: str, model: Path | None, n: int, steps: int) -> Path:
    """A SPEC of `n` images: two prompts for a model, mixed radiographs for phantoms."""
    spec: dict[str, object] = {"seed": 0, "formats": ["png"]}
    first = n // 2
    if source == "phantoms":
        spec.update(source="phantoms", size=256)
        spec["prompts"] = [
            {"labels": {"modality": "xray"}, "count": first},
            {"labels": {"modality": "xray", "region": "chest"}, "count": n - first},
        ]
    else:
        spec.update(model=str(model), sampler={"steps": steps})
        spec["prompts"] = [
            {"prompt": "PA chest radiograph", "count": first},
            {"prompt": "lateral radiograph of the left knee", "count": n - first},
        ]
    path = folder / f"spec-{source}-{n}.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def random_builtin_model(folder: Path) -> Path:
    """The built-in architecture with random weights, saved in diffusers' layout."""
    from radsynth.models import build_components, get_preset

    return build_components(get_preset("builtin"), seed=0).save_pretrained(folder / "builtin")


def run_build(spec: Path, out: Path, processes: int) -> dict[str, float]:
    """Build `spec` into `out` with 1 or more processes; return rate, wall time and memory."""
    build = ["dataset", "build", str(spec), "--out", str(out), "--quiet", "--threads", "1"]
    if processes == 1:
        command = [sys.executable, "-m", "radsynth", *build]
    else:
        command = [
            str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu",
            "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1",
            "-m", "radsynth", *build,
        ]  # fmt: skip
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "ACCELERATE_CONFIG_FILE": str(out.parent / "no-accelerate-config.yaml"),
        "OMP_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
    }
    total = json.loads(spec.read_text())["prompts"]
    n = sum(int(entry["count"]) for entry in total)
    start = time.perf_counter()
    wrapper = subprocess.Popen(
        [sys.executable, "-c", MEASURE, *command], stdout=subprocess.PIPE, env=env, text=True
    )
    first = last = None
    while wrapper.poll() is None:
        done = count_done(out)
        now = time.perf_counter()
        if first is None and done >= processes:
            first, at_first = now, done
        if done >= n and last is None:
            last = now
        time.sleep(0.02)
    wall = time.perf_counter() - start
    result = json.loads(wrapper.stdout.read() if wrapper.stdout else "{}")
    if result.get("code") != 0 or first is None:
        raise SystemExit(f"the build of {spec} failed (exit {result.get('code')})")
    last = last or time.perf_counter()
    rate = (n - at_first) / max(last - first, 1e-9)
    return {"images_per_s": rate, "wall_s": wall, "peak_mib": result["peak_mib"], "n": n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("model", "phantoms"), default="model")
    parser.add_argument("--model", type=Path, help="model folder (default: random builtin)")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps per image")
    parser.add_argument("--n", type=int, help="images for the speed runs and the small N")
    parser.add_argument("--n-large", type=int, help="images for the large N (memory)")
    parser.add_argument("--repeats", type=int, default=3, help="speed runs per process count")
    args = parser.parse_args(argv)
    phantoms = args.source == "phantoms"
    n = args.n or (240 if phantoms else 16)
    n_large = args.n_large or 4 * n
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        folder = Path(tmp)
        model = (
            None
            if phantoms
            else (args.model.resolve() if args.model else random_builtin_model(folder))
        )
        what = "phantom radiographs, 256 px" if phantoms else f"model {model}, {args.steps} steps"
        print(f"radsynth dataset build: {what}; one torch thread per process; "
              f"{os.cpu_count()} CPU cores")  # fmt: skip
        spec = write_spec(folder, args.source, model, n, args.steps)
        rates: dict[int, list[float]] = {1: [], 2: []}
        peaks: dict[int, list[float]] = {1: [], 2: []}
        # 1 and 2 processes alternate, so a drift in the machine's speed hits both alike.
        for repeat in range(args.repeats):
            for processes in (1, 2):
                result = run_build(spec, folder / f"out-{processes}-{repeat}", processes)
                rates[processes].append(result["images_per_s"])
                peaks[processes].append(result["peak_mib"])
                print(
                    f"  run {repeat + 1}, {processes} process(es), N = {n}: "
                    f"{result['images_per_s']:6.2f} images/s (wall {result['wall_s']:5.1f} s), "
                    f"peak RSS per process {result['peak_mib']:6.1f} MiB"
                )
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        best = max(rates[2]) / max(rates[1])
        print(f"median images/s: 1 process {one:.2f}, 2 processes {two:.2f}; "
              f"speed-up {two / one:.2f}x (best runs: {best:.2f}x)")  # fmt: skip
        large = run_build(
            write_spec(folder, args.source, model, n_large, args.steps), folder / "large", 1
        )
        print(f"peak RSS of 1 process: N = {n}: {max(peaks[1]):.1f} MiB, "
              f"N = {n_large}: {large['peak_mib']:.1f} MiB")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
