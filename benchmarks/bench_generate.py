"""Images per second of text-to-image at 256 x 256 on this machine's CPU.

    python benchmarks/bench_generate.py [--model DIR] [--repeats 3] [--threads N]

Times the model's default sampler settings (steps, guidance and its interval, as saved with the
model) against diffusers' default sampler settings on the same weights: 50 steps, fp32, the same
guidance at every step. Both run on the pipeline as loaded, the UNet's weights channels-last.
Both make 4 images per prompt in one batch (the study's Figure 1 layout) from the same seeds;
the figure is the median over `--repeats` runs of the eight Figure 1 prompts, cycled.
Without --model it times the built-in model, or, if that is missing, random weights of the
built-in preset (the speed of a network does not depend on its weights).

`--quality K` then checks that the speed costs no quality: both settings make K images of each
Figure 1 prompt from the same seeds, and the reader scores both sets (modality and region as
asked, with 95 % Wilson intervals), plus the SSIM of each fast image to its baseline twin.
`--compare-layout` also times the default settings with the weights contiguous (NCHW), the
layout a plain diffusers load gives, alternating with channels-last runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from radsynth.models import build_components
from radsynth.paths import BUILTIN_MODEL as BUILTIN
from radsynth.pipelines import TextToImagePipeline
from radsynth.probe.figures import figure1_prompts

BASELINE_STEPS = 50  # diffusers' default num_inference_steps


def load(model: Path | None) -> tuple[TextToImagePipeline, str]:
    if model is not None:
        return TextToImagePipeline.from_pretrained(model), str(model)
    if (BUILTIN / "model_index.json").is_file():
        return TextToImagePipeline.from_pretrained(BUILTIN), "built-in model"
    folder = Path(tempfile.mkdtemp()) / "builtin-random"
    build_components("builtin").save_pretrained(folder)
    return TextToImagePipeline.from_pretrained(folder), "built-in preset, random weights"


def images_per_second(
    pipe: TextToImagePipeline,
    steps: int,
    guidance: float,
    batches: int,
    per_prompt: int,
    cutoff: float | None = None,
) -> float:
    prompts = [prompt for _, prompt in figure1_prompts()]
    if cutoff is not None:
        pipe.guidance_cutoff = cutoff
    made = 0
    start = time.perf_counter()
    for i in range(batches):
        generators = [torch.Generator().manual_seed(i * per_prompt + j) for j in range(per_prompt)]
        output = pipe(
            prompts[i % len(prompts)],
            num_images_per_prompt=per_prompt,
            generator=generators,
            num_inference_steps=steps,
            guidance_scale=guidance,
        )
        made += len(output.images)
    return made / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=4, help="prompts per timed run (ours)")
    parser.add_argument("--per-prompt", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--compare-layout",
        action="store_true",
        help="also time the default settings with the UNet's weights contiguous (NCHW), "
        "alternating with channels-last runs",
    )
    parser.add_argument(
        "--quality", type=int, default=0, metavar="K", help="images per prompt to score (0: off)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe, name = load(args.model)
    pipe.set_progress_bar_config(disable=True)
    steps = int(pipe.default("num_inference_steps", None))
    guidance = float(pipe.default("guidance_scale", None))
    cutoff = pipe.guidance_cutoff
    size = pipe.components.sample_size
    print(f"model: {name}; {size} x {size}; {type(pipe.scheduler).__name__}")
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads")
    images_per_second(pipe, steps, guidance, 1, args.per_prompt, cutoff)  # warm-up
    ours = [
        images_per_second(pipe, steps, guidance, args.batches, args.per_prompt, cutoff)
        for _ in range(args.repeats)
    ]
    fast = statistics.median(ours)
    print(
        f"default settings ({steps} steps, guidance {guidance} at t >= {cutoff:g} T, fp32): "
        f"{fast:.2f} images/s (runs: {', '.join(f'{v:.2f}' for v in ours)})"
    )
    if args.compare_layout:
        compare_layout(pipe, steps, guidance, cutoff, args.repeats, args.batches, args.per_prompt)
    if args.skip_baseline:
        return
    base = [
        images_per_second(pipe, BASELINE_STEPS, guidance, 1, args.per_prompt, 0.0)
        for _ in range(args.repeats)
    ]
    slow = statistics.median(base)
    print(
        f"baseline ({BASELINE_STEPS} steps, guidance {guidance}, fp32): {slow:.3f} images/s "
        f"(runs: {', '.join(f'{v:.3f}' for v in base)})"
    )
    print(f"speed-up: {fast / slow:.1f}x")
    if args.quality:
        compare_quality(pipe, steps, guidance, cutoff, args.quality)


def compare_layout(
    pipe: TextToImagePipeline,
    steps: int,
    guidance: float,
    cutoff: float,
    repeats: int,
    batches: int,
    per_prompt: int,
) -> None:
    """Default settings with the UNet's weights contiguous and channels-last, alternating run
    by run so that a drifting machine affects both alike; ends channels-last, as loaded."""
    speeds: dict[str, list[float]] = {"channels-last": [], "contiguous": []}
    for _ in range(repeats):
        for layout, form in (
            ("contiguous", torch.contiguous_format),
            ("channels-last", torch.channels_last),
        ):
            pipe.unet.to(memory_format=form)
            speeds[layout].append(
                images_per_second(pipe, steps, guidance, batches, per_prompt, cutoff)
            )
    median = {layout: statistics.median(runs) for layout, runs in speeds.items()}
    print(
        "weights layout: "
        + "; ".join(
            f"{layout} {median[layout]:.2f} images/s (runs: {', '.join(f'{v:.2f}' for v in runs)})"
            for layout, runs in speeds.items()
        )
        + f": {median['channels-last'] / median['contiguous']:.2f}x"
    )


def make_set(
    pipe: TextToImagePipeline, steps: int, guidance: float, cutoff: float, per_prompt: int
) -> tuple[list[str], np.ndarray]:
    pipe.guidance_cutoff = cutoff
    asked, images = [], []
    for index, (_, prompt) in enumerate(figure1_prompts()):
        seeds = [1000 * index + j for j in range(per_prompt)]
        output = pipe(
            prompt,
            num_images_per_prompt=per_prompt,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
            num_inference_steps=steps,
            guidance_scale=guidance,
        )
        asked += [prompt] * per_prompt
        images.append(np.asarray(output.images))
    return asked, np.concatenate(images)


def compare_quality(
    pipe: TextToImagePipeline, steps: int, guidance: float, cutoff: float, per_prompt: int
) -> None:
    from radsynth.evaluate.metrics import conditional_accuracy, ssim
    from radsynth.evaluate.reader import load_reader

    reader = load_reader()
    asked, fast = make_set(pipe, steps, guidance, cutoff, per_prompt)
    _, slow = make_set(pipe, BASELINE_STEPS, guidance, 0.0, per_prompt)
    print(f"quality: reader on {len(asked)} Figure 1 images per setting, same seeds")
    for name, images in (("default", fast), ("baseline", slow)):
        fields = conditional_accuracy(asked, reader.predict(images))["fields"]
        parts = []
        for field in ("modality", "region"):
            p = fields[field]
            parts.append(f"{field} as asked {p.rate:.0%} [{p.low:.0%}, {p.high:.0%}]")
        print(f"  {name}: " + "; ".join(parts))
    twins = np.asarray(ssim(fast, slow))
    print(f"  SSIM of each default image to its baseline twin: median {np.median(twins):.3f}")


if __name__ == "__main__":
    main()
