"""Fréchet distance between two feature sets, each summarised by its mean and covariance.

    FD = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

is the squared 2-Wasserstein distance between the Gaussians N(mu_1, S_1) and N(mu_2, S_2)
(Dowson & Landau 1982), used on network features as the FID by Heusel et al. (NeurIPS 2017).
radsynth computes it on its own reader's features (or the fallback extractor's), so the numbers
are not comparable with published FID values, which use Inception-v3 features.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

__all__ = ["FrechetDistance", "frechet_distance", "frechet_distance_from_stats", "mean_and_cov"]


def mean_and_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), N >= 2, in float64."""
    features = _as_feature_matrix(features, "features")
    if features.shape[0] < 2:
        raise ValueError(
            f"a covariance needs at least 2 feature vectors, got {features.shape[0]}; "
            "give more images"
        )
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (formula in the module doc).

    Numerical care as in the reference FID code: when `scipy.linalg.sqrtm` of sigma1 @ sigma2
    is not finite (near-singular product), `eps` is added to both diagonals and it is retried; a
    small imaginary part from rounding is dropped, a large one is an error. The result is
    clipped at 0, which rounding can undershoot for identical statistics.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size,) * 2:
        raise ValueError(
            f"mismatched statistics: means {mu1.shape} and {mu2.shape}, covariances "
            f"{sigma1.shape} and {sigma2.shape}; both sets need the same feature dimension"
        )
    covmean = _sqrtm_product(sigma1, sigma2, eps)
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    # Singular products (fewer samples than dimensions) are expected; the checks below judge
    # the result instead of scipy's warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return np.asarray(scipy.linalg.sqrtm(matrix))


def _sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> np.ndarray:
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        scale = max(np.abs(covmean).max(), 1.0)
        if np.abs(covmean.imag).max() > 1e-3 * scale:
            raise ValueError(
                "the matrix square root of the covariance product has a large imaginary part; "
                "the covariances are ill-conditioned: use more samples than feature dimensions"
            )
        covmean = covmean.real
    return np.asarray(covmean)


def frechet_distance(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance between two feature sets (N1, D) and (N2, D), each N >= 2."""
    return frechet_distance_from_stats(*mean_and_cov(features1), *mean_and_cov(features2))


def _as_feature_matrix(features: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, dimensions), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return array


class FrechetDistance:
    """Accumulating Fréchet distance: `update(real, fake)` any number of times, then `compute()`.

    Either argument of `update` may be None, so the two sets can arrive separately.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget all features."""
        self._real: list[np.ndarray] = []
        self._fake: list[np.ndarray] = []

    def update(self, real: np.ndarray | None = None, fake: np.ndarray | None = None) -> None:
        """Add feature vectors (N, D) of real and/or generated images."""
        if real is not None:
            self._real.append(_as_feature_matrix(real, "real features"))
        if fake is not None:
            self._fake.append(_as_feature_matrix(fake, "fake features"))

    def compute(self) -> float:
        """The Fréchet distance between everything added so far."""
        if not self._real or not self._fake:
            raise ValueError("FrechetDistance needs real and fake features: call update first")
        return frechet_distance(np.concatenate(self._real), np.concatenate(self._fake))
