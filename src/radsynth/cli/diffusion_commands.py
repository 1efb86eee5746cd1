"""`radsynth train | generate | inpaint | outpaint | edit`: the diffusion commands.

Each command parses its options and calls the library. Images are written as 8-bit grayscale
PNGs carrying the prompt, seed and model in text chunks and marked "Synthetic: YES".
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

ModelOption = Annotated[
    Path | None, typer.Option("--model", help="model folder (default: the built-in model)")
]
OutOption = Annotated[Path, typer.Option("--out", help="output folder")]
SeedOption = Annotated[int, typer.Option("--seed", help="seed of the first image; +1 per image")]
CountOption = Annotated[int, typer.Option("-n", "--num-images", help="images to make")]
StepsOption = Annotated[int | None, typer.Option("--steps", help="denoising steps")]
GuidanceOption = Annotated[float | None, typer.Option("--guidance", help="guidance scale")]
BUILTIN_MODEL = Path(__file__).resolve().parents[1] / "models" / "builtin"


def _model_dir(model: Path | None) -> Path:
    if model is not None:
        return model
    if not (BUILTIN_MODEL / "model_index.json").is_file():
        raise typer.BadParameter(f"no built-in model at {BUILTIN_MODEL}; pass --model DIR")
    return BUILTIN_MODEL


def _read_gray(path: Path) -> np.ndarray:
    """An input image as float32 in [0, 1]: PNG values as stored (8-bit / 255, 16-bit / 65535),
    so kept pixels come back unchanged; DICOM, NIfTI and TIFF through their display window."""
    from radsynth.train.data import load_gray

    try:
        return load_gray(path)
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"cannot read {path}: {error}") from None


def _write_images(
    out: Path, stem: str, images: list[np.ndarray], seeds: list[int], info: dict[str, str]
) -> list[Path]:
    from radsynth.io.png import write_png
    from radsynth.train.report import image_grid

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, seed in zip(images, seeds, strict=True):
        pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
        text = {**info, "Seed": str(seed), "Synthetic": "YES"}
        paths.append(write_png(out / f"{stem}-seed{seed}.png", pixels, text))
    if len(images) > 1 and len({im.shape for im in images}) == 1:
        grid = image_grid(np.stack(images))
        write_png(out / f"{stem}-grid.png", grid, {**info, "Synthetic": "YES"})
    return paths


def _run(
    pipeline_name: str, model: Path | None, seed: int, count: int, **call: Any
) -> tuple[list[np.ndarray], list[int], Path]:
    """Call a pipeline once per seed, so every image can be remade from its own seed."""
    import torch

    import radsynth.pipelines as pipelines

    folder = _model_dir(model)
    try:
        pipe = getattr(pipelines, pipeline_name).from_pretrained(folder)
        seeds = list(range(seed, seed + count))
        images = [
            np.asarray(pipe(generator=torch.Generator().manual_seed(s), **call).images[0])
            for s in seeds
        ]
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return images, seeds, folder


def _finish(
    out: Path, stem: str, prompt: str, run: tuple[list[np.ndarray], list[int], Path]
) -> None:
    images, seeds, folder = run
    paths = _write_images(out, stem, images, seeds, {"Prompt": prompt, "Model": str(folder)})
    typer.echo(f"wrote {len(paths)} image(s) to {out}")


def generate(
    prompt: Annotated[str, typer.Argument(help="what to show, in radiology terms")],
    out: OutOption,
    n: CountOption = 4,
    seed: SeedOption = 0,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    model: ModelOption = None,
) -> None:
    """Generate N images from a prompt, each with its own seed, plus a grid."""
    run = _run(
        "TextToImagePipeline",
        model,
        seed,
        n,
        prompt=prompt,
        num_inference_steps=steps,
        guidance_scale=guidance,
    )
    _finish(out, "generated", prompt, run)


def inpaint(
    prompt: Annotated[str, typer.Argument(help="what the masked area should show")],
    image: Annotated[Path, typer.Argument(help="input image (PNG, DICOM, NIfTI)")],
    out: OutOption,
    mask: Annotated[Path | None, typer.Option(help="mask image, white = regenerate")] = None,
    box: Annotated[str | None, typer.Option(help="x0,y0,x1,y1 in pixels to regenerate")] = None,
    n: CountOption = 1,
    seed: SeedOption = 0,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    model: ModelOption = None,
) -> None:
    """Regenerate a masked area (--mask or --box); every other pixel is kept exactly."""
    pixels = _read_gray(image)
    mask_image = _mask(pixels.shape, mask, box)
    run = _run(
        "InpaintPipeline",
        model,
        seed,
        n,
        prompt=prompt,
        image=pixels,
        mask_image=mask_image,
        num_inference_steps=steps,
        guidance_scale=guidance,
    )
    _finish(out, "inpainted", prompt, run)


def _mask(shape: tuple[int, ...], mask: Path | None, box: str | None) -> np.ndarray:
    if (mask is None) == (box is None):
        raise typer.BadParameter("give exactly one of --mask PNG or --box x0,y0,x1,y1")
    if mask is not None:
        return _read_gray(mask)
    try:
        x0, y0, x1, y1 = (int(v) for v in str(box).split(","))
    except ValueError:
        raise typer.BadParameter(f"--box must be x0,y0,x1,y1 in pixels, got {box!r}") from None
    if not (0 <= x0 < x1 <= shape[1] and 0 <= y0 < y1 <= shape[0]):
        raise typer.BadParameter(f"--box {box} is not inside the {shape[1]}x{shape[0]} image")
    array = np.zeros(shape, dtype=np.float32)
    array[y0:y1, x0:x1] = 1.0
    return array


def outpaint(
    prompt: Annotated[str, typer.Argument(help="what the extended image shows")],
    image: Annotated[Path, typer.Argument(help="input image (PNG, DICOM, NIfTI)")],
    out: OutOption,
    left: Annotated[int, typer.Option(help="pixels to add on the left")] = 0,
    right: Annotated[int, typer.Option(help="pixels to add on the right")] = 0,
    top: Annotated[int, typer.Option(help="pixels to add at the top")] = 0,
    bottom: Annotated[int, typer.Option(help="pixels to add at the bottom")] = 0,
    n: CountOption = 1,
    seed: SeedOption = 0,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    model: ModelOption = None,
) -> None:
    """Extend an image past its borders; the original pixels are kept exactly."""
    run = _run(
        "OutpaintPipeline",
        model,
        seed,
        n,
        prompt=prompt,
        image=_read_gray(image),
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        num_inference_steps=steps,
        guidance_scale=guidance,
    )
    _finish(out, "outpainted", prompt, run)


def edit(
    prompt: Annotated[str, typer.Argument(help="the image as it should become")],
    image: Annotated[Path, typer.Argument(help="input image (PNG, DICOM, NIfTI)")],
    out: OutOption,
    mask: Annotated[Path | None, typer.Option(help="mask image, white = may change")] = None,
    box: Annotated[str | None, typer.Option(help="x0,y0,x1,y1 in pixels that may change")] = None,
    strength: Annotated[float, typer.Option(help="0.3 subtle .. 1.0 full")] = 0.6,
    n: CountOption = 1,
    seed: SeedOption = 0,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    model: ModelOption = None,
) -> None:
    """Add or remove a finding inside a mask (--mask or --box)."""
    pixels = _read_gray(image)
    run = _run(
        "EditPipeline",
        model,
        seed,
        n,
        prompt=prompt,
        image=pixels,
        mask_image=_mask(pixels.shape, mask, box),
        strength=strength,
        num_inference_steps=steps,
        guidance_scale=guidance,
    )
    _finish(out, "edited", prompt, run)


def train(
    ctx: typer.Context,
) -> None:
    """Train a model: the options of `python -m radsynth.train` (see --help there)."""
    from radsynth.train.main import main

    raise typer.Exit(main(list(ctx.args)))


def register(app: typer.Typer) -> None:
    """Add the diffusion commands to `app`."""
    for command in (generate, inpaint, outpaint, edit):
        app.command()(command)
    app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(train)
