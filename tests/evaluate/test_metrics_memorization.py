"""Memorization audit: planted copies of phantom training images are found, independent
phantoms are not flagged."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.metrics import (
    MemorizationAudit,
    calibrate_threshold,
    feature_cosine,
    memorization_audit,
    shifted_correlation,
)
from radsynth.evaluate.metrics.memorization import residual_lag1
from radsynth.phantoms.cases import make_case


def _phantoms(seeds) -> np.ndarray:
    return np.stack([make_case(s, modality="xray", size=64).image.image for s in seeds])


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    return _phantoms(range(12)).astype(np.float64)


@pytest.fixture(scope="module")
def independent() -> np.ndarray:
    return _phantoms(range(100, 106)).astype(np.float64)


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`image` moved by (dy, dx) px, the uncovered border filled by edge replication."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(image, pad, mode="edge")
    h, w = image.shape
    return padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def test_shifted_correlation_finds_the_shift():
    rng = np.random.default_rng(0)
    image = rng.random((40, 40))
    moved = _shifted(image, 2, -3)
    corr, shift = shifted_correlation(moved[None], image[None], max_shift=3)
    assert corr[0, 0] == pytest.approx(1.0)
    # moved(y, x) = image(y - 2, x + 3): the reference is read at (y + dy, x + dx).
    assert tuple(shift[0, 0]) == (-2, 3)
    unrelated, _ = shifted_correlation(rng.random((1, 40, 40)), image[None], max_shift=3)
    assert abs(unrelated[0, 0]) < 0.1


def test_flat_images_and_bad_shapes():
    corr, _ = shifted_correlation(
        np.ones((1, 16, 16)), np.random.default_rng(1).random((2, 16, 16))
    )
    assert np.all(corr == 0)
    with pytest.raises(ValueError, match="differ in size"):
        shifted_correlation(np.zeros((1, 16, 16)), np.zeros((1, 16, 17)))


def test_feature_cosine_known_values():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [0.0, -3.0]])
    expected = [[1.0, 0.0], [np.sqrt(0.5), -np.sqrt(0.5)], [0.0, 0.0]]
    assert np.allclose(feature_cosine(a, b), expected)


def test_calibrated_threshold_is_a_quantile_plus_half_the_gap():
    assert calibrate_threshold(np.full(100, 0.8)) == pytest.approx(0.9)
    values = np.linspace(0.0, 0.99, 100)  # 99th percentile 0.9801
    assert calibrate_threshold(values) == pytest.approx(0.9801 + 0.5 * 0.0199)


def test_residual_of_noise_is_white_and_of_anatomy_is_not(train):
    rng = np.random.default_rng(2)
    noisy = np.clip(train[0] + rng.normal(0, 0.02, train[0].shape), 0, 1)
    assert abs(residual_lag1(noisy, train[0], (0, 0))) < 0.1
    assert residual_lag1(train[0], train[0], (0, 0)) == 0.0
    assert residual_lag1(train[1], train[0], (0, 0)) > 0.3


def test_planted_copies_are_found_and_independent_phantoms_are_not_flagged(train, independent):
    rng = np.random.default_rng(3)
    planted = {
        0: train[0],  # exact copy
        3: _shifted(train[3], 3, -2),  # moved by 3 and 2 px
        5: np.clip(train[5] + rng.normal(0, 0.02, train[5].shape), 0, 1),  # noise sd 0.02
        7: np.clip(_shifted(train[7], -2, 1) + rng.normal(0, 0.01, (64, 64)), 0, 1),
        9: np.clip(train[9] + rng.normal(0, 0.05, train[9].shape), 0, 1),  # noise sd 0.05
    }
    generated = np.concatenate([np.stack(list(planted.values())), independent])
    result = memorization_audit(generated, train)
    assert "calibrated on 12 training images" in result.threshold_source
    n = len(planted)
    assert result.flagged[:n].all(), result.summary()
    assert list(result.pixel_index[:n]) == list(planted)
    assert tuple(result.pixel_shift[1]) == (-3, 2)
    assert not result.flagged[n:].any(), result.summary()
    summary = result.summary()
    assert summary["flagged"] == n and summary["near_duplicates"] >= 2
    assert [f["nearest_train"] for f in summary["flagged_images"]] == list(planted)


def test_the_class_reports_feature_neighbours(train):
    features = train.reshape(len(train), -1)[:, ::16]
    audit = MemorizationAudit(train, train_features=features, threshold=0.99)
    audit.update(train[4], features[4:5])
    audit.update(train[[2, 6]], features[[2, 6]])
    result = audit.compute()
    assert list(result.feature_index) == [4, 2, 6]
    assert result.feature_cosine == pytest.approx([1.0, 1.0, 1.0])
    assert result.threshold_source == "given" and result.flagged.all()


def test_flagged_images_are_named_by_file_beside_their_positions(train, independent):
    generated = np.concatenate([independent[:2], train[7:8]])
    result = memorization_audit(generated, train)
    names = ["a.png", "b.png", "sub/copied.png"]
    train_names = [f"train/{i:02d}.dcm" for i in range(len(train))]
    flagged = result.summary(names=names, train_names=train_names)["flagged_images"]
    assert [(f["image"], f["image_file"]) for f in flagged] == [(2, "sub/copied.png")]
    assert (flagged[0]["nearest_train"], flagged[0]["nearest_train_file"]) == (7, "train/07.dcm")
    # Without names the entries keep the keys they always had.
    assert "image_file" not in result.summary()["flagged_images"][0]
    with pytest.raises(ValueError, match="2 names for 3 generated images"):
        result.summary(names=names[:2])
