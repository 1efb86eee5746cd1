"""Feature extractors: the fallback is deterministic and parameter-free; the default falls back
cleanly when no reader model loads."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from radsynth.evaluate.features import (
    FeatureExtractor,
    HandcraftedFeatures,
    default_feature_extractor,
    extractor_name,
)


def test_handcrafted_features_shape_determinism_and_known_blocks():
    rng = np.random.default_rng(0)
    images = rng.random((3, 64, 48))
    extractor = HandcraftedFeatures()
    assert isinstance(extractor, FeatureExtractor)
    features = extractor.features(images)
    assert features.shape == (3, 3 * (16 + 10) + 64)
    assert np.array_equal(features, extractor.features(images.copy()))
    # A flat image: one full histogram bin per scale, no gradient, a flat thumbnail.
    flat = extractor.features(np.full((1, 64, 64), 0.5))[0]
    histogram = flat[:16] * 4  # the block is divided by sqrt(16)
    assert histogram[8] == pytest.approx(1.0) and histogram.sum() == pytest.approx(1.0)
    assert np.allclose(flat[16:26], 0.0)
    assert np.allclose(flat[-64:] * 8, 0.5)
    # Different images, different features.
    assert not np.allclose(features[0], features[1])


def test_handcrafted_features_refuse_tiny_images():
    with pytest.raises(ValueError, match="at least 32 px"):
        HandcraftedFeatures().features(np.zeros((1, 16, 16)))


def test_default_uses_the_reader_when_it_loads(monkeypatch):
    class FakeReader:
        name = "fake-reader"

        def features(self, images):
            return np.zeros((len(images), 4))

    module = types.ModuleType("radsynth.evaluate.reader")
    module.load_reader = FakeReader  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "radsynth.evaluate.reader", module)
    extractor, info = default_feature_extractor()
    assert info["kind"] == "reader" and info["name"] == "fake-reader"
    assert extractor_name(extractor) == "fake-reader"


def test_default_falls_back_and_says_why(monkeypatch):
    def broken():
        raise FileNotFoundError("no weights")

    module = types.ModuleType("radsynth.evaluate.reader")
    module.load_reader = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "radsynth.evaluate.reader", module)
    extractor, info = default_feature_extractor()
    assert isinstance(extractor, HandcraftedFeatures)
    assert info["kind"] == "handcrafted" and "no weights" in info["note"]
