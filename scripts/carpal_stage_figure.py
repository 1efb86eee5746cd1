"""docs/carpal_stage.png: what the reader's carpal stage sees.

Top row: phantom PA hand and wrist (the probe's prompts' labels), one with a carpal removed and
one with two carpals fused. Bottom row: PA hands and wrists of the built-in model. Each tile is
the box the reader's carpal mask places, as the stage reads it, with its carpal centres marked;
the caption gives the stage's count and the reader's own (at 160 px, without the stage).

    python scripts/carpal_stage_figure.py [--out docs/carpal_stage.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from radsynth.evaluate.reader import load_reader
from radsynth.evaluate.reader.carpals import CROP, carpal_box, crop
from radsynth.evaluate.reader.inference import Reader, count_peaks
from radsynth.evaluate.reader.variant_cases import variant_case
from radsynth.paths import BUILTIN_MODEL
from radsynth.phantoms.cases import make_case_for_labels
from radsynth.pipelines import TextToImagePipeline
from radsynth.vocabulary import parse_prompt

HAND, WRIST = "PA radiograph of the left hand", "PA radiograph of the left wrist"
SCALE = 3


def tile(reader: Reader, image: np.ndarray, title: str) -> Image.Image:
    stage = reader.carpals
    assert stage is not None
    own = Reader(reader.net).structures(image)[0]  # the reader's map, before the stage
    mask, alone = own.masks["carpals"], len(own.centres["carpals"])
    box = carpal_box(mask, image.shape)
    assert box is not None, f"the reader sees no carpals in the {title}"
    picture = crop(torch.from_numpy(image.astype(np.float32))[None], box)
    with torch.no_grad():
        heat = torch.sigmoid(stage.net(picture[None])["centres"][0, 0]).numpy()
    peaks = count_peaks(heat)
    size = CROP * SCALE
    pixels = (picture[0].numpy().clip(0, 1) * 255).astype(np.uint8)
    out = Image.new("RGB", (size, size + 34), "white")
    out.paste(Image.fromarray(pixels).resize((size, size), Image.BICUBIC).convert("RGB"))
    draw = ImageDraw.Draw(out)
    for row, col in peaks:
        y, x = (row + 0.5) * SCALE, (col + 0.5) * SCALE
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], outline=(255, 40, 40), width=2)
    draw.text((4, size + 3), title, fill="black")
    draw.text((4, size + 18), f"stage {len(peaks)}, reader alone {alone}", fill="black")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/carpal_stage.png"))
    args = parser.parse_args()
    torch.manual_seed(0)
    reader = load_reader()
    tiles = [
        tile(
            reader,
            make_case_for_labels(7_000_000, parse_prompt(HAND), 256).image.image,
            "phantom hand",
        ),
        tile(
            reader,
            make_case_for_labels(7_000_000, parse_prompt(WRIST), 256).image.image,
            "phantom wrist",
        ),
        tile(
            reader, variant_case(9_100_000, 256, kind="missing_carpal")[0].image, "a carpal removed"
        ),
        tile(
            reader, variant_case(9_100_000, 256, kind="fused_carpals")[0].image, "two carpals fused"
        ),
    ]
    pipe = TextToImagePipeline.from_pretrained(BUILTIN_MODEL)
    for prompt, name in ((HAND, "hand"), (WRIST, "wrist")):
        seeds = (50_000, 50_001)
        images = pipe(
            prompt,
            num_images_per_prompt=2,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
        ).images
        for seed, image in zip(seeds, images, strict=True):
            array = np.asarray(image, dtype=np.float32)
            array = array / 255.0 if array.max() > 1.5 else array
            tiles.append(tile(reader, array, f"model {name}, seed {seed}"))
    width, height = tiles[0].size
    sheet = Image.new("RGB", (4 * width + 30, 2 * height + 10), "white")
    for k, picture in enumerate(tiles):
        sheet.paste(
            picture, (10 * (k % 4 > 0) * (k % 4) + width * (k % 4), (height + 10) * (k // 4))
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
