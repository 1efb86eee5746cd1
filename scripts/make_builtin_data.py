"""Write the training folder of the built-in model: regional phantoms of every modality plus
off-centre crops of full-body X-ray planes, with one manifest over both.

    python scripts/make_builtin_data.py --out runs/builtin-data --regional 6000 --crops 2000

The folder gets `regional/` (written by `radsynth phantoms`), `crops/` and a `manifest.jsonl`
whose image paths point into both, which is what `radsynth train --data` reads. Deterministic in
--seed; an interrupted run is finished by running the same command again. Case i has seed
--seed + i (crop i: --seed + 10,000,000 + i), so a fresh data set needs a seed far from the last
one's, not the next integer (--seed 1 repeats all but one case of --seed 0).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from radsynth.cli.phantoms_command import write_case
from radsynth.io.manifest import ManifestWriter, iter_manifest
from radsynth.phantoms.crops import make_body_crop

CROP_SEED_OFFSET = 10_000_000  # crop seeds never coincide with regional case seeds


def _crop(args: tuple[Path, int, int, int]) -> dict:
    out, index, seed, size = args
    case = make_body_crop(seed, size=size)
    return write_case(out, f"crop-{index:06d}", case)


def write_crops(out: Path, count: int, seed: int, size: int, workers: int) -> None:
    for sub in ("images", "display", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("crops"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    # ManifestWriter drops a line cut short by a kill and knows which crops are done.
    with ManifestWriter(out) as manifest:
        todo = [
            (out, i, seed + CROP_SEED_OFFSET + i, size)
            for i in range(count)
            if f"crop-{i:06d}" not in manifest.done_ids
        ]
        with (
            Progress(*columns, TimeRemainingColumn()) as progress,
            multiprocessing.Pool(workers) as pool,
        ):
            task = progress.add_task("crops", total=count, completed=count - len(todo))
            for record in pool.imap(_crop, todo, chunksize=4):
                manifest.append(record)
                progress.advance(task)


def merge(out: Path) -> int:
    """One manifest over regional/ and crops/, with paths relative to `out`."""
    rows = []
    for part in ("regional", "crops"):
        for record in iter_manifest(out / part / "manifest.jsonl"):
            for key in ("image", "image_8bit", "masks"):
                if key in record:
                    record[key] = f"{part}/{record[key]}"
            record["id"] = f"{part}-{record['id']}"
            rows.append(json.dumps(record, sort_keys=True))
    (out / "manifest.jsonl").write_text("".join(r + "\n" for r in rows))
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/builtin-data"))
    parser.add_argument("--regional", type=int, default=6000)
    parser.add_argument("--crops", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the first case; case i uses seed + i, so data sets whose seeds differ by "
        "less than --regional (or --crops) share cases: use e.g. 100000 for a second set",
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    regional = args.out / "regional"
    command = [
        sys.executable, "-m", "radsynth", "phantoms", "--out", str(regional),
        "--n", str(args.regional), "--size", str(args.size), "--seed", str(args.seed),
        "--workers", str(args.workers),
    ]  # fmt: skip
    if (regional / "manifest.jsonl").exists():
        command.append("--resume")
    subprocess.run(command, check=True)
    write_crops(args.out / "crops", args.crops, args.seed, args.size, args.workers)
    print(f"{merge(args.out)} records in {args.out / 'manifest.jsonl'}")


if __name__ == "__main__":
    main()
