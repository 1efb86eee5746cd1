"""Sampler settings against speed and what the reader sees, for choosing a model's defaults.

    python benchmarks/sweep_sampler.py [--model DIR] [--per-prompt 4] [--threads N]
        [--settings STEPS:GUIDANCE:CUTOFF[:sde] ...]

For each setting (steps, guidance scale, guidance cutoff as a fraction of T, and with `:sde`
the stochastic DPM-Solver++ instead of the model's own scheduler) it makes K images of each of
the study's Figure 1 prompts from the same seeds, times them, and prints images/s with the
reader's modality and region as asked (95 % Wilson intervals) and how alike the K images of a
prompt are (mean pairwise MS-SSIM over the prompts; 1 = identical, phantoms of one prompt are
about 0.70). The defaults saved with a model are a choice between these columns; the figures
belong in its closing note.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from bench_generate import load, make_set
from diffusers import DPMSolverMultistepScheduler

DEFAULT_SETTINGS = ["10:2.5:0", "10:2.5:0.5", "8:2.5:0.5", "6:2.5:0.5", "10:4:0.5", "10:1:0"]


def parse_setting(parser: argparse.ArgumentParser, setting: str) -> tuple[int, float, float, str]:
    """STEPS:GUIDANCE:CUTOFF[:sde] -> (steps, guidance, cutoff, 'own' or 'sde')."""
    parts = setting.split(":")
    try:
        if len(parts) not in (3, 4) or parts[3:] not in ([], ["sde"]):
            raise ValueError(setting)
        return int(parts[0]), float(parts[1]), float(parts[2]), (parts[3:] or ["own"])[0]
    except ValueError:
        parser.error(
            f"--settings {setting}: give STEPS:GUIDANCE:CUTOFF or STEPS:GUIDANCE:CUTOFF:sde"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--per-prompt", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS)
    args = parser.parse_args()
    settings = [parse_setting(parser, setting) for setting in args.settings]
    torch.set_num_threads(args.threads)
    from radsynth.evaluate.metrics import conditional_accuracy
    from radsynth.evaluate.metrics.ssim import MSSSIMDiversity
    from radsynth.evaluate.reader import load_reader

    reader = load_reader()
    pipe, name = load(args.model)
    pipe.set_progress_bar_config(disable=True)
    print(f"model: {name}; {args.per_prompt} images of each Figure 1 prompt per setting")
    own = pipe.scheduler
    print("steps  guidance  cutoff  sampler  images/s  modality as asked    region as asked  alike")
    for steps, guidance, cutoff, sampler in settings:
        pipe.scheduler = own
        if sampler == "sde":
            if not isinstance(own, DPMSolverMultistepScheduler):
                parser.error("a ':sde' setting needs a model whose scheduler is DPM-Solver++")
            pipe.scheduler = DPMSolverMultistepScheduler.from_config(
                own.config,  # type: ignore[attr-defined]
                algorithm_type="sde-dpmsolver++",
            )
        start = time.perf_counter()
        asked, images = make_set(pipe, steps, guidance, cutoff, args.per_prompt)
        rate = len(images) / (time.perf_counter() - start)
        fields = conditional_accuracy(asked, reader.predict(images))["fields"]
        cells = [
            f"{fields[f].rate:4.0%} [{fields[f].low:.0%}, {fields[f].high:.0%}]"
            for f in ("modality", "region")
        ]
        diversity = MSSSIMDiversity()
        for prompt, image in zip(asked, images, strict=True):
            diversity.update(np.squeeze(image), prompt)
        mean_ms_ssim = diversity.compute()["mean_ms_ssim"]
        alike = "-" if mean_ms_ssim is None else f"{mean_ms_ssim:.3f}"
        print(
            f"{steps:>5}  {guidance:>8g}  {cutoff:>6g}  {sampler:>7}  {rate:8.2f}  "
            f"{cells[0]:<19}  {cells[1]:<15}  {alike}"
        )


if __name__ == "__main__":
    main()
