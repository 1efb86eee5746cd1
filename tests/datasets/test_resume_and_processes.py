"""A build killed with SIGKILL finishes on --resume exactly like a clean build, and a
2-process `accelerate launch` build equals a 1-process one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from radsynth.datasets import build_dataset, load_spec
from radsynth.datasets.journal import count_done, journal_files

SPEC = """
model: {model}
seed: 5
sampler: {{steps: 2}}
formats: [png]
prompts:
  - prompt: "PA chest radiograph"
    count: {first}
  - prompt: "lateral radiograph of the ankle"
    count: {second}
"""
COMPARED = ("images/*", "display/*", "manifest.jsonl", "manifest.csv", "summary.html", "grids/*")


def write_spec(folder: Path, model: Path, first: int, second: int) -> Path:
    path = folder / "spec.yaml"
    path.write_text(SPEC.format(model=model, first=first, second=second))
    return path


def same_files(one: Path, two: Path) -> None:
    for pattern in COMPARED:
        left = {p.relative_to(one): p.read_bytes() for p in sorted(one.glob(pattern))}
        right = {p.relative_to(two): p.read_bytes() for p in sorted(two.glob(pattern))}
        assert left, pattern
        assert left.keys() == right.keys(), pattern
        assert left == right, pattern


def clean_build(spec_file: Path, out: Path) -> None:
    build_dataset(load_spec(spec_file), out, threads=1, progress=False)


def test_kill_9_then_resume_equals_a_clean_build(tiny_model: Path, tmp_path: Path) -> None:
    spec_file = write_spec(tmp_path, tiny_model, first=30, second=30)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "radsynth", "dataset", "build", str(spec_file)]
    command += ["--out", str(out), "--quiet", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while count_done(out) < 5:
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the build made no records in 180 s"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = count_done(out)
    assert 5 <= killed_at < 60 and not (out / "manifest.jsonl").exists()
    # What a kill in the middle of a record leaves: a cut-short journal line and a temporary
    # file (the kill above may or may not have hit such a moment).
    with journal_files(out)[0].open("a") as handle:
        handle.write('{"id": "img_000059", "caption": "cut sh')
    (out / "images" / "img_000059.png.tmp").write_bytes(b"\x89PNG half")
    build_dataset(load_spec(spec_file), out, resume=True, threads=1, progress=False)
    clean_build(spec_file, tmp_path / "clean")
    same_files(out, tmp_path / "clean")
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 60
    assert not list(out.rglob("*.tmp*"))


def test_accelerate_two_processes_equal_one(tiny_model: Path, tmp_path: Path) -> None:
    spec_file = write_spec(tmp_path, tiny_model, first=5, second=4)
    out = tmp_path / "two"
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--num_cpu_threads_per_process", "1",
        "-m", "radsynth", "dataset", "build", str(spec_file), "--out", str(out), "--quiet",
    ]  # fmt: skip
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ACCELERATE_USE_CPU": "true",
        "ACCELERATE_CONFIG_FILE": str(tmp_path / "no-config.yaml"),
    }
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "built 9 images" in result.stdout  # printed once, by the main process
    # Each process journaled its own share: indices 0, 2, 4, ... and 1, 3, 5, ...
    shares = [len(path.read_text().splitlines()) for path in journal_files(out)]
    assert shares == [5, 4]
    clean_build(spec_file, tmp_path / "one")
    same_files(out, tmp_path / "one")
