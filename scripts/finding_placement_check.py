"""How often a finding asked without a site, or on a long bone's shaft, is shown on the
phantom radiograph of its prompt.

For each prompt, `--n` phantoms (seeds 8,000,000+) are drawn with the prompt's labels; a finding
counts as shown where its masks cover at least 4 px of the 256 px image (the finding stage's
rule) and as flagged where the case lists it under `findings_not_shown`.

    python scripts/finding_placement_check.py [--n 24]
"""

from __future__ import annotations

import argparse

from radsynth.evaluate.reader.findings import MIN_AREA
from radsynth.phantoms.cases import make_case_for_labels
from radsynth.vocabulary import parse_prompt

PROMPTS = (
    "AP radiograph of the left ankle with a displaced fracture",
    "AP radiograph of the left knee with a fracture",
    "PA radiograph of the left wrist with a fracture",
    "PA radiograph of the left hand with a fracture",
    "AP radiograph of the left shoulder with a fracture",
    "AP radiograph of the pelvis with a fracture",
    "AP radiograph of the left ankle with a bone tumour",
    "AP radiograph of the left knee with a bone tumour",
    "Axial CT of the head with intracranial haemorrhage",
    # Sites on a long bone's shaft, placed by the region's joint
    "AP radiograph of the left knee with a fracture of the femur",
    "AP radiograph of the left knee with a fracture of the tibia",
    "PA radiograph of the left wrist with a fracture of the ulna",
    "AP radiograph of the left knee with a bone tumour of the tibia",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="phantoms per prompt")
    args = parser.parse_args()
    for prompt in PROMPTS:
        labels = parse_prompt(prompt)
        kind = labels.findings[0].kind
        shown = flagged = 0
        for seed in range(8_000_000, 8_000_000 + args.n):
            image = make_case_for_labels(seed, labels).image
            area = sum(
                int(m.sum()) for k, m in image.masks.items() if k.startswith(f"finding_{kind}")
            )
            shown += area >= MIN_AREA
            flagged += bool(image.meta.get("findings_not_shown"))
        print(f"{prompt}: shown {shown} of {args.n}, flagged not shown {flagged}")


if __name__ == "__main__":
    main()
