"""Fréchet distance: closed forms on Gaussians and an independent eigenvalue computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from radsynth.evaluate.metrics import FrechetDistance, frechet_distance, frechet_distance_from_stats
from radsynth.evaluate.metrics.frechet import mean_and_cov


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _fd_by_eigenvalues(mu1, s1, mu2, s2) -> float:
    """Tr((S1 S2)^1/2) = sum of sqrt(eigenvalues of S1^1/2 S2 S1^1/2), a symmetric matrix."""
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1.T)
    trace_root = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_root)


def test_diagonal_covariances_match_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert expected == pytest.approx(5.0 + 4.0 + 1.0)
    value = frechet_distance_from_stats(mu1, np.diag(var1), mu2, np.diag(var2))
    assert value == pytest.approx(expected, rel=1e-10)


def test_one_dimensional_gaussians():
    # 1-D: FD = (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s.
    assert frechet_distance_from_stats([2.0], [[4.0]], [-1.0], [[1.0]]) == pytest.approx(10.0)


def test_random_covariances_agree_with_the_eigenvalue_route():
    rng = np.random.default_rng(0)
    for d in (2, 5, 16):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        expected = _fd_by_eigenvalues(mu1, s1, mu2, s2)
        assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_identical_sets_give_zero_and_the_distance_is_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((50, 4)), rng.standard_normal((60, 4)) + 0.5
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)


def test_samples_converge_to_the_population_value():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((20000, 2))
    b = rng.standard_normal((20000, 2)) * np.array([2.0, 1.0]) + np.array([1.0, 0.0])
    # Population: |mu|^2 = 1, (2 - 1)^2 = 1 on the first axis.
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=0.05)


def test_singular_covariances_are_handled():
    rng = np.random.default_rng(3)
    # Fewer samples than dimensions: both covariances are singular.
    a, b = rng.standard_normal((5, 20)), rng.standard_normal((5, 20))
    value = frechet_distance(a, b)
    mu1, s1 = mean_and_cov(a)
    mu2, s2 = mean_and_cov(b)
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(_fd_by_eigenvalues(mu1, s1, mu2, s2), rel=1e-3)
    assert np.isfinite(scipy.linalg.sqrtm(s1 @ s2)).all()


def test_the_class_accumulates_batches():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((40, 3)), rng.standard_normal((30, 3)) + 1.0
    metric = FrechetDistance()
    metric.update(real=a[:20])
    metric.update(real=a[20:], fake=b[:10])
    metric.update(fake=b[10:])
    assert metric.compute() == pytest.approx(frechet_distance(a, b), rel=1e-12)
    metric.reset()
    with pytest.raises(ValueError, match="call update"):
        metric.compute()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="same feature dimension"):
        frechet_distance(np.random.default_rng(0).random((4, 3)), np.ones((4, 2)))
