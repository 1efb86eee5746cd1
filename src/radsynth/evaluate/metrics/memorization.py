"""Memorization audit: is a generated image a copy of a training image?

Each generated image is compared with every training image in two ways:

- pixels: the normalised (Pearson) correlation over the overlap of the two images, maximised
  over integer shifts of up to `max_shift` px in each direction, so a copy moved by a few pixels
  still scores about 1. For a shift (dy, dx) with overlap O of n pixels,

      ncc = sum_O (a - mean_O a)(b - mean_O b) / sqrt(sum_O (a - mean_O a)^2 sum_O (b - mean_O b)^2)

  (Lewis, "Fast normalized cross-correlation", 1995), for all pairs at once with one matrix
  product per shift;
- features: the cosine similarity of feature vectors (reader or fallback extractor).

An image is flagged as a copy of its nearest training image (by pixels) when either

1. its correlation exceeds a threshold derived from data: the 99th percentile of the
   leave-one-out nearest-neighbour correlations among the training images (how close
   independent images of this data come to each other) plus half the remaining gap to 1
   (`calibrate_threshold`), and never below `PIXEL_FLAG_THRESHOLD` = 0.9999, which is that
   rule applied to 400 random phantom radiographs at 64 px (their nearest-neighbour
   correlation has median 0.9958 and 99th percentile 0.99979: phantoms of one region, view
   and side are nearly the same image at that size). The floor guards small training sets,
   whose own quantile underestimates the null. This rule catches exact and shifted copies;
2. it is the training image plus noise: correlation at least `COPY_MIN_CORRELATION` (0.9, the
   training image explains 81 % of its variance) and the residual after the best shift and a
   gain/offset fit is spatially white, its lag-1 autocorrelation below `WHITE_RESIDUAL_MAX`
   (0.15). For 100 independent phantoms audited against 300 others, the residual to the
   nearest one (different anatomy) has lag-1 autocorrelation 0.24 to 0.93 (median 0.79),
   while copies with Gaussian noise of sd 0.005 to 0.05, shifted or not, stay below 0.07.
   A correlation threshold alone
   cannot separate these: a copy with noise of sd 0.02 correlates 0.991 with its source, less
   than independent phantoms correlate with each other.

`docs/metrics.md` records the experiment. Feature cosine is reported beside it, not flagged on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from radsynth.evaluate.metrics.conditional import Proportion

__all__ = [
    "COPY_MIN_CORRELATION",
    "PIXEL_FLAG_THRESHOLD",
    "WHITE_RESIDUAL_MAX",
    "AuditResult",
    "MemorizationAudit",
    "calibrate_threshold",
    "feature_cosine",
    "memorization_audit",
    "nearest_neighbour_similarity",
    "residual_lag1",
    "shifted_correlation",
]

PIXEL_FLAG_THRESHOLD = 0.9999  # without calibration data; see the module doc
COPY_MIN_CORRELATION = 0.9  # rule 2: the training image explains >= 81 % of the variance
WHITE_RESIDUAL_MAX = 0.15  # rule 2: lag-1 autocorrelation of a noise-only residual
DEFAULT_MAX_SHIFT = 3  # px at the audit resolution (64 px in `radsynth evaluate`)
CALIBRATION_QUERIES = 256  # training images whose nearest neighbour calibrates the threshold


def _shifts(max_shift: int) -> Iterator[tuple[int, int]]:
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            yield dy, dx


def _overlap(images: np.ndarray, dy: int, dx: int, moved: bool) -> np.ndarray:
    """Pixels of `images` (N, H, W) in the overlap when the second image is moved by (dy, dx):
    the first image's pixel (y, x) meets the second's (y + dy, x + dx)."""
    h, w = images.shape[-2:]
    if moved:
        dy, dx = -dy, -dx
    rows = slice(max(0, -dy), h - max(0, dy))
    cols = slice(max(0, -dx), w - max(0, dx))
    return images[:, rows, cols].reshape(images.shape[0], -1)


def _centred(stack: np.ndarray, name: str) -> np.ndarray:
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise ValueError(f"{name} must be images (N, H, W), got shape {stack.shape}")
    # Removing each image's global mean first keeps float32 products accurate; the correlation
    # itself re-centres on every overlap.
    return stack - stack.mean(axis=(1, 2), keepdims=True)


def shifted_correlation(
    queries: np.ndarray, references: np.ndarray, max_shift: int = DEFAULT_MAX_SHIFT
) -> tuple[np.ndarray, np.ndarray]:
    """Best normalised correlation of every query (N, H, W) with every reference (M, H, W).

    Returns (correlation (N, M), shift (N, M, 2)): the maximum over shifts |dy|, |dx| <=
    `max_shift` px, and the (dy, dx) that reaches it. A flat image correlates 0 with anything.
    """
    a, b = _centred(queries, "queries"), _centred(references, "references")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"queries {a.shape[1:]} and references {b.shape[1:]} differ in size")
    if not 0 <= max_shift < min(a.shape[1:]) // 2:
        raise ValueError(f"max_shift must be 0 to under half the image side, got {max_shift}")
    best = np.full((a.shape[0], b.shape[0]), -np.inf)
    best_shift = np.zeros((*best.shape, 2), dtype=int)
    for dy, dx in _shifts(max_shift):
        qa, rb = _overlap(a, dy, dx, moved=False), _overlap(b, dy, dx, moved=True)
        n = qa.shape[1]
        sa, sb = qa.sum(axis=1), rb.sum(axis=1)
        var_a = np.maximum((qa * qa).sum(axis=1) - sa * sa / n, 0.0)
        var_b = np.maximum((rb * rb).sum(axis=1) - sb * sb / n, 0.0)
        dot = (qa.astype(np.float32) @ rb.astype(np.float32).T).astype(np.float64)
        denominator = np.sqrt(var_a[:, None] * var_b[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            ncc = np.where(denominator > 1e-12, (dot - np.outer(sa, sb) / n) / denominator, 0.0)
        better = ncc > best
        best = np.where(better, ncc, best)
        best_shift[better] = (dy, dx)
    return np.clip(best, -1.0, 1.0), best_shift


def feature_cosine(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Cosine similarity (N, M) of feature vectors (N, D) and (M, D); a zero vector gives 0."""
    a, b = np.asarray(queries, np.float64), np.asarray(references, np.float64)
    a_norm = np.linalg.norm(a, axis=1, keepdims=True)
    b_norm = np.linalg.norm(b, axis=1, keepdims=True)
    a = np.divide(a, a_norm, out=np.zeros_like(a), where=a_norm > 0)
    b = np.divide(b, b_norm, out=np.zeros_like(b), where=b_norm > 0)
    return np.clip(a @ b.T, -1.0, 1.0)


def nearest_neighbour_similarity(
    images: np.ndarray,
    max_shift: int = DEFAULT_MAX_SHIFT,
    queries: int | None = CALIBRATION_QUERIES,
    seed: int = 0,
) -> np.ndarray:
    """Leave-one-out nearest-neighbour pixel correlation within one set of images (N, H, W):
    the null distribution of `shifted_correlation` for images that are not copies. At most
    `queries` images (a seeded random subset; None for all) are matched against all the others,
    so the cost grows linearly with N."""
    images = np.asarray(images, dtype=np.float64)
    n = images.shape[0]
    if n < 2:
        raise ValueError("nearest-neighbour similarities need at least 2 images")
    rows = np.arange(n)
    if queries is not None and n > queries:
        rows = np.sort(np.random.default_rng(seed).choice(n, queries, replace=False))
    nearest = np.empty(rows.size)
    for start in range(0, rows.size, 64):
        chunk = rows[start : start + 64]
        corr, _ = shifted_correlation(images[chunk], images, max_shift)
        corr[np.arange(chunk.size), chunk] = -np.inf  # not itself
        nearest[start : start + 64] = corr.max(axis=1)
    return nearest


def calibrate_threshold(
    null_similarities: np.ndarray, quantile: float = 0.99, gap_fraction: float = 0.5
) -> float:
    """Flag threshold from similarities of images known not to be copies: their `quantile`
    plus `gap_fraction` of the gap between it and 1."""
    values = np.asarray(null_similarities, dtype=np.float64)
    if values.size == 0:
        raise ValueError("calibrating a threshold needs at least one similarity")
    high = float(np.quantile(values, quantile))
    return high + gap_fraction * (1.0 - high)


def residual_lag1(query: np.ndarray, reference: np.ndarray, shift: tuple[int, int]) -> float:
    """Lag-1 autocorrelation (mean of the vertical and horizontal ones) of the residual of
    `query` (H, W) after the best gain/offset fit of `reference` moved by `shift` (dy, dx) px,
    over their overlap: about 0 when they differ by white noise only (0 for an exact copy),
    high when they differ in structure."""
    dy, dx = int(shift[0]), int(shift[1])
    a = _overlap(np.asarray(query, np.float64)[None], dy, dx, moved=False)[0]
    b = _overlap(np.asarray(reference, np.float64)[None], dy, dx, moved=True)[0]
    h = query.shape[0] - abs(dy)
    design = np.stack([b, np.ones_like(b)], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, a, rcond=None)
    residual = (a - design @ coefficients).reshape(h, -1)
    residual -= residual.mean()
    energy = float((residual * residual).mean())
    scale = max(float(a.var()), 1e-12)
    if energy <= 1e-10 * scale:
        return 0.0
    vertical = float((residual[1:] * residual[:-1]).mean())
    horizontal = float((residual[:, 1:] * residual[:, :-1]).mean())
    return 0.5 * (vertical + horizontal) / energy


@dataclass(frozen=True)
class AuditResult:
    """Per generated image: nearest training image by pixels (index, correlation, shift, the
    residual's lag-1 autocorrelation) and by features (index, cosine), and the flags."""

    pixel_index: np.ndarray  # (N,) int
    pixel_correlation: np.ndarray  # (N,)
    pixel_shift: np.ndarray  # (N, 2) (dy, dx) px
    residual_lag1: np.ndarray  # (N,)
    feature_index: np.ndarray | None  # (N,) int
    feature_cosine: np.ndarray | None  # (N,)
    threshold: float  # rule 1 correlation threshold
    threshold_source: str  # how it was chosen

    @property
    def near_duplicate(self) -> np.ndarray:
        """Rule 1: correlation above the threshold."""
        return self.pixel_correlation > self.threshold

    @property
    def noisy_copy(self) -> np.ndarray:
        """Rule 2: highly correlated and differing only by white noise."""
        return (self.pixel_correlation >= COPY_MIN_CORRELATION) & (
            self.residual_lag1 < WHITE_RESIDUAL_MAX
        )

    @property
    def flagged(self) -> np.ndarray:
        """Either rule."""
        return self.near_duplicate | self.noisy_copy

    def summary(
        self,
        names: Sequence[str] | None = None,
        train_names: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Counts, flag rate with its Wilson interval, and the flagged images.

        Each flagged entry gives the generated image's and its nearest training image's
        positions (`image`, `nearest_train`) and, when `names` and `train_names` (file names,
        one per image, in the order audited) are given, their names (`image_file`,
        `nearest_train_file`): positions alone shift when unreadable files are skipped."""
        n = int(self.pixel_correlation.size)
        if names is not None and len(names) != n:
            raise ValueError(f"{len(names)} names for {n} generated images")
        if train_names is not None and len(train_names) <= int(self.pixel_index.max(initial=-1)):
            raise ValueError(f"{len(train_names)} training names are too few for the audit")
        flagged = np.flatnonzero(self.flagged)
        cosine = self.feature_cosine
        return {
            "n": n,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "copy_min_correlation": COPY_MIN_CORRELATION,
            "white_residual_max": WHITE_RESIDUAL_MAX,
            "flagged": int(flagged.size),
            "flag_rate": Proportion.of(int(flagged.size), n).to_dict() if n else None,
            "near_duplicates": int(self.near_duplicate.sum()),
            "noisy_copies": int(self.noisy_copy.sum()),
            "max_pixel_correlation": float(self.pixel_correlation.max()) if n else None,
            "median_pixel_correlation": float(np.median(self.pixel_correlation)) if n else None,
            "max_feature_cosine": float(cosine.max()) if cosine is not None and n else None,
            "flagged_images": [self._flagged_entry(int(i), names, train_names) for i in flagged],
        }

    def _flagged_entry(
        self, i: int, names: Sequence[str] | None, train_names: Sequence[str] | None
    ) -> dict[str, Any]:
        nearest = int(self.pixel_index[i])
        entry: dict[str, Any] = {"image": i, "nearest_train": nearest}
        if names is not None:
            entry["image_file"] = names[i]
        if train_names is not None:
            entry["nearest_train_file"] = train_names[nearest]
        return entry | {
            "pixel_correlation": float(self.pixel_correlation[i]),
            "shift_px": [int(v) for v in self.pixel_shift[i]],
            "residual_lag1": float(self.residual_lag1[i]),
        }


def _nearest_by_pixels(
    generated: np.ndarray, train: np.ndarray, max_shift: int, chunk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    best = np.full(len(generated), -np.inf)
    index = np.zeros(len(generated), dtype=int)
    shift = np.zeros((len(generated), 2), dtype=int)
    rows = np.arange(len(generated))
    for start in range(0, train.shape[0], chunk):
        corr, shifts = shifted_correlation(generated, train[start : start + chunk], max_shift)
        column = corr.argmax(axis=1)
        value = corr[rows, column]
        better = value > best
        best[better] = value[better]
        index[better] = start + column[better]
        shift[better] = shifts[rows, column][better]
    return index, best, shift


def memorization_audit(
    generated: np.ndarray,
    train: np.ndarray,
    generated_features: np.ndarray | None = None,
    train_features: np.ndarray | None = None,
    threshold: float | None = None,
    max_shift: int = DEFAULT_MAX_SHIFT,
    chunk: int = 512,
) -> AuditResult:
    """Nearest training image of each generated image (N, H, W) among `train` (M, H, W), by
    shifted pixel correlation and, when features are given, by feature cosine; flags by the
    two rules of the module doc. `threshold=None` calibrates rule 1 on `train`, never below
    PIXEL_FLAG_THRESHOLD (a small training set underestimates how close independent images
    come: 12 phantoms give 0.985, while an independent phantom can reach 0.996)."""
    generated = np.asarray(generated, dtype=np.float64)
    train = np.asarray(train, dtype=np.float64)
    if generated.ndim == 2:
        generated = generated[None]
    if threshold is not None:
        source = "given"
    elif train.shape[0] >= 2:
        null = nearest_neighbour_similarity(train, max_shift)
        threshold = max(calibrate_threshold(null), PIXEL_FLAG_THRESHOLD)
        source = (
            f"calibrated on {null.size} training images: 99th percentile "
            f"{np.quantile(null, 0.99):.5f} of their nearest-neighbour correlation "
            f"plus half the gap to 1, at least {PIXEL_FLAG_THRESHOLD}"
        )
    else:
        threshold, source = PIXEL_FLAG_THRESHOLD, "default (phantom experiment)"
    index, best, shift = _nearest_by_pixels(generated, train, max_shift, chunk)
    lag1 = np.array(
        [residual_lag1(g, train[i], s) for g, i, s in zip(generated, index, shift, strict=True)]
    )
    feature_index = feature_value = None
    if generated_features is not None and train_features is not None:
        cosine = feature_cosine(generated_features, train_features)
        feature_index = cosine.argmax(axis=1)
        feature_value = cosine[np.arange(cosine.shape[0]), feature_index]
    return AuditResult(
        index, best, shift, lag1, feature_index, feature_value, float(threshold), source
    )


class MemorizationAudit:
    """Accumulating audit against a fixed training set: `update(images, features)` with
    generated images (and optionally their features), then `compute()` -> `AuditResult`."""

    def __init__(
        self,
        train: np.ndarray,
        train_features: np.ndarray | None = None,
        threshold: float | None = None,
        max_shift: int = DEFAULT_MAX_SHIFT,
    ) -> None:
        self.train = np.asarray(train, dtype=np.float64)
        self.train_features = train_features
        self.threshold = threshold  # None: calibrated on the training images
        self.max_shift = max_shift
        self.reset()

    def reset(self) -> None:
        """Forget all generated images."""
        self._images: list[np.ndarray] = []
        self._features: list[np.ndarray] = []

    def update(self, images: np.ndarray, features: np.ndarray | None = None) -> None:
        """Add generated images (N, H, W) and, with training features, their features (N, D)."""
        images = np.asarray(images, dtype=np.float64)
        self._images.append(images[None] if images.ndim == 2 else images)
        if features is not None:
            self._features.append(np.asarray(features, dtype=np.float64))

    def compute(self) -> AuditResult:
        """Audit everything added so far."""
        if not self._images:
            raise ValueError("MemorizationAudit has no images: call update first")
        features = np.concatenate(self._features) if self._features else None
        return memorization_audit(
            np.concatenate(self._images),
            self.train,
            features,
            self.train_features if features is not None else None,
            self.threshold,
            self.max_shift,
        )
