"""The common result of every phantom renderer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class PhantomImage:
    """A rendered phantom image.

    image: float32 (H, W) in [0, 1], in display orientation (bright = white on screen).
    masks: one boolean (H, W) array per named structure or finding that is visible in the image;
        masks may overlap (a projection shows bones on top of each other).
    pixel_spacing_mm: (row spacing, column spacing) in millimetres.
    meta: renderer-specific facts (window, sequence parameters, field of view in body coordinates).
    """

    image: np.ndarray
    masks: dict[str, np.ndarray]
    pixel_spacing_mm: tuple[float, float]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image.ndim != 2:
            raise ValueError(f"a phantom image is 2-D, got shape {self.image.shape}")
        for name, mask in self.masks.items():
            if mask.shape != self.image.shape or mask.dtype != np.bool_:
                raise ValueError(
                    f"mask {name!r} must be a boolean array of shape {self.image.shape}, "
                    f"got {mask.dtype} {mask.shape}"
                )

    def to_uint16(self) -> np.ndarray:
        """The image as 16-bit integers (0..65535)."""
        return np.round(np.clip(self.image, 0.0, 1.0) * 65535.0).astype(np.uint16)

    def to_uint8(self) -> np.ndarray:
        """The image as 8-bit integers (0..255) for display."""
        return np.round(np.clip(self.image, 0.0, 1.0) * 255.0).astype(np.uint8)
