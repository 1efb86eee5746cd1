"""Write the figures under docs/ that the README shows (besides the contact sheet).

docs/answer_key.png: a phantom knee radiograph and, at the same pixel spacing, the same
body's projection grown to the whole leg and trunk: the true continuation outside the knee's
borders, which outpainting is scored against. The knee's field is outlined.

docs/sided_findings.jpg: phantoms drawn from prompts that give a finding its side on a midline
region, or ask for it on both sides; each finding's mask is outlined in a colour of its own
(the patient's left is on the image's right).

Run: .venv/bin/python scripts/make_docs_figures.py [--out docs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from radsynth.phantoms.body import draw_subject, make_body
from radsynth.phantoms.cases import make_case_for_labels
from radsynth.phantoms.xray import region_centre, region_settings, render_window
from radsynth.vocabulary import parse_prompt

DOCS = Path(__file__).resolve().parent.parent / "docs"


def answer_key(path: Path, seed: int = 3, size: int = 256) -> None:
    rng = np.random.default_rng(seed)
    body = make_body(draw_subject(rng, sex="female"), rng)
    settings = region_settings(body, "knee", "ap", "left", size, noise_seed=seed)
    centre = region_centre(body, "knee", "left")
    knee = render_window(body, settings, centre, (size, size))
    # The same detector plane, 5 knee-heights tall and 2 wide, centred higher on the body.
    grown_centre = centre + np.array(
        [-0.5 * size * settings.spacing_mm, 0.0, 1.5 * size * settings.spacing_mm]
    )
    grown = render_window(body, settings, grown_centre, (5 * size, 2 * size))
    offset = np.array(knee.meta["lattice_origin"]) - np.array(grown.meta["lattice_origin"])
    r0, c0 = int(offset[0]), int(offset[1])
    crop = grown.image[r0 : r0 + size, c0 : c0 + size]
    assert np.allclose(crop, knee.image, atol=1e-6), "a regional image is a crop of the plane"
    canvas = Image.new("L", (size + 2 * size + 24, 5 * size), 20)
    canvas.paste(Image.fromarray(knee.to_uint8()), (0, 2 * size))
    canvas.paste(Image.fromarray(grown.to_uint8()), (size + 24, 0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(
        (size + 24 + c0, r0, size + 24 + c0 + size - 1, r0 + size - 1), outline=255, width=3
    )
    canvas.save(path)


SIDED_PROMPTS = (
    "PA chest radiograph with bilateral pleural effusions",
    "PA chest radiograph with a displaced fracture of the left clavicle",
    "AP pelvis radiograph with a fracture of the right femoral neck",
    "PA chest radiograph with a right-sided pacemaker and consolidation in both lungs",
)
OUTLINE_COLOURS = ((255, 60, 60), (60, 200, 255), (255, 210, 0), (120, 255, 120))


def sided_findings(path: Path, seed: int = 4, size: int = 320) -> None:
    label_h, font = 40, ImageFont.load_default(size=13)
    sheet = Image.new("RGB", (len(SIDED_PROMPTS) * (size + 8) - 8, size + label_h), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    for index, prompt in enumerate(SIDED_PROMPTS):
        case = make_case_for_labels(seed, parse_prompt(prompt), size)
        tile = np.repeat(case.image.to_uint8()[..., None], 3, axis=2)
        names = [n for n in case.image.meta["finding_structures"] if n in case.image.masks]
        # One colour per finding: a device's parts (generator, leads) share their finding's.
        findings = list(
            dict.fromkeys(n.removesuffix("_leads").removesuffix("_generator") for n in names)
        )
        for name in names:
            mask = case.image.masks[name]
            edge = mask & ~ndimage.binary_erosion(mask, iterations=2)
            base = name.removesuffix("_leads").removesuffix("_generator")
            tile[edge] = OUTLINE_COLOURS[findings.index(base) % len(OUTLINE_COLOURS)]
        x = index * (size + 8)
        sheet.paste(Image.fromarray(tile), (x, 0))
        words, lines = prompt.split(), [""]
        for word in words:
            trial = f"{lines[-1]} {word}".strip()
            if draw.textlength(trial, font=font) > size - 6:
                lines.append(word)
            else:
                lines[-1] = trial
        draw.multiline_text((x + 3, size + 3), "\n".join(lines), fill=(235, 235, 235), font=font)
    sheet.save(path, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="folder (default: docs/)")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    answer_key(out / "answer_key.png")
    print(f"wrote {out / 'answer_key.png'}")
    sided_findings(out / "sided_findings.jpg")
    print(f"wrote {out / 'sided_findings.jpg'}")


if __name__ == "__main__":
    main()
