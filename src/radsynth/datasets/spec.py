"""The data-set SPEC: what `radsynth dataset build` makes, read from YAML or TOML and checked.

A SPEC (YAML shown; TOML takes the same keys)::

    source: model            # "model": a diffusion model draws the images;
                             # "phantoms": procedural phantoms, with masks (ground truth)
    model: models/knee-v1    # model folder, relative to the SPEC file (default: built-in model)
    seed: 0                  # base seed: image i (counted over all prompts) has seed + i
    size: 256                # image size in pixels (default: the model's native size; 256)
    sampler: {steps: 20, guidance: 3.0}   # default: the model's saved settings; also
                             # guidance_cutoff: guide only while t >= it x T (0: always)
    formats: [png, dicom]    # 16-bit + 8-bit PNG, and/or synthetic DICOM
    split: {train: 0.8, val: 0.1, test: 0.1}
    prompts:
      - prompt: "Lateral radiograph of the left knee with a displaced patellar fracture"
        count: 8
      - labels: {modality: xray, region: chest, view: pa, sex: female, age: 60,
                 findings: [{kind: lung_nodule, site: left_lung}]}
        count: 4

Each prompt is parsed into labels with `radsynth.vocabulary.parse_prompt` (an unknown word is
an error with the closest terms); each label combination becomes its canonical caption. With
`source: phantoms` a label left out is drawn from the image's seed, and the findings listed are
exactly the ones rendered (none listed: none). Every mistake raises `SpecError` naming the key.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from radsynth.paths import BUILTIN_MODEL
from radsynth.vocabulary import Finding, Labels, canonical_caption, parse_prompt

Source = Literal["model", "phantoms"]
SOURCES: tuple[str, ...] = ("model", "phantoms")
FORMATS: tuple[str, ...] = ("png", "dicom")
SPLITS: tuple[str, ...] = ("train", "val", "test")
TOP_LEVEL_KEYS = ("source", "model", "seed", "size", "sampler", "formats", "split", "prompts")
ENTRY_KEYS = ("prompt", "labels", "count")
LABEL_KEYS = ("modality", "region", "view", "laterality", "sex", "age", "findings", "sequence")
FINDING_KEYS = ("kind", "site", "qualifiers", "side")
PHANTOM_SIZE = 256  # default phantom image size in pixels
MAX_IMAGES = 10_000_000  # a larger total is a typo, not a data set
MAX_SEED = 2**63 - 1 - MAX_IMAGES  # every image's seed (seed + index) fits the manifests' int64


class SpecError(ValueError):
    """A SPEC that cannot be built; the message names the key and what to write instead."""


@dataclass(frozen=True)
class PromptEntry:
    """One line of `prompts`: what to show, as text for the model and as labels."""

    prompt: str  # the conditioning text: the prompt as given, or the labels' canonical caption
    labels: Labels  # what the prompt says (fields it does not give are None)
    count: int  # images to make


@dataclass(frozen=True)
class DatasetSpec:
    """A checked SPEC; `to_dict` is the normalised form saved next to the data set."""

    source: Source
    prompts: tuple[PromptEntry, ...]
    model: Path | None = None  # model folder (source "model" only)
    seed: int = 0  # image i has seed `seed + i`, i counted over all prompts in order
    size: int | None = None  # pixels; None: the model's native size (phantoms: 256)
    steps: int | None = None  # denoising steps; None: the model's default
    guidance: float | None = None  # classifier-free guidance scale; None: the model's default
    guidance_cutoff: float | None = None  # guide only while t >= it x T; None: the model's
    formats: tuple[str, ...] = ("png",)
    split: tuple[tuple[str, float], ...] = (("train", 0.8), ("val", 0.1), ("test", 0.1))

    @property
    def total(self) -> int:
        """Number of images (records) in the data set."""
        return sum(entry.count for entry in self.prompts)

    def _sampler(self) -> dict[str, Any]:
        sampler: dict[str, Any] = {"steps": self.steps, "guidance": self.guidance}
        if self.guidance_cutoff is not None:
            # Only when given: a SPEC without it normalises as it did before the key existed,
            # so data sets begun then still resume.
            sampler["guidance_cutoff"] = self.guidance_cutoff
        return sampler

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready normalised SPEC; two SPECs that build the same data set compare equal."""
        return {
            "source": self.source,
            "model": str(self.model) if self.model is not None else None,
            "seed": self.seed,
            "size": self.size,
            "sampler": self._sampler(),
            "formats": list(self.formats),
            "split": dict(self.split),
            "prompts": [
                {"prompt": e.prompt, "labels": e.labels.to_dict(), "count": e.count}
                for e in self.prompts
            ],
        }


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and check a SPEC file (.yaml, .yml or .toml); relative model paths are taken from
    the SPEC file's folder."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such SPEC file; give a .yaml or .toml file")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise SpecError(f"{path}: a SPEC must end in .yaml, .yml or .toml, not {suffix!r}")
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML ({error})") from None
    try:
        return parse_spec(data, base_dir=path.parent)
    except SpecError as error:
        raise SpecError(f"{path}: {error}") from None


def parse_spec(data: Any, base_dir: Path | None = None) -> DatasetSpec:
    """Check a SPEC given as a mapping (what YAML or TOML gives) and return it."""
    if not isinstance(data, Mapping):
        raise SpecError("a SPEC is a mapping of keys (source, prompts, ...) at the top level")
    _no_unknown_keys(data, TOP_LEVEL_KEYS, "")
    source = data.get("source", "model")
    if source not in SOURCES:
        raise SpecError(f"source: must be 'model' or 'phantoms', got {source!r}")
    sampler = _mapping(data.get("sampler", {}), "sampler")
    _no_unknown_keys(sampler, ("steps", "guidance", "guidance_cutoff"), "sampler.")
    if source == "phantoms":
        for key in ("model", "sampler"):
            if key in data:
                raise SpecError(f"{key}: only for source: model; phantoms use no model")
    steps = sampler.get("steps")
    if steps is not None:
        steps = _integer(steps, "sampler.steps", minimum=1)
    guidance = sampler.get("guidance")
    if guidance is not None:
        guidance = _number(guidance, "sampler.guidance", minimum=0.0)
    cutoff = sampler.get("guidance_cutoff")
    if cutoff is not None:
        cutoff = _number(cutoff, "sampler.guidance_cutoff", minimum=0.0)
        if cutoff > 1.0:
            raise SpecError(f"sampler.guidance_cutoff: must be in [0, 1], got {cutoff:g}")
    size = data.get("size")
    if size is not None:
        size = _integer(size, "size", minimum=8)
    elif source == "phantoms":
        size = PHANTOM_SIZE
    if source == "phantoms" and size is not None and not 32 <= size <= 4096:
        raise SpecError(f"size: phantom images are 32 to 4096 pixels, got {size}")
    prompts = tuple(_entries(data.get("prompts"), source))
    spec = DatasetSpec(
        source=source,
        prompts=prompts,
        model=_model_folder(data.get("model"), base_dir) if source == "model" else None,
        seed=_integer(data.get("seed", 0), "seed", minimum=0, maximum=MAX_SEED),
        size=size,
        steps=steps,
        guidance=guidance,
        guidance_cutoff=cutoff,
        formats=_formats(data.get("formats", ["png"])),
        split=_split(data.get("split", {"train": 0.8, "val": 0.1, "test": 0.1})),
    )
    if spec.total > MAX_IMAGES:
        raise SpecError(f"prompts: {spec.total} images in all; at most {MAX_IMAGES} per SPEC")
    return spec


def _no_unknown_keys(data: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpecError(f"{where}{key}: unknown key; {hint}known keys: {', '.join(known)}")


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{key}: must be a mapping (key: value pairs), got {value!r}")
    return value


def _integer(value: Any, key: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{key}: must be a whole number >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise SpecError(f"{key}: must be at most {maximum}, got {value!r}")
    return int(value)


def _number(value: Any, key: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise SpecError(f"{key}: must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _model_folder(value: Any, base_dir: Path | None) -> Path:
    if value is None:
        if not (BUILTIN_MODEL / "model_index.json").is_file():
            raise SpecError(
                f"model: not given, and there is no built-in model at {BUILTIN_MODEL}; "
                "set model: to a folder written by `radsynth train` or save_pretrained"
            )
        return BUILTIN_MODEL
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"model: must be the path of a model folder, got {value!r}")
    folder = Path(value).expanduser()
    if not folder.is_absolute() and base_dir is not None:
        folder = base_dir / folder
    if not (folder / "model_index.json").is_file():
        raise SpecError(
            f"model: {folder} is not a model folder (no model_index.json); give a folder "
            "written by `radsynth train` or save_pretrained"
        )
    return folder.resolve()


def _formats(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise SpecError(f"formats: must be a non-empty list of png and/or dicom, got {value!r}")
    for item in items:
        if item not in FORMATS:
            raise SpecError(f"formats: unknown format {item!r}; use png and/or dicom")
    return tuple(f for f in FORMATS if f in items)


def _split(value: Any) -> tuple[tuple[str, float], ...]:
    split = _mapping(value, "split")
    _no_unknown_keys(split, SPLITS, "split.")
    fractions = {name: _number(split.get(name, 0.0), f"split.{name}", 0.0) for name in SPLITS}
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise SpecError(
            f"split: the fractions must add up to 1, they add up to {sum(fractions.values()):g}"
        )
    return tuple(fractions.items())


def _entries(value: Any, source: str) -> list[PromptEntry]:
    if not isinstance(value, list) or not value:
        raise SpecError(
            "prompts: must be a non-empty list of entries, each with prompt: TEXT or "
            "labels: {...}, and count: N"
        )
    return [_entry(item, f"prompts[{i}]", source) for i, item in enumerate(value)]


def _entry(item: Any, key: str, source: str) -> PromptEntry:
    item = _mapping(item, key)
    _no_unknown_keys(item, ENTRY_KEYS, f"{key}.")
    if ("prompt" in item) == ("labels" in item):
        raise SpecError(f"{key}: give exactly one of prompt: TEXT or labels: {{...}}")
    if "count" not in item:
        raise SpecError(f"{key}.count: missing; say how many images to make")
    count = _integer(item["count"], f"{key}.count", minimum=1)
    if "prompt" in item:
        text = item["prompt"]
        if not isinstance(text, str) or not text.strip():
            raise SpecError(f"{key}.prompt: must be a non-empty text, got {text!r}")
        try:
            labels = parse_prompt(text)
        except ValueError as error:
            raise SpecError(f"{key}.prompt: {error}") from None
        prompt = text.strip()
    else:
        labels = _labels(item["labels"], f"{key}.labels")
        prompt = canonical_caption(labels)
    if source == "phantoms" and labels.window is not None:
        raise SpecError(f"{key}: a CT window is chosen by the phantom renderer; leave it out")
    return PromptEntry(prompt=prompt, labels=labels, count=count)


def _labels(value: Any, key: str) -> Labels:
    data = dict(_mapping(value, key))
    _no_unknown_keys(data, LABEL_KEYS, f"{key}.")
    findings = data.pop("findings", [])
    if not isinstance(findings, list):
        raise SpecError(f"{key}.findings: must be a list of findings, got {findings!r}")
    if "age" in data:
        data["age"] = _integer(data["age"], f"{key}.age", minimum=0)
    try:
        parsed = tuple(_finding(f, f"{key}.findings[{i}]") for i, f in enumerate(findings))
        return Labels(**data, findings=parsed)
    except (TypeError, ValueError) as error:
        if isinstance(error, SpecError):
            raise
        raise SpecError(f"{key}: {error}") from None


def _finding(value: Any, key: str) -> Finding:
    """A finding as {kind, site, qualifiers, side} or just its kind ("fracture")."""
    data = {"kind": value} if isinstance(value, str) else dict(_mapping(value, key))
    _no_unknown_keys(data, FINDING_KEYS, f"{key}.")
    qualifiers: Any = data.get("qualifiers", [])
    if isinstance(qualifiers, str):
        qualifiers = [qualifiers]
    if not isinstance(qualifiers, list | tuple) or not all(isinstance(q, str) for q in qualifiers):
        raise SpecError(f"{key}.qualifiers: give a word or a list of words, got {qualifiers!r}")
    try:
        return Finding(str(data.get("kind")), data.get("site"), tuple(qualifiers), data.get("side"))
    except ValueError as error:
        raise SpecError(f"{key}: {error}") from None
