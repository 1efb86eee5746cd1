"""Turn a training checkpoint's EMA weights into a model folder, to probe or ship it.

    python scripts/checkpoint_to_model.py runs/builtin-v5/checkpoints/step-0002000 OUT

A run writes its model folder only when it finishes; its checkpoints (`checkpoints/step-*/`)
hold the UNet and its EMA copy. This rebuilds the model the run started from, as the run itself
did (its `--init-from` folder, or its preset), from the configuration the checkpoint records;
swaps in the checkpoint's EMA UNet; counts `trained_steps` as training does (the starting
model's steps plus the checkpoint's) and saves it in diffusers' layout. `--base` names the
starting folder instead, for a run whose --init-from folder has moved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from radsynth.models import DiffusionComponents
from radsynth.train import TrainConfig
from radsynth.train.checkpoint import load_unet_weights
from radsynth.train.loop import initial_components, steps_before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoints/step-NNNNNNN folder")
    parser.add_argument("out", type=Path, help="model folder to write")
    parser.add_argument("--base", type=Path, help="the run's starting model folder, if moved")
    args = parser.parse_args(argv)
    state_file = args.checkpoint / "state.json"
    if not state_file.is_file():
        parser.error(f"{args.checkpoint} has no state.json; give a complete checkpoint folder")
    state = json.loads(state_file.read_text())
    step = int(state["step"])
    if args.base is not None:
        components = DiffusionComponents.from_pretrained(args.base)
    else:
        components = initial_components(TrainConfig(**state["config"]))
    parent = steps_before(components)
    components.unet.load_state_dict(load_unet_weights(args.checkpoint / "ema_unet"))
    components.defaults = {**components.defaults, "trained_steps": parent + step}
    components.save_pretrained(args.out)
    print(f"wrote {args.out}: EMA weights of step {step} ({parent + step} steps in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
