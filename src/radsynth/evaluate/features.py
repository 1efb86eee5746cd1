"""Feature extractors for distribution metrics (Fréchet distance, precision/recall, ...).

No downloadable feature network (Inception-v3 for FID, DINOv2, CLIP) is available offline, so
radsynth's distribution metrics use its own reader model's penultimate features when
`radsynth.evaluate.reader.load_reader()` exists and loads, and otherwise `HandcraftedFeatures`,
a deterministic extractor without learned parameters. Either way the numbers are comparable
only with numbers from the same extractor, never with published FID values; `scores.json` names
the extractor that was used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "FeatureExtractor",
    "HandcraftedFeatures",
    "default_feature_extractor",
    "extractor_name",
]


@runtime_checkable
class FeatureExtractor(Protocol):
    """Anything that maps images (B, H, W), float in [0, 1], to feature vectors (B, D)."""

    def features(self, images: np.ndarray) -> np.ndarray: ...


def _block_means(images: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping factor x factor blocks of (B, H, W) (edges that do not fill a
    block are dropped)."""
    b, h, w = images.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = images[:, :h, :w].reshape(b, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(2, 4))


def _resize_to(images: np.ndarray, side: int) -> np.ndarray:
    """Area-resize (B, H, W) to (B, side, side) by block means after a nearest-neighbour
    stretch to a multiple of `side` (exact block means when H and W are multiples)."""
    b, h, w = images.shape
    factor_h, factor_w = max(1, -(-h // side)), max(1, -(-w // side))
    rows = (np.arange(side * factor_h) * h) // (side * factor_h)
    cols = (np.arange(side * factor_w) * w) // (side * factor_w)
    stretched = images[:, rows][:, :, cols]
    return stretched.reshape(b, side, factor_h, side, factor_w).mean(axis=(2, 4))


@dataclass(frozen=True)
class HandcraftedFeatures:
    """Deterministic features with no learned parameters, for when no reader model is shipped.

    For each image, at scales 1, 1/2 and 1/4 (2x2 block means): a `bins`-bin intensity
    histogram over [0, 1] (fractions of pixels) and gradient statistics (mean and standard
    deviation of the central-difference gradient magnitude, and an 8-bin histogram of gradient
    orientation weighted by magnitude, as fractions); plus the image area-resized to
    `thumbnail` x `thumbnail` pixels. Each of these blocks is divided by the square root of its
    length, so that each carries similar weight in Euclidean distances. D = 3 (bins + 10) +
    thumbnail^2 (142 with the defaults).
    """

    bins: int = 16  # intensity histogram bins per scale
    thumbnail: int = 8  # side of the downsampled image in the feature vector
    name: str = "handcrafted-v1"

    def features(self, images: np.ndarray) -> np.ndarray:
        """Features (B, D) of images (B, H, W) in [0, 1]; float64."""
        images = np.asarray(images, dtype=np.float64)
        if images.ndim != 3 or min(images.shape[1:]) < 4 * self.thumbnail:
            raise ValueError(
                f"HandcraftedFeatures takes images (B, H, W) of at least {4 * self.thumbnail} px "
                f"a side, got shape {images.shape}"
            )
        blocks = []
        scaled = np.clip(images, 0.0, 1.0)
        for _ in range(3):
            blocks.append(self._histogram(scaled))
            blocks.append(self._gradient_statistics(scaled))
            scaled = _block_means(scaled, 2)
        blocks.append(_resize_to(images, self.thumbnail).reshape(len(images), -1))
        return np.concatenate([b / np.sqrt(b.shape[1]) for b in blocks], axis=1)

    def _histogram(self, images: np.ndarray) -> np.ndarray:
        index = np.minimum((images * self.bins).astype(int), self.bins - 1)
        counts = np.stack([np.bincount(i.ravel(), minlength=self.bins) for i in index])
        return counts / index[0].size

    @staticmethod
    def _gradient_statistics(images: np.ndarray) -> np.ndarray:
        gy, gx = np.gradient(images, axis=(1, 2))
        magnitude = np.hypot(gx, gy)
        angle = np.mod(np.arctan2(gy, gx), np.pi)  # orientation, sign-free
        sector = np.minimum((angle / np.pi * 8).astype(int), 7)
        weights = np.stack(
            [
                np.bincount(s.ravel(), m.ravel(), minlength=8)
                for s, m in zip(sector, magnitude, strict=True)
            ]
        )
        total = weights.sum(axis=1, keepdims=True)
        orientation = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
        flat = magnitude.reshape(len(images), -1)
        return np.concatenate([flat.mean(1)[:, None], flat.std(1)[:, None], orientation], axis=1)


def extractor_name(extractor: FeatureExtractor) -> str:
    """A readable name: the extractor's `name` attribute, else its class name."""
    return str(getattr(extractor, "name", type(extractor).__name__))


def default_feature_extractor() -> tuple[FeatureExtractor, dict[str, str]]:
    """The shipped reader's features when `radsynth.evaluate.reader.load_reader()` works, else
    `HandcraftedFeatures()`; with a description {"name", "kind", "note"} for reports."""
    try:
        reader_module = importlib.import_module("radsynth.evaluate.reader")
        load_reader = reader_module.load_reader
    except (ImportError, AttributeError):
        reason = "radsynth.evaluate.reader.load_reader is not available"
    else:
        try:
            reader = load_reader()
        except Exception as error:  # a missing or broken model must not stop the metrics
            reason = f"load_reader() failed: {type(error).__name__}: {error}"
        else:
            if isinstance(reader, FeatureExtractor):
                return reader, {
                    "name": extractor_name(reader),
                    "kind": "reader",
                    "note": "penultimate features of radsynth's reader model",
                }
            reason = "the loaded reader has no features(images) method"
    fallback = HandcraftedFeatures()
    return fallback, {
        "name": fallback.name,
        "kind": "handcrafted",
        "note": f"fallback ({reason}): intensity histograms and gradient statistics at three "
        "scales and an 8x8 thumbnail; not comparable with published FID values",
    }
