"""Radiograph physics: determinism, crops of one detector plane, contrast, views, errors."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.phantoms.body import draw_subject, make_body
from radsynth.phantoms.xray import region_centre, region_settings, render_window, render_xray


@pytest.fixture(scope="module")
def body():
    rng = np.random.default_rng(21)
    return make_body(draw_subject(rng, sex="male", age=45), rng)


def test_same_seed_same_image(body):
    a = render_xray(body, "chest", "pa", None, np.random.default_rng(5), 96)
    b = render_xray(body, "chest", "pa", None, np.random.default_rng(5), 96)
    c = render_xray(body, "chest", "pa", None, np.random.default_rng(6), 96)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


def test_regional_image_is_a_crop_of_a_larger_window(body):
    settings = region_settings(body, "knee", "ap", "left", 96, noise_seed=3)
    centre = region_centre(body, "knee", "left")
    small = render_window(body, settings, centre, (96, 96))
    big = render_window(body, settings, centre + np.array([0.0, 0.0, 60.0]), (200, 160))
    r0, c0 = np.array(small.meta["lattice_origin"]) - np.array(big.meta["lattice_origin"])
    crop = big.image[r0 : r0 + 96, c0 : c0 + 96]
    np.testing.assert_allclose(small.image, crop, atol=1e-6)
    for name in ("left_femur", "left_tibia"):
        np.testing.assert_array_equal(
            small.masks[name], big.masks[name][r0 : r0 + 96, c0 : c0 + 96]
        )


def test_masks_align_with_bright_bone_and_dark_lung(body):
    chest = render_xray(body, "chest", "pa", None, np.random.default_rng(0), 128, marker=False)
    lung = chest.masks["right_lung"] & ~chest.masks["heart"]
    assert chest.image[lung].mean() < chest.image[chest.masks["heart"]].mean()
    knee = render_xray(body, "knee", "ap", "right", np.random.default_rng(0), 128, marker=False)
    soft = (
        knee.masks["body"]
        & ~knee.masks["right_femur"]
        & ~knee.masks["right_tibia"]
        & ~knee.masks["right_fibula"]
        & ~knee.masks["right_patella"]
    )
    assert knee.image[knee.masks["right_femur"]].mean() > knee.image[soft].mean() + 0.1
    assert knee.image[~knee.masks["body"]].mean() < 0.1  # air is black


def test_lateral_knee_leaves_the_other_leg_out(body):
    lateral = render_xray(body, "knee", "lateral", "left", np.random.default_rng(0), 96)
    assert "left_femur" in lateral.masks and "right_femur" not in lateral.masks


def test_side_marker_is_burned_in_with_its_mask(body):
    image = render_xray(body, "knee", "ap", "right", np.random.default_rng(0), 128)
    marker = image.masks["side_marker"]
    assert image.meta["side_marker"] == "R"
    assert marker[:, :64].sum() > marker[:, 64:].sum()  # R marker on the viewer's left for AP
    assert image.image[marker].min() >= 0.95


@pytest.mark.parametrize(
    "region, view, side, message",
    [
        ("elbow", "ap", None, "unknown x-ray region"),
        ("knee", "oblique", "left", "view"),
        ("knee", "ap", None, "laterality"),
        ("chest", "pa", "left", "midline"),
    ],
)
def test_bad_arguments_are_refused(body, region, view, side, message):
    with pytest.raises(ValueError, match=message):
        render_xray(body, region, view, side, np.random.default_rng(0), 64)


def test_bad_size_is_refused(body):
    with pytest.raises(ValueError, match="size"):
        render_xray(body, "chest", "pa", None, np.random.default_rng(0), 8)
