"""Precision, recall, density and coverage on sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.metrics import PrecisionRecallDensityCoverage, prdc
from radsynth.evaluate.metrics.prdc import knn_radii


def test_identical_sets():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    for k in (1, 3, 5):
        scores = prdc(x, x, k=k)
        assert scores.precision == scores.recall == scores.coverage == 1.0
        # Every ball holds its centre and its k neighbours: density (k + 1) / k exactly.
        assert scores.density == pytest.approx((k + 1) / k)


def test_independent_samples_of_one_distribution_have_density_near_one():
    rng = np.random.default_rng(1)
    scores = prdc(rng.standard_normal((1500, 2)), rng.standard_normal((1500, 2)), k=5)
    assert scores.density == pytest.approx(1.0, abs=0.1)
    assert scores.precision > 0.9 and scores.recall > 0.9 and scores.coverage > 0.9


def test_disjoint_far_sets_score_zero():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((30, 4))
    fake = rng.standard_normal((30, 4)) + 100.0
    assert prdc(real, fake, k=3).to_dict() == {
        "precision": 0.0,
        "recall": 0.0,
        "density": 0.0,
        "coverage": 0.0,
    }


def test_hand_computed_one_dimensional_example():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0], [11.0]])
    # k = 1: real radii 1, 1, 1, 1; fake radii: 0.5 -> 9.5, 10 -> 1, 11 -> 1.
    assert np.allclose(knn_radii(real, 1), [1, 1, 1, 1])
    assert np.allclose(knn_radii(fake, 1), [9.5, 1, 1])
    scores = prdc(real, fake, k=1)
    assert scores.precision == pytest.approx(1 / 3)  # only 0.5 lies in a real ball
    assert scores.recall == pytest.approx(1.0)  # every real point lies within 9.5 of 0.5
    assert scores.density == pytest.approx(2 / 3)  # 0.5 lies in the balls of 0 and 1
    assert scores.coverage == pytest.approx(2 / 4)  # balls of 0 and 1 hold a fake


def test_hand_computed_two_dimensional_example():
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # radii 1 (k = 1)
    fake = np.array([[0.5, 0.5], [0.0, 3.0]])  # fake radii: both |(0.5, 2.5)| = 2.55
    scores = prdc(real, fake, k=1)
    assert scores.precision == pytest.approx(0.5)  # (0.5, 0.5) is 0.707 from all four
    assert scores.density == pytest.approx(4 / 2)  # inside all four balls, k M = 2
    assert scores.coverage == pytest.approx(1.0)
    assert scores.recall == pytest.approx(1.0)  # all reals within 2.55 of (0.5, 0.5)


def test_the_class_accumulates_and_checks_k():
    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((20, 2)), rng.standard_normal((20, 2)) + 0.5
    metric = PrecisionRecallDensityCoverage(k=3)
    metric.update(real=real[:10], fake=fake)
    metric.update(real=real[10:])
    assert metric.compute() == prdc(real, fake, k=3)
    with pytest.raises(ValueError, match="lower k"):
        prdc(real[:3], fake, k=3)
