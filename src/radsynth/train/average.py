"""Weight averaging: one model whose weights are a weighted mean of several fine-tunes.

Two fine-tunes of one parent lie close together in weight space, and their average often keeps
what each learned (Wortsman et al. 2022, "Model soups"). `radsynth average A B --out RUN`
writes RUN/model, a model folder like any other, and RUN/training.json, which records the
command and, for each averaged model, its weight, checksum and training record (with the
chain of records it continued), so the averaged model stays accountable for every step.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radsynth.datasets.weights import file_sha256
from radsynth.models import DiffusionComponents, read_model_index
from radsynth.train.report import (
    folder_record,
    machine_description,
    with_parents,
    write_training_record,
)

# Config entries that name where a component came from, not what it is.
_PROVENANCE_KEYS = ("_name_or_path", "_diffusers_version", "_commit_hash")


def _config(module: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(module.config).items() if k not in _PROVENANCE_KEYS}


def _describe(components: DiffusionComponents, folder: Path) -> dict[str, Any]:
    """What must agree between averaged models: architecture, encoder, patch size, sampler."""
    index = read_model_index(folder)
    return {
        "unet": _config(components.unet),
        "vae": None if components.vae is None else _config(components.vae),
        "text encoder": index.get("text_encoder"),
        "text encoder width": components.prompt_encoder.hidden_size,
        "patch size": components.patch_size,
        "scheduler": _config(components.scheduler),
    }


def _weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None or len(weights) == 0:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} models; give one weight per model")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def _average(
    paths: list[Path], models: list[DiffusionComponents], shares: list[float]
) -> DiffusionComponents:
    """The first of the loaded `models`, its UNet (and autoencoder) weights replaced by the
    mean under `shares` (normalised), `trained_steps` the largest of the models'."""
    first = _describe(models[0], paths[0])
    for path, model in zip(paths[1:], models[1:], strict=True):
        other = _describe(model, path)
        differ = [key for key in first if first[key] != other[key]]
        if differ:
            raise ValueError(
                f"{path} differs from {paths[0]} in its {', '.join(differ)}; only models of one "
                "architecture, text encoder and sampler (fine-tunes of one model) can be averaged"
            )
    kept = {k: v for k, v in models[0].defaults.items() if k != "trained_steps"}
    for path, model in zip(paths[1:], models[1:], strict=True):
        own = {k: v for k, v in model.defaults.items() if k != "trained_steps"}
        differ = sorted(k for k in kept.keys() | own.keys() if kept.get(k) != own.get(k))
        if differ:
            said = ", ".join(f"{k} {own.get(k)!r} (kept: {kept.get(k)!r})" for k in differ)
            warnings.warn(
                f"{path} has other pipeline defaults than {paths[0]}: {said}; the averaged "
                "model keeps the first model's (list first the model whose defaults it should "
                "have)",
                stacklevel=2,
            )
    steps = max(int(m.defaults.get("trained_steps", 0)) for m in models)
    result = models[0]
    for name in ("unet", "vae"):
        if getattr(result, name) is None:
            continue
        states = [getattr(m, name).state_dict() for m in models]
        mean = {
            key: sum(s * state[key].float() for s, state in zip(shares, states, strict=True))
            for key in states[0]
        }
        getattr(result, name).load_state_dict(mean)
    result.defaults = {**result.defaults, "trained_steps": steps}
    return result


def _load(
    folders: Sequence[str | Path], weights: Sequence[float] | None
) -> tuple[list[Path], list[DiffusionComponents], list[float]]:
    """The folders as paths, their models loaded, and the weights normalised."""
    paths = [Path(f) for f in folders]
    if len(paths) < 2:
        raise ValueError("averaging needs at least two model folders")
    shares = _weights(weights, len(paths))
    return paths, [DiffusionComponents.from_pretrained(p) for p in paths], shares


def average_models(
    folders: Sequence[str | Path], weights: Sequence[float] | None = None
) -> DiffusionComponents:
    """Load the model folders and return one model whose UNet (and autoencoder) weights are
    their weighted mean, computed in float32; weights are normalised to sum to 1 (equal by
    default). The prompt encoder, scheduler and sampling defaults are the first model's;
    `trained_steps` is the largest of the models'. Raises ValueError when the models differ in
    anything but their weights."""
    return _average(*_load(folders, weights))


def average_run(
    folders: Sequence[str | Path],
    out: str | Path,
    weights: Sequence[float] | None = None,
    command: str = "",
) -> Path:
    """Average the model folders into OUT/model and record how in OUT/training.json, with each
    model's own training record and its chain of parents as found now (a fine-tune's parent is
    looked up in its --init-from folder, which a later ship may replace). Raises ValueError
    where OUT/model exists (nothing is replaced). Returns OUT/model."""
    out = Path(out)
    if (out / "model").exists():
        raise ValueError(f"{out / 'model'} exists; give a new --out (nothing is replaced)")
    start = time.time()
    paths, models, shares = _load(folders, weights)
    averaged = []
    for path, model, share in zip(paths, models, shares, strict=True):
        record = folder_record(path)
        weights_file = path / "unet" / "diffusion_pytorch_model.safetensors"
        averaged.append(
            {
                "model": str(path),
                "weight": share,
                "trained_steps": int(model.defaults.get("trained_steps", 0)),
                "unet_sha256": file_sha256(weights_file) if weights_file.is_file() else None,
                "record": None if record is None else with_parents(record),
            }
        )
    components = _average(paths, models, shares)
    written = components.save_pretrained(out / "model")
    write_training_record(
        out / "training.json",
        {
            "kind": "weight average",
            "command": command,
            "averaged": averaged,
            # No step of its own: the model counts the longest training among the averaged.
            "steps": 0,
            "parent_steps": components.defaults["trained_steps"],
            "wall_seconds": time.time() - start,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine_description(1, "cpu"),
        },
    )
    return written
