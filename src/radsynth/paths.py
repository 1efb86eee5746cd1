"""Where radsynth's shipped files live (no heavy imports: the command line reads this early)."""

from __future__ import annotations

from pathlib import Path

# The built-in diffusion model, in diffusers' folder layout (fp16 safetensors).
BUILTIN_MODEL = Path(__file__).resolve().parent / "models" / "builtin"
