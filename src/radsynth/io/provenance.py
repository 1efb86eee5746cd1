"""Where a synthetic image came from: the model, its weights, the prompt and the sampler settings.

A `Provenance` travels with every image radsynth generates. The DICOM writer records it in
standard attributes (see `radsynth.io.dicom_writer`); `png_text_chunks` turns it into the PNG
text chunks radsynth writes, and `Provenance.from_png_text` reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import radsynth

# The PNG text key that carries pixel spacing, as "ROW_MM COLUMN_MM".
PNG_SPACING_KEY = "pixel_spacing_mm"


def _radsynth_version() -> str:
    return radsynth.__version__


@dataclass(frozen=True)
class Provenance:
    """How one synthetic image was made."""

    model_name: str  # model preset or folder name, e.g. "radsynth-xray-small"
    weights_sha256: str | None = None  # SHA-256 hex digest of the weights file(s)
    prompt: str = ""  # the text prompt as the user gave it
    seed: int | None = None  # random seed of the sampler
    num_inference_steps: int | None = None  # denoising steps
    guidance_scale: float | None = None  # classifier-free guidance scale
    # Guidance ran only at timesteps t >= guidance_cutoff * T (0: at every step); with the
    # steps, scale, seed and weights, what remakes the image exactly.
    guidance_cutoff: float | None = None
    # How the input was processed around the model, e.g. the --fit plan:
    # "1841x1955 px worked at 241x256 (model canvas 256x256)".
    processing: str | None = None
    # What was done ("generate", "inpaint", "outpaint", "edit") and with what: the input
    # image's and mask's file names and SHA-256, the box, the strength, the extensions, the
    # layout prompt; with the fields above, all it takes to remake the image.
    operation: str | None = None
    inputs: dict[str, Any] | None = None
    radsynth_version: str = field(default_factory=_radsynth_version)

    def __post_init__(self) -> None:
        if not self.model_name.strip():
            raise ValueError("Provenance needs a model_name (the preset or folder of the model)")
        digest = self.weights_sha256
        if digest is not None and (
            len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(
                "weights_sha256 must be a 64-character lower-case hex SHA-256 digest, "
                f"got {digest!r}; compute it with hashlib.sha256(data).hexdigest()"
            )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dictionary."""
        return asdict(self)

    def to_json(self) -> str:
        """The fields as compact JSON with sorted keys."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        """Rebuild from `to_dict` output; unknown keys are ignored."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def summary(self) -> str:
        """One line for humans: model, weights, seed, steps, guidance, its cutoff and version."""
        parts = [f"model {self.model_name}"]
        if self.weights_sha256:
            parts.append(f"weights sha256 {self.weights_sha256}")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        if self.num_inference_steps is not None:
            parts.append(f"{self.num_inference_steps} steps")
        if self.guidance_scale is not None:
            guidance = f"guidance {self.guidance_scale:g}"
            if self.guidance_cutoff:
                guidance += f" at t >= {self.guidance_cutoff:g} T"
            parts.append(guidance)
        if self.processing:
            parts.append(self.processing)
        if self.operation:
            given = json.dumps(self.inputs, sort_keys=True) if self.inputs else ""
            parts.append(f"{self.operation} {given}".strip())
        parts.append(f"radsynth {self.radsynth_version}")
        return ", ".join(parts)

    @classmethod
    def from_png_text(cls, text: Mapping[str, str]) -> Provenance:
        """Read back the chunks written by `png_text_chunks`."""
        if "provenance" not in text:
            raise ValueError("these PNG text chunks carry no radsynth provenance")
        return cls.from_dict(json.loads(text["provenance"]))


def format_spacing_text(pixel_spacing_mm: tuple[float, float]) -> str:
    """Pixel spacing (row, column) in mm as the PNG text value "ROW COLUMN"."""
    return f"{float(pixel_spacing_mm[0]):.6g} {float(pixel_spacing_mm[1]):.6g}"


def parse_spacing_text(value: str) -> tuple[float, float] | None:
    """Parse a "ROW COLUMN" spacing text in mm; None when it is not two positive numbers."""
    try:
        numbers = [float(part) for part in value.replace("\\", " ").split()]
    except ValueError:
        return None
    if len(numbers) != 2 or not all(n > 0 for n in numbers):
        return None
    return (numbers[0], numbers[1])


def png_text_chunks(
    provenance: Provenance,
    *,
    pixel_spacing_mm: tuple[float, float] | None = None,
    caption: str | None = None,
) -> dict[str, str]:
    """PNG text chunks that mark an image as synthetic and record how it was made.

    Keys: the PNG standard's Software ("radsynth"), Source (the model), Description (the
    caption, or the prompt) and Comment; then Synthetic=YES, prompt, seed, model,
    weights_sha256, num_inference_steps, guidance_scale, guidance_cutoff, radsynth_version,
    provenance (all of it as JSON) and, when known, pixel_spacing_mm. Pass the result to
    `write_png`.
    """
    chunks: dict[str, str] = {
        "Software": "radsynth",
        "Source": provenance.model_name,
        "Description": caption if caption is not None else provenance.prompt,
        "Comment": f"Synthetic image generated by radsynth: {provenance.summary()}",
        "Synthetic": "YES",
        "prompt": provenance.prompt,
        "model": provenance.model_name,
        "radsynth_version": provenance.radsynth_version,
        "provenance": provenance.to_json(),
    }
    optional = {
        "seed": provenance.seed,
        "weights_sha256": provenance.weights_sha256,
        "num_inference_steps": provenance.num_inference_steps,
        "guidance_scale": provenance.guidance_scale,
        "guidance_cutoff": provenance.guidance_cutoff,
    }
    chunks.update({key: str(value) for key, value in optional.items() if value is not None})
    if pixel_spacing_mm is not None:
        chunks[PNG_SPACING_KEY] = format_spacing_text(pixel_spacing_mm)
    return chunks
