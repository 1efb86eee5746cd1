"""Copy a finished training run into the package as the built-in model, in fp16.

    python scripts/ship_builtin_model.py runs/builtin --data-command "python scripts/..."

Writes src/radsynth/models/builtin/: the diffusers folder (fp16 safetensors, EMA weights),
`training.json` (the run's own record plus how its data was made, and for a fine-tune its
parent's record under "parent") and `loss.png`.
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


def trained_steps(record: dict) -> int:
    """Steps of the model a run wrote: its parent's and its own."""
    return int(record.get("parent_steps") or 0) + int(record["steps"])


def parent_record(record: dict) -> dict | None:
    """The training record of the model a fine-tune started from: the model folder's own
    (a shipped model) or its run folder's (`radsynth train --out RUN` writes RUN/model and
    RUN/training.json); None when it was not kept.

    A path can hold another model by now (the built-in folder is replaced at every ship), so
    the record must account for the run's `parent_steps`: where the folder's record does not,
    the one in its own chain of parents that does is taken (the built-in folder of a later
    ship still carries the earlier model's record), and None where none does."""
    init_from = record.get("config", {}).get("init_from")
    if not init_from:
        return None
    for candidate in (Path(init_from) / "training.json", Path(init_from).parent / "training.json"):
        if candidate.is_file():
            found: dict | None = json.loads(candidate.read_text())
            if record.get("parent_steps") is None:
                return found
            while found is not None and trained_steps(found) != record["parent_steps"]:
                found = found.get("parent")
            return found
    return None


def with_parents(record: dict, depth: int = 0) -> dict:
    """`record` with its chain of parent records attached, as far as they can be found."""
    if "parent" not in record and depth < 32:
        parent = parent_record(record)
        if parent is not None:
            record["parent"] = with_parents(parent, depth + 1)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the training output folder (with model/)")
    parser.add_argument("--data-command", required=True, help="how the training data was made")
    parser.add_argument("--note", default="", help="free text for the record")
    args = parser.parse_args()
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
    if (args.run / "loss.png").is_file():
        shutil.copy(args.run / "loss.png", TARGET / "loss.png")
    size = sum(p.stat().st_size for p in TARGET.rglob("*") if p.is_file())
    print(f"wrote {TARGET} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
