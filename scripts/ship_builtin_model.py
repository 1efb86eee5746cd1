"""Copy a finished training run into the package as the built-in model, in fp16.

    python scripts/ship_builtin_model.py runs/builtin --data-command "python scripts/..."

Writes src/radsynth/models/builtin/: the diffusers folder (fp16 safetensors, EMA weights),
`training.json` (the run's own record plus how its data was made, and for a fine-tune its
parent's record under "parent") and `loss.png`. RUN may also be a weight average
(`radsynth average ... --out RUN`), whose record holds those of the models it averaged; it has
no loss curve of its own, so give one with `--loss-curve` (e.g. its fine-tune's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import torch

from radsynth.models import DiffusionComponents
from radsynth.paths import BUILTIN_MODEL as TARGET
from radsynth.train.report import with_parents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the training output folder (with model/)")
    parser.add_argument("--data-command", required=True, help="how the training data was made")
    parser.add_argument("--note", default="", help="free text for the record")
    parser.add_argument(
        "--loss-curve",
        type=Path,
        help="the loss-curve PNG to ship (default: RUN/loss.png; a weight average has none of "
        "its own: give its fine-tune's)",
    )
    args = parser.parse_args()
    loss_curve = args.loss_curve or args.run / "loss.png"
    if args.loss_curve is not None and not args.loss_curve.is_file():
        parser.error(f"--loss-curve {args.loss_curve}: no such file")
    components = DiffusionComponents.from_pretrained(args.run / "model")
    # A fine-tune (--init-from) keeps its parent's record, read before the folder is replaced:
    # the chain of records says how every step of the shipped weights was trained.
    record = with_parents(json.loads((args.run / "training.json").read_text()))
    if TARGET.exists():
        shutil.rmtree(TARGET)
    components.save_pretrained(TARGET, weights_dtype=torch.float16)
    weights = TARGET / "unet" / "diffusion_pytorch_model.safetensors"
    record["shipped"] = {
        "weights_dtype": "float16",
        "unet_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "unet_bytes": weights.stat().st_size,
        "data_command": args.data_command,
        "note": args.note,
    }
    (TARGET / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    if loss_curve.is_file():
        shutil.copy(loss_curve, TARGET / "loss.png")
    size = sum(p.stat().st_size for p in TARGET.rglob("*") if p.is_file())
    print(f"wrote {TARGET} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
