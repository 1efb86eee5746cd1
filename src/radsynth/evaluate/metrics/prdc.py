"""Precision, recall, density and coverage of generated features against real ones.

From Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for Generative Models"
(ICML 2020), with k-nearest-neighbour balls. For real features X_1..X_N and fake Y_1..Y_M, let
r_i be the distance from X_i to its k-th nearest other real sample, and r'_j the same among fakes:

    precision = 1/M  sum_j 1[exists i: |Y_j - X_i| <= r_i]       (fakes inside the real manifold)
    recall    = 1/N  sum_i 1[exists j: |X_i - Y_j| <= r'_j]      (reals inside the fake manifold)
    density   = 1/(kM) sum_j sum_i 1[|Y_j - X_i| <= r_i]          (how many real balls hold a fake)
    coverage  = 1/N  sum_i 1[min_j |X_i - Y_j| <= r_i]           (real balls that hold some fake)

Precision, recall and coverage lie in [0, 1]; density is unbounded, about 1 when both sets are
independent samples of one distribution. For two identical sets (without tied distances) every
ball X_i holds exactly k + 1 points (itself and its k neighbours), so density = (k + 1) / k.
Distances are Euclidean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["PRDC", "PrecisionRecallDensityCoverage", "knn_radii", "prdc"]


@dataclass(frozen=True)
class PRDC:
    """The four scores (see the module doc for the formulas)."""

    precision: float
    recall: float
    density: float
    coverage: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of `features` (N, D) to its k-th nearest other row, shape (N,)."""
    if not 1 <= k < features.shape[0]:
        raise ValueError(
            f"k-nearest-neighbour radii need 1 <= k < number of samples; got k={k} for "
            f"{features.shape[0]} samples: lower k or give more images"
        )
    distances = cdist(features, features)
    # Column 0 of the sorted rows is each point's zero distance to itself.
    return np.sort(distances, axis=1)[:, k]


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> PRDC:
    """Precision, recall, density and coverage of `fake` (M, D) against `real` (N, D)."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake features must be (samples, dimensions) with the same dimension; "
            f"got {real.shape} and {fake.shape}"
        )
    real_radii = knn_radii(real, k)
    fake_radii = knn_radii(fake, k)
    distances = cdist(real, fake)  # (N, M)
    inside_real = distances <= real_radii[:, None]  # fake j inside real ball i
    inside_fake = distances <= fake_radii[None, :]  # real i inside fake ball j
    return PRDC(
        precision=float(inside_real.any(axis=0).mean()),
        recall=float(inside_fake.any(axis=1).mean()),
        density=float(inside_real.sum() / (k * fake.shape[0])),
        coverage=float((distances.min(axis=1) <= real_radii).mean()),
    )


class PrecisionRecallDensityCoverage:
    """Accumulating PRDC: `update(real, fake)` any number of times, then `compute()`."""

    def __init__(self, k: int = 5) -> None:
        self.k = k  # neighbours defining each ball; Naeem et al. use k = 5
        self.reset()

    def reset(self) -> None:
        """Forget all features."""
        self._real: list[np.ndarray] = []
        self._fake: list[np.ndarray] = []

    def update(self, real: np.ndarray | None = None, fake: np.ndarray | None = None) -> None:
        """Add feature vectors (N, D) of real and/or generated images."""
        if real is not None:
            self._real.append(np.asarray(real, dtype=np.float64))
        if fake is not None:
            self._fake.append(np.asarray(fake, dtype=np.float64))

    def compute(self) -> PRDC:
        """The four scores over everything added so far."""
        if not self._real or not self._fake:
            raise ValueError("PRDC needs real and fake features: call update first")
        return prdc(np.concatenate(self._real), np.concatenate(self._fake), self.k)
