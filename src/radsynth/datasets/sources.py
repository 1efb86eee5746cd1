"""Where the images of a data set come from: a diffusion model or the procedural phantoms.

A source makes image `index` of a SPEC from its seed alone, so any process can make any image
and the result does not depend on which process made it or in what order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from radsynth.datasets.spec import DatasetSpec, PromptEntry, SpecError
from radsynth.datasets.weights import model_name, weights_sha256
from radsynth.io.provenance import Provenance
from radsynth.vocabulary import Labels

PHANTOM_MODEL_NAME = "radsynth-phantoms"


@dataclass
class MadeImage:
    """One generated image with what the manifest and the DICOM header say about it."""

    pixels: np.ndarray  # float32 (rows, columns) in [0, 1]
    caption: str  # text that describes the image (the model's prompt, or the phantom caption)
    labels: Labels
    provenance: Provenance
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) in mm, when known
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # structure -> boolean mask


class ImageSource(Protocol):
    """Makes image `index` of a SPEC from `seed` (= spec.seed + index)."""

    model: str  # name recorded in the manifest
    model_sha256: str | None
    steps: int | None
    guidance: float | None

    def make(self, entry: PromptEntry, seed: int) -> MadeImage: ...


class ModelSource:
    """Text-to-image with a model folder; image `seed` is what `radsynth generate PROMPT --seed
    SEED` gives with the same model and sampler settings."""

    def __init__(self, spec: DatasetSpec, device: Any = None) -> None:
        from radsynth.pipelines import TextToImagePipeline

        if spec.model is None:
            raise SpecError("model: a model source needs a model folder")
        try:
            self.pipe: Any = TextToImagePipeline.from_pretrained(spec.model)
        except ValueError as error:  # a broken or foreign model folder
            raise SpecError(f"model: {error}") from None
        if device is not None:
            self.pipe.to(device)
        self.pipe.set_progress_bar_config(disable=True)
        if spec.guidance_cutoff is not None:
            self.pipe.guidance_cutoff = spec.guidance_cutoff
        self.model = model_name(spec.model)
        self.model_sha256: str | None = weights_sha256(spec.model)
        self.steps: int | None = int(self.pipe.default("num_inference_steps", spec.steps))
        self.guidance: float | None = float(self.pipe.default("guidance_scale", spec.guidance))
        self.size = spec.size or self.pipe.components.sample_size
        try:
            self.pipe.check_size(self.size, self.size, "size")
        except ValueError as error:
            raise SpecError(f"size: {error}") from None

    def make(self, entry: PromptEntry, seed: int) -> MadeImage:
        import torch

        output = self.pipe(
            prompt=entry.prompt,
            height=self.size,
            width=self.size,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            generator=torch.Generator().manual_seed(seed),
        )
        provenance = Provenance(
            model_name=self.model,
            weights_sha256=self.model_sha256,
            prompt=entry.prompt,
            seed=seed,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            guidance_cutoff=self.pipe.guidance_cutoff,
        )
        pixels = np.asarray(output.images[0], dtype=np.float32)
        return MadeImage(pixels, entry.prompt, entry.labels, provenance)


class PhantomSource:
    """Procedural phantom cases: the entry's labels fixed, the rest drawn from the seed."""

    model = PHANTOM_MODEL_NAME
    model_sha256: str | None = None
    steps: int | None = None
    guidance: float | None = None

    def __init__(self, spec: DatasetSpec) -> None:
        self.size = spec.size or 256
        for entry in spec.prompts:  # a small trial case per prompt: refuse what cannot be made
            self._case(entry, spec.seed, 32)

    def _case(self, entry: PromptEntry, seed: int, size: int) -> Any:
        from radsynth.phantoms.cases import make_case_for_labels

        try:
            return make_case_for_labels(seed, entry.labels, size)
        except ValueError as error:
            raise SpecError(
                f"prompt {entry.prompt!r}: the phantoms cannot make it ({error})"
            ) from None

    def make(self, entry: PromptEntry, seed: int) -> MadeImage:
        case = self._case(entry, seed, self.size)
        caption = _caption_with_findings(case.caption, case.labels)
        # What the phantom was drawn as: the SPEC's prompt (its labels), not a random caption.
        provenance = Provenance(model_name=self.model, prompt=entry.prompt, seed=seed)
        return MadeImage(
            pixels=np.clip(case.image.image, 0.0, 1.0).astype(np.float32),
            caption=caption,
            labels=case.labels,
            provenance=provenance,
            pixel_spacing_mm=tuple(case.image.pixel_spacing_mm),
            masks=dict(case.image.masks),
        )


def _caption_with_findings(caption: str, labels: Any) -> str:
    """`caption`, or the labels' canonical caption where it names fewer findings than the image
    shows: the study's template ("An X-ray of the chest") leaves them out, so a data set's
    image with a pleural effusion was captioned without it."""
    from radsynth.vocabulary import canonical_caption, parse_prompt

    if not labels.findings:
        return caption
    try:
        if len(parse_prompt(caption).findings) >= len(labels.findings):
            return caption
    except ValueError:
        pass
    return canonical_caption(labels)


def open_source(spec: DatasetSpec, device: Any = None) -> ImageSource:
    """The image source a SPEC names."""
    if spec.source == "phantoms":
        return PhantomSource(spec)
    return ModelSource(spec, device)
