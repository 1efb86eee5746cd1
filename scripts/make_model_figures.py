"""Write the pictures of what the built-in model makes, for docs/ and the README.

    .venv/bin/python scripts/make_model_figures.py [--model DIR] [--only NAME ...]

docs/figure1.jpg             "An X-ray of the <region>", 8 regions x 4 images, all kept
docs/generated_modalities.jpg CT, MRI and ultrasound prompts, 4 images each
docs/inpainting.png          joints erased and reconstructed: truth | erased | radsynth | biharmonic
docs/knee_to_full_body.jpg   a knee radiograph outpainted to the whole body, beside the same
                             body's true projection (the answer key)
docs/findings.jpg            findings asked for by prompt, and a pacemaker removed by inpainting

Every image comes from a fixed seed; the figures are remade bit for bit on the same machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from skimage.restoration import inpaint_biharmonic

from radsynth.io.png import write_png
from radsynth.paths import BUILTIN_MODEL
from radsynth.phantoms.cases import make_case
from radsynth.pipelines import InpaintPipeline, OutpaintPipeline, TextToImagePipeline
from radsynth.probe.figures import FigureRow, generate_rows, labelled_grid
from radsynth.probe.scoring import regional_plane
from radsynth.vocabulary import Finding

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
INFO = {"Software": "radsynth scripts/make_model_figures.py", "Synthetic": "YES"}

MODALITY_PROMPTS = [
    ("CT head", "Axial CT of the head in brain window"),
    ("CT chest", "Axial CT of the chest in lung window"),
    ("CT abdomen", "Axial CT of the abdomen"),
    ("MRI head", "T1-weighted MRI of the head"),
    ("MRI knee", "Sagittal T2-weighted MRI of the knee"),
    ("US liver", "Ultrasound of the liver"),
    ("US kidney", "Ultrasound of the kidney"),
    ("US fetus", "Ultrasound of the fetus"),
]
FINDING_PROMPTS = [
    ("wrist fracture", "An X-ray of the wrist with a distal radius fracture"),
    ("chest consolidation", "PA chest X-ray with consolidation"),
    ("chest pacemaker", "PA chest radiograph with a pacemaker"),
    ("CT haemorrhage", "Axial CT of the head with haemorrhage"),
]
JOINTS = [("knee", "left"), ("ankle", "right"), ("wrist", "left"), ("shoulder", "right")]


def _tile(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))


def _save(name: str, pixels: np.ndarray) -> None:
    """PNG with text chunks; .jpg names are saved at half size (noisy grids compress badly)."""
    if name.endswith(".jpg"):
        image = Image.fromarray(pixels)
        image = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
        path = DOCS / name
        image.save(path, quality=75, optimize=True)
    else:
        path = write_png(DOCS / name, pixels, INFO)
    print(f"wrote {path}", flush=True)


def figure1(pipe: TextToImagePipeline) -> None:
    from radsynth.probe.figures import figure1_prompts

    rows = generate_rows(pipe, figure1_prompts(), 4, seed=0)
    _save("figure1.jpg", labelled_grid(rows, "radsynth built-in model: study Figure 1"))


def modalities(pipe: TextToImagePipeline) -> None:
    rows = generate_rows(pipe, MODALITY_PROMPTS, 4, seed=100)
    _save("generated_modalities.jpg", labelled_grid(rows, "CT, MRI and ultrasound from text"))


def findings(pipe: TextToImagePipeline, inpaint: InpaintPipeline) -> None:
    rows = generate_rows(pipe, FINDING_PROMPTS, 4, seed=200)
    # Removal: a phantom chest with a pacemaker, the device's mask dilated, inpainted without it.
    seed = 7
    pacemaker = (Finding("pacemaker", None, ()),)
    case = make_case(seed, modality="xray", region="chest", view="pa", findings_=pacemaker)
    device = np.zeros(case.image.image.shape, dtype=bool)
    for name, mask in case.image.masks.items():
        if name.startswith("finding_pacemaker"):
            device |= mask
    device = ndimage.binary_dilation(device, iterations=6)
    removed = inpaint(
        "PA chest radiograph",
        case.image.image,
        device.astype(np.float32),
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    erased = np.where(device, 0.0, case.image.image)
    rows.append(
        FigureRow(
            "removal",
            "remove the pacemaker: phantom | mask | inpainted 'PA chest radiograph'",
            [case.image.image, erased, np.asarray(removed)],
            [seed, seed, 0],
        )
    )
    _save("findings.jpg", labelled_grid(rows, "Findings by prompt, and removal by inpainting"))


def inpainting(inpaint: InpaintPipeline) -> None:
    rows = []
    for i, (region, side) in enumerate(JOINTS):
        case = make_case(
            300 + i, modality="xray", region=region, view="ap", laterality=side, findings_=()
        )
        truth = case.image.image
        mask = np.zeros_like(truth)
        mask[80:176, 80:176] = 1.0  # the joint sits at the field's centre
        prompt = f"AP radiograph of the {side} {region}"
        made = np.asarray(
            inpaint(prompt, truth, mask, generator=torch.Generator().manual_seed(i)).images[0]
        )
        classical = inpaint_biharmonic(truth.astype(np.float64), mask.astype(bool))
        images = [truth, truth * (1 - mask), made, classical.astype(np.float32)]
        title = f"{prompt}: truth | erased | radsynth | biharmonic"
        rows.append(FigureRow(region, title, images, [300 + i] * 4))
    _save("inpainting.png", labelled_grid(rows, "Joints erased and reconstructed"))


def knee_to_full_body(outpaint: OutpaintPipeline, seed: int = 3, size: int = 256) -> None:
    plane = regional_plane(seed, "knee", "ap", "left", sex="female", size=size)
    knee, truth, margins = plane.full_body(3 * size)
    tall, wide = truth.image.shape
    top, left = margins["top"], margins["left"]
    started = time.perf_counter()
    grown = np.asarray(
        outpaint(
            "AP radiograph of a woman",
            knee.image,
            generator=torch.Generator().manual_seed(seed),
            layout_prompt="AP radiograph of the whole body of a woman",
            **margins,
        ).images[0]
    )
    seconds = time.perf_counter() - started
    gap = 16
    canvas = Image.new("L", (3 * wide + 2 * gap, tall + 24), 16)
    knee_only = np.zeros((tall, wide), dtype=np.float32)
    knee_only[top : top + size, left : left + size] = knee.image
    for k, image in enumerate((knee_only, grown, truth.image)):
        canvas.paste(_tile(image), (k * (wide + gap), 24))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=18)
    labels = ("the knee radiograph", f"outpainted by radsynth ({seconds:.0f} s)", "answer key")
    for k, label in enumerate(labels):
        draw.text((k * (wide + gap) + 4, 2), label, fill=235, font=font)
        x0 = k * (wide + gap) + left
        draw.rectangle((x0, 24 + top, x0 + size - 1, 24 + top + size - 1), outline=200, width=2)
    _save("knee_to_full_body.jpg", np.asarray(canvas))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=BUILTIN_MODEL)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args(argv)
    DOCS.mkdir(exist_ok=True)
    t2i: Any = TextToImagePipeline.from_pretrained(args.model)
    inpaint: Any = InpaintPipeline(t2i.components)
    outpaint: Any = OutpaintPipeline(t2i.components)
    for pipe in (t2i, inpaint, outpaint):
        pipe.set_progress_bar_config(disable=True)
    jobs = {
        "figure1": lambda: figure1(t2i),
        "modalities": lambda: modalities(t2i),
        "inpainting": lambda: inpainting(inpaint),
        "findings": lambda: findings(t2i, inpaint),
        "knee_to_full_body": lambda: knee_to_full_body(outpaint),
    }
    for name, job in jobs.items():
        if args.only is None or name in args.only:
            job()


if __name__ == "__main__":
    main()
