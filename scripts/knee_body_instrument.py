"""How well the probe's knee-to-full-body instrument reads the answer key itself.

    .venv/bin/python scripts/knee_body_instrument.py [--bodies 4] [--reader DIR]

The probe grows a knee radiograph to a whole body and reads the femur/tibia length ratio and
the lumbar vertebrae of the result with the reader. Before a model can be judged that way,
the reader has to get both right on the true projection of the same body. For each body (the
probe's case seeds, alternating sex), this prints:

- the femur/tibia ratio from the phantom's masks (the truth), and the reader's error on the
  true projection read whole (padded to a square) and in sliding windows of several sizes,
  the windows' logits averaged under Gaussian weights (`read_in_windows_averaged`; at the
  default size 128 px is the knee's field, the scale of a regional knee radiograph). The probe
  reads whole or in windows of the image's width, whichever reads the key closer;
- the lumbar vertebrae the reader finds in the lumbar field cut out of the true projection
  (as the probe does), in the same field with its contrast stretched (1st to 99th percentile),
  and in the regional lumbar radiograph of the same body (the scale and exposure it was
  trained on).

It says what limits the two knee-to-body targets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from radsynth.evaluate.anatomy import truth_structure_map
from radsynth.evaluate.reader import load_reader
from radsynth.evaluate.reader.inference import Reader
from radsynth.probe.protocol import full_body_case
from radsynth.probe.scoring import (
    femur_tibia,
    pad_to_square,
    read_in_windows_averaged,
    regional_plane,
    resize_image,
)


def ratio_error(reading: dict[str, object], truth: float) -> str:
    ratio = reading["ratio"]
    if not isinstance(ratio, float):
        return "no ratio (a bone not found)"
    return (
        f"{abs(ratio / truth - 1):.2f} (femur {reading['femur_px']}, tibia {reading['tibia_px']})"
    )


def lumbar_count(reader: Reader, image: np.ndarray) -> int:
    square = pad_to_square(image)[0]
    side = reader.config.size
    return len(reader.structures(resize_image(square, (side, side)))[0].centres["lumbar_vertebrae"])


def stretch(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, [1, 99])
    return np.clip((image - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bodies", type=int, default=4)
    parser.add_argument("--size", type=int, default=256, help="the model's image size")
    parser.add_argument("--windows", type=int, nargs="+", default=[112, 128, 160])
    parser.add_argument("--reader", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reader = load_reader(args.reader)
    knee_px = max(32, args.size // 2)  # the probe's default
    for k in range(args.bodies):
        seed, sex = full_body_case(k)
        plane = regional_plane(seed, "knee", "ap", "left", sex=sex, size=knee_px)
        _, truth, _ = plane.full_body(2 * knee_px, args.size)
        image = truth.image.astype(np.float32)
        true = femur_tibia(truth_structure_map(truth.masks))
        print(f"body {seed} ({sex}), {image.shape[0]} x {image.shape[1]} px")
        print(
            f"  truth: femur {true['femur_px']} px, tibia {true['tibia_px']} px, "
            f"ratio {true['ratio']:.3f}"
        )
        padded = femur_tibia(reader.structures(pad_to_square(image)[0])[0])
        error = ratio_error(padded, true["ratio"])
        print(f"  ratio error, whole image padded to a square: {error}")
        for side in args.windows:
            reading = femur_tibia(read_in_windows_averaged(reader, image, side))
            error = ratio_error(reading, true["ratio"])
            print(f"  ratio error, {side} px windows, logits averaged: {error}")
        lumbar = plane.field_window("lumbar_spine", min(image.shape))  # the probe's cut-out
        expected = len(truth_structure_map(lumbar.masks).centres["lumbar_vertebrae"])
        crop = lumbar.image.astype(np.float32)
        regional = regional_plane(seed, "lumbar_spine", "ap", None, sex=sex, size=args.size)
        own = regional.window((args.size, args.size)).image.astype(np.float32)
        print(
            f"  lumbar vertebrae (truth {expected}): cut-out field {lumbar_count(reader, crop)}, "
            f"stretched {lumbar_count(reader, stretch(crop))}, "
            f"regional lumbar radiograph {lumbar_count(reader, own)}"
        )


if __name__ == "__main__":
    main()
