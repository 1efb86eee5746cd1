"""The reader's body stage on the probe's knee-to-body cases: the answer key, and a model's bodies.

    .venv/bin/python scripts/body_stage_check.py [--bodies 8] [--model DIR] [--reader DIR] \
        [--out runs/body/check] [--whole-body 8]

For each body (the probe's case seeds `full_body_case(k)`, alternating sex, knee at half the
model's size, canvas two knee fields wide, as the probe draws them) this prints:

- the femur/tibia ratio of the true projection from the phantom's masks, and as read by the body
  stage and by the reader alone (the whole image padded to a square), with their errors;
- the lumbar vertebrae the stage counts on the true projection (truth: 5);
- the same readings of the body the model grows from the knee (the probe's outpainting call:
  layout prompt, the model's default sampler, the case seed), with the femur/tibia error
  against the truth, and how much of the femur and tibia the stage finds outside the kept
  knee's rows: a reading that finds the long bones in the knee only measures the input.

`--layout-only` reads the outpainting's layout pass instead of the finished body: the whole canvas
drawn at once, shrunk to one field around the shrunk knee and enlarged back, before any tile
refines it (the same draw the full call starts from). It tells whether the proportions are
lost in the plan or in the tiles.

`--overlap PX` sets the pixels neighbouring tiles share (the pipeline's default: half a tile).

`--upscale 2` gives the outpainting the knee enlarged twice (bicubic) with twice the margins, so
the tiles draw at a regional radiograph's own spacing, and shrinks the body back (area) before
it is read.

`--whole-body N` also reads N whole-body AP radiographs the model draws from text ("AP
radiograph of the whole body of a man/woman"), cut to the central strip a standing body
fills (a quarter of the height wide), against N phantoms of the same prompt.

With `--out`, writes `body_stage.png`: per body, the knee, the grown body and the answer key,
each with the stage's femur (red), tibia (green) and lumbar centres (yellow) drawn over it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from radsynth.evaluate.anatomy import truth_structure_map
from radsynth.evaluate.reader import load_reader
from radsynth.evaluate.reader.body import BODY_SHAPE, draw_body_reading, fit_geometry
from radsynth.paths import BUILTIN_MODEL
from radsynth.probe.protocol import full_body_case
from radsynth.probe.scoring import bone_length, femur_tibia, pad_to_square, regional_plane


def error(reading: dict[str, Any], truth: float) -> float | None:
    ratio = reading["ratio"]
    return abs(ratio / truth - 1) if ratio else None


def fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f}"


def rows_outside(mask: np.ndarray, knee_rows: tuple[float, float]) -> int:
    """Rows of a bone's mask (stage pixels) outside the kept knee's rows."""
    rows = np.nonzero(mask.any(1))[0]
    return int(((rows < knee_rows[0]) | (rows > knee_rows[1])).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bodies", type=int, default=8)
    parser.add_argument("--first", type=int, default=0, help="the first body's index k")
    parser.add_argument("--steps", type=int, default=None, help="default: the model's")
    parser.add_argument("--guidance", type=float, default=None, help="default: the model's")
    parser.add_argument(
        "--layout-strength", type=float, default=None, help="default: the pipeline's"
    )
    parser.add_argument("--overlap", type=int, default=None, help="default: the pipeline's")
    parser.add_argument("--model", type=Path, default=BUILTIN_MODEL)
    parser.add_argument("--reader", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--whole-body", type=int, default=0)
    parser.add_argument("--layout-only", action="store_true")
    parser.add_argument(
        "--upscale",
        type=int,
        default=1,
        help="grow the knee enlarged this many times (bicubic) and shrink the body back (area)",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from radsynth.pipelines import OutpaintPipeline, TextToImagePipeline

    reader = load_reader(args.reader)
    if reader.body is None:
        raise SystemExit("the reader has no body stage (a body/ subfolder)")
    t2i: Any = TextToImagePipeline.from_pretrained(args.model)
    t2i.set_progress_bar_config(disable=True)
    outpaint: Any = OutpaintPipeline(t2i.components)
    outpaint.set_progress_bar_config(disable=True)
    size = int(t2i.components.sample_size)
    knee_px = max(32, size // 2)
    tiles: list[np.ndarray] = []
    summary: dict[str, list[float]] = {"truth": [], "grown": [], "alone": []}
    extra: dict[str, Any] = {
        key: value
        for key, value in (
            ("layout_strength", args.layout_strength),
            ("num_inference_steps", args.steps),
            ("guidance_scale", args.guidance),
            ("overlap", args.overlap),
        )
        if value is not None
    }
    for k in range(args.first, args.first + args.bodies):
        seed, sex = full_body_case(k)
        plane = regional_plane(seed, "knee", "ap", "left", sex=sex, size=knee_px)
        knee, truth, margins = plane.full_body(2 * knee_px, size)
        image = truth.image.astype(np.float32)
        true = femur_tibia(truth_structure_map(truth.masks))
        person = "woman" if sex == "female" else "man"
        generator = torch.Generator().manual_seed(seed)
        layout_prompt = f"AP radiograph of the whole body of a {person}"
        if args.layout_only:
            grown = layout_pass(outpaint, knee.image, margins, layout_prompt, extra, generator)
        else:
            f = args.upscale
            given = knee.image if f == 1 else resize(knee.image, f * knee_px, f * knee_px)
            grown = outpaint(
                f"AP radiograph of a {person}",
                given,
                generator=generator,
                layout_prompt=layout_prompt,
                **{side: f * amount for side, amount in margins.items()},
                **extra,
            ).images[0]
            if f > 1:
                grown = shrink(np.asarray(grown, dtype=np.float32), f)
        grown = np.asarray(grown, dtype=np.float32)
        on_truth, on_grown = reader.read_body(np.stack([image, grown]))
        alone = femur_tibia(reader.structures(pad_to_square(image)[0])[0])
        fit = fit_geometry(*image.shape)
        knee_rows = tuple(
            fit.to_stage(np.array([[margins["top"], 0], [margins["top"] + knee_px - 1, 0]]))[:, 0]
        )
        read_truth, read_grown = femur_tibia(on_truth), femur_tibia(on_grown)
        outside = {
            g: (rows_outside(on_grown.masks[g], knee_rows), bone_length(on_grown.masks[g]))
            for g in ("femur", "tibia")
        }
        for key, value in (
            ("truth", error(read_truth, true["ratio"])),
            ("grown", error(read_grown, true["ratio"])),
            ("alone", error(alone, true["ratio"])),
        ):
            summary[key].append(9.0 if value is None else value)
        print(
            f"body {seed} ({sex}) {image.shape[0]}x{image.shape[1]}: true ratio "
            f"{true['ratio']:.3f} | stage on truth {fmt(read_truth['ratio'])} (error "
            f"{fmt(error(read_truth, true['ratio']))}, lumbar "
            f"{len(on_truth.centres['lumbar_vertebrae'])}) | reader alone error "
            f"{fmt(error(alone, true['ratio']))} | grown {fmt(read_grown['ratio'])} (error "
            f"{fmt(error(read_grown, true['ratio']))}, femur {read_grown['femur_px']} px with "
            f"{outside['femur'][0]} rows outside the knee, tibia {read_grown['tibia_px']} px "
            f"with {outside['tibia'][0]}, lumbar {len(on_grown.centres['lumbar_vertebrae'])})"
        )
        knee_only = np.zeros_like(image)
        top, left = margins["top"], margins["left"]
        knee_only[top : top + knee_px, left : left + knee_px] = knee.image
        tiles += [
            draw_body_reading(knee_only, None),
            draw_body_reading(grown, on_grown),
            draw_body_reading(image, on_truth),
        ]
    for key, values in summary.items():
        errors = np.array(values)
        print(
            f"{key}: ratio error median {np.median(errors):.3f}, largest {errors.max():.3f}, "
            f"within 5 % in {int((errors <= 0.05).sum())} of {len(errors)}"
        )
    if args.whole_body:
        whole_body(t2i, reader, args.whole_body, size)
    if args.out is not None and tiles:
        args.out.mkdir(parents=True, exist_ok=True)
        gap = np.full((BODY_SHAPE[0], 4, 3), 16, np.uint8)
        row = np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)
        Image.fromarray(row).save(args.out / "body_stage.png")
        print(f"wrote {args.out / 'body_stage.png'}")


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(
        Image.fromarray(image.astype(np.float32), mode="F").resize((width, height), Image.BICUBIC)
    ).clip(0.0, 1.0)


def shrink(image: np.ndarray, factor: int) -> np.ndarray:
    height, width = image.shape[0] // factor, image.shape[1] // factor
    return (
        image[: height * factor, : width * factor]
        .reshape(height, factor, width, factor)
        .mean((1, 3))
    )


def layout_pass(
    outpaint: Any,
    knee: np.ndarray,
    margins: dict[str, int],
    prompt: str,
    extra: dict[str, Any],
    generator: torch.Generator,
) -> np.ndarray:
    """The layout an outpainting call with `prompt` as its layout prompt starts its tiles from:
    the canvas drawn in one shrunk pass, the knee's own pixels kept."""
    from radsynth.pipelines.pipeline_base import image_to_tensor
    from radsynth.pipelines.pipeline_outpaint import place_on_canvas

    steps = int(outpaint.default("num_inference_steps", extra.get("num_inference_steps")))
    guidance = float(outpaint.default("guidance_scale", extra.get("guidance_scale")))
    canvas, known = place_on_canvas(image_to_tensor(knee), 1, **margins)
    with torch.no_grad():
        embeds = outpaint.encode_prompt([prompt], 1, guidance > 1.0)
        guess = outpaint.layout(canvas, known, embeds, steps, guidance, generator)
    return torch.where(known, canvas, guess)[0, 0].numpy()


def whole_body(t2i: Any, reader: Any, n: int, size: int) -> None:
    """The stage on whole bodies the model draws from text, against phantoms of the prompt."""
    from radsynth.phantoms.cases import make_case

    strip = size // 4
    c0 = (size - strip) // 2
    for sex, person in (("female", "woman"), ("male", "man")):
        prompt = f"AP radiograph of the whole body of a {person}"
        drawn = t2i(prompt, num_images_per_prompt=n, generator=torch.Generator().manual_seed(7))
        model = [np.asarray(im, np.float32)[:, c0 : c0 + strip] for im in drawn.images]
        phantoms = [
            make_case(
                8_800_000 + i, modality="xray", region="full_body", view="ap", sex=sex, size=size
            ).image.image.astype(np.float32)[:, c0 : c0 + strip]
            for i in range(n)
        ]
        for name, images in (("model", model), ("phantoms", phantoms)):
            maps = reader.read_body(np.stack(images))
            ratios = [femur_tibia(m)["ratio"] for m in maps]
            lumbar = [len(m.centres["lumbar_vertebrae"]) for m in maps]
            shown = [f"{r:.2f}" if r else "none" for r in ratios]
            print(f"{prompt!r}, {name}: femur/tibia {' '.join(shown)}; lumbar {lumbar}")


if __name__ == "__main__":
    main()
