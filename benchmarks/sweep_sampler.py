"""Sampler settings against speed and what the reader sees, for choosing a model's defaults.

    python benchmarks/sweep_sampler.py [--model DIR] [--per-prompt 4] [--threads N]
        [--settings STEPS:GUIDANCE:CUTOFF ...]

For each setting (steps, guidance scale, guidance cutoff as a fraction of T) it makes K images of
each of the study's Figure 1 prompts from the same seeds, times them, and prints images/s with
the reader's modality and region as asked (95 % Wilson intervals). The defaults saved with a
model are a choice between these columns; the figures belong in its closing note.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from bench_generate import load, make_set

DEFAULT_SETTINGS = ["10:2.5:0", "10:2.5:0.5", "8:2.5:0.5", "6:2.5:0.5", "10:4:0.5", "10:1:0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--per-prompt", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from radsynth.evaluate.metrics import conditional_accuracy
    from radsynth.evaluate.reader import load_reader

    reader = load_reader()
    pipe, name = load(args.model)
    pipe.set_progress_bar_config(disable=True)
    print(f"model: {name}; {args.per_prompt} images of each Figure 1 prompt per setting")
    print("steps  guidance  cutoff  images/s  modality as asked    region as asked")
    for setting in args.settings:
        steps, guidance, cutoff = setting.split(":")
        start = time.perf_counter()
        asked, images = make_set(pipe, int(steps), float(guidance), float(cutoff), args.per_prompt)
        rate = len(images) / (time.perf_counter() - start)
        fields = conditional_accuracy(asked, reader.predict(images))["fields"]
        cells = [
            f"{fields[f].rate:4.0%} [{fields[f].low:.0%}, {fields[f].high:.0%}]"
            for f in ("modality", "region")
        ]
        print(f"{steps:>5}  {guidance:>8}  {cutoff:>6}  {rate:8.2f}  {cells[0]:<19}  {cells[1]}")


if __name__ == "__main__":
    main()
