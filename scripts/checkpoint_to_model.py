"""Turn a training checkpoint's EMA weights into a model folder, to probe or ship it.

    python scripts/checkpoint_to_model.py runs/builtin-v5/checkpoints/step-0002000 OUT \
        --base src/radsynth/models/builtin

A run writes its model folder only when it finishes; its checkpoints (`checkpoints/step-*/`)
hold the UNet and its EMA copy. This loads the base model folder the run started from (the
same architecture, text encoder and scheduler), swaps in the checkpoint's EMA UNet, sets
`trained_steps` to the base's steps plus the checkpoint's (for a run started with --init-from;
give --from-scratch for a run trained from a preset) and saves it in diffusers' layout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from radsynth.models import DiffusionComponents
from radsynth.paths import BUILTIN_MODEL
from radsynth.train.checkpoint import load_unet_weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoints/step-NNNNNNN folder")
    parser.add_argument("out", type=Path, help="model folder to write")
    parser.add_argument("--base", type=Path, default=BUILTIN_MODEL, help="model the run began as")
    parser.add_argument("--from-scratch", action="store_true", help="do not add the base's steps")
    args = parser.parse_args(argv)
    state_file = args.checkpoint / "state.json"
    if not state_file.is_file():
        parser.error(f"{args.checkpoint} has no state.json; give a complete checkpoint folder")
    step = int(json.loads(state_file.read_text())["step"])
    components = DiffusionComponents.from_pretrained(args.base)
    components.unet.load_state_dict(load_unet_weights(args.checkpoint / "ema_unet"))
    parent = 0 if args.from_scratch else int(components.defaults.get("trained_steps", 0))
    components.defaults = {**components.defaults, "trained_steps": parent + step}
    components.save_pretrained(args.out)
    print(f"wrote {args.out}: EMA weights of step {step} ({parent + step} steps in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
