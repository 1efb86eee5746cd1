"""docs/finding_stage.png: what the reader's finding stage sees.

One row per pathology prompt of the probe that the reader alone misses (fracture of the distal
radius, bone tumour of the femur, consolidation of the right lower lobe): a phantom drawn with
the prompt's labels, the same phantom without the finding, and two images of the built-in
model for the prompt. The stage's lesion map of the asked kind is drawn in red where it is
above 0.5; the caption gives the stage network's probability of the kind (for the bone
tumour, which the stage does not answer for, the value it would give) and the reader's own.

    python scripts/finding_stage_figure.py [--out docs/finding_stage.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from radsynth.evaluate.reader import load_reader
from radsynth.evaluate.reader.findings import STAGE_KINDS
from radsynth.evaluate.reader.inference import Reader, as_batch
from radsynth.paths import BUILTIN_MODEL
from radsynth.phantoms.cases import make_case_for_labels
from radsynth.pipelines import TextToImagePipeline
from radsynth.vocabulary import parse_prompt

PROMPTS = {
    "fracture": "AP radiograph of the left wrist with a fracture of the distal radius",
    "bone_tumour": "AP radiograph of the left knee with a bone tumour of the femur",
    "consolidation": "PA chest radiograph with consolidation of the right lower lobe",
}
SIZE = 256
SEED = 7_600_000


def tile(reader: Reader, image: np.ndarray, kind: str, title: str) -> Image.Image:
    # The stage that answers for this image and kind (the last one, as in `Reader.predict`).
    if not reader.finding_stages:
        raise SystemExit("the reader has no finding stage")
    record = Reader(reader.net).predict(image)[0]
    stages = [s for s in reader.finding_stages if s.answers(record) and kind in s.kinds]
    stage = (stages or list(reader.finding_stages))[-1]
    k = STAGE_KINDS.index(kind)
    with torch.no_grad():
        out = stage.net(as_batch(image, stage.net.config.size))
    probability = float(torch.sigmoid(out["findings"][0, k]))
    lesion = torch.sigmoid(out["lesions"][0, k]).numpy() >= 0.5
    alone = record["findings"][kind]
    grey = (np.asarray(image, dtype=np.float32).clip(0, 1) * 255).astype(np.uint8)
    rgb = np.stack([grey] * 3, -1)
    rgb = np.asarray(Image.fromarray(rgb).resize((SIZE, SIZE), Image.BICUBIC)).copy()
    mask = np.asarray(Image.fromarray(lesion.astype(np.uint8) * 255).resize((SIZE, SIZE))) > 127
    rgb[mask] = (0.5 * rgb[mask] + 0.5 * np.array([255, 30, 30])).astype(np.uint8)
    out_image = Image.new("RGB", (SIZE, SIZE + 34), "white")
    out_image.paste(Image.fromarray(rgb))
    draw = ImageDraw.Draw(out_image)
    draw.text((4, SIZE + 3), title, fill="black")
    draw.text((4, SIZE + 18), f"stage {probability:.2f}, reader alone {alone:.2f}", fill="black")
    return out_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/finding_stage.png"))
    args = parser.parse_args()
    torch.manual_seed(0)
    reader = load_reader()
    pipe = TextToImagePipeline.from_pretrained(BUILTIN_MODEL)
    rows = []
    for kind, prompt in PROMPTS.items():
        plain = prompt.split(" with ")[0]
        with_finding = make_case_for_labels(SEED, parse_prompt(prompt), SIZE).image.image
        without = make_case_for_labels(SEED, parse_prompt(plain), SIZE).image.image
        tiles = [
            tile(reader, with_finding, kind, f"phantom, {kind.replace('_', ' ')}"),
            tile(reader, without, kind, "same phantom, none"),
        ]
        seeds = (60_000, 60_001)
        images = pipe(
            prompt,
            num_images_per_prompt=2,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
        ).images
        for seed, image in zip(seeds, images, strict=True):
            array = np.asarray(image, dtype=np.float32)
            array = array / 255.0 if array.max() > 1.5 else array
            tiles.append(tile(reader, array, kind, f"model v23, seed {seed}"))
        rows.append(tiles)
    width, height = rows[0][0].size
    sheet = Image.new("RGB", (4 * width + 30, len(rows) * (height + 10)), "white")
    for r, tiles in enumerate(rows):
        for c, picture in enumerate(tiles):
            sheet.paste(picture, ((width + 10) * c, (height + 10) * r))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
