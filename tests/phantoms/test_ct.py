from __future__ import annotations

import numpy as np
import pytest

from radsynth.phantoms.body import Body, Subject, make_body
from radsynth.phantoms.ct import (
    CT_REGIONS,
    CT_WINDOWS,
    apply_window,
    ct_hounsfield,
    ct_noise,
    render_ct,
)

EXPECTED = {
    "head": "lateral_ventricles",
    "chest": "left_lung",
    "abdomen": "liver",
    "pelvis": "pelvis",
    "knee": "femur",
}


@pytest.fixture(scope="module")
def body() -> Body:
    subject = Subject(sex="male", age=50, height_mm=1760.0, build=0.5)
    return make_body(subject, np.random.default_rng(11))


def _median_in(hu: np.ndarray, mask: np.ndarray) -> float:
    assert mask.sum() > 20, "structure too small in the slice to measure"
    return float(np.median(hu[mask]))


def test_same_seed_gives_identical_slices(body: Body) -> None:
    a = render_ct(body, "abdomen", np.random.default_rng(5), size=128)
    b = render_ct(body, "abdomen", np.random.default_rng(5), size=128)
    c = render_ct(body, "abdomen", np.random.default_rng(6), size=128)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.masks.keys() == b.masks.keys()
    assert all(np.array_equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("region", CT_REGIONS)
def test_every_region_renders_with_its_anatomy(body: Body, region: str) -> None:
    image = render_ct(body, region, np.random.default_rng(1), size=128)
    assert image.image.shape == (128, 128) and image.image.dtype == np.float32
    assert image.image.min() >= 0.0 and image.image.max() <= 1.0
    assert image.image.std() > 0.05
    assert any(EXPECTED[region] in name for name in image.masks), sorted(image.masks)
    level, width = CT_WINDOWS[image.meta["window"]]
    assert (image.meta["window_level_hu"], image.meta["window_width_hu"]) == (level, width)
    assert image.pixel_spacing_mm[0] == pytest.approx(image.meta["fov_mm"] / 128)


def test_hounsfield_units_of_known_structures(body: Body) -> None:
    hu, masks, spacing = ct_hounsfield(body, "head", np.random.default_rng(2))
    assert hu.dtype == np.float32 and spacing[0] == pytest.approx(240.0 / 256)
    assert 20.0 <= _median_in(hu, masks["cerebrum"] & ~masks["white_matter"]) <= 45.0
    assert _median_in(hu, masks["lateral_ventricles"]) < _median_in(hu, masks["white_matter"])
    assert _median_in(hu, masks["skull"]) > 300.0

    hu, masks, _ = ct_hounsfield(body, "chest", np.random.default_rng(2))
    assert _median_in(hu, masks["left_lung"]) < -700.0
    assert _median_in(hu, masks["right_lung"]) < -700.0

    hu, masks, _ = ct_hounsfield(body, "abdomen", np.random.default_rng(2))
    assert 40.0 <= _median_in(hu, masks["liver"]) <= 80.0
    assert _median_in(hu, masks["l2"]) > 150.0  # cortex and marrow of the vertebra
    fat = masks["left_perirenal_fat"] & ~masks["left_kidney"]
    assert _median_in(hu, fat) < -50.0


def test_display_orientation_follows_radiological_convention(body: Body) -> None:
    _, masks, _ = ct_hounsfield(body, "abdomen", np.random.default_rng(3))
    size = masks["body"].shape[1]
    left_kidney_cols = np.nonzero(masks["left_kidney"])[1]
    assert left_kidney_cols.mean() > size / 2  # patient's left on the image right
    liver_cols = np.nonzero(masks["liver"])[1]
    assert (liver_cols < size / 2).mean() > 0.7
    # Anterior at the top: the vertebra lies below (posterior to) the centre of the body.
    assert np.nonzero(masks["l2"])[0].mean() > np.nonzero(masks["body"])[0].mean()


def test_window_maps_hounsfield_units_and_blackens_outside_the_circle(body: Body) -> None:
    hu, _, _ = ct_hounsfield(body, "chest", np.random.default_rng(4), size=128)
    image = render_ct(body, "chest", np.random.default_rng(4), size=128, window="lung")
    level, width = CT_WINDOWS["lung"]
    windowed = np.clip((hu - (level - width / 2)) / width, 0, 1)
    inside = hu > -1000.0
    np.testing.assert_allclose(image.image[inside], windowed[inside], atol=1e-6)
    assert hu[0, 0] == -1000.0 and image.image[0, 0] == 0.0  # corner: no reconstruction
    assert image.meta["window"] == "lung"


def test_slice_offset_moves_the_slice_up(body: Body) -> None:
    base = render_ct(body, "pelvis", np.random.default_rng(8), size=96)
    moved = render_ct(body, "pelvis", np.random.default_rng(8), size=96, slice_offset_mm=12.0)
    assert moved.meta["slice_z_mm"] == pytest.approx(base.meta["slice_z_mm"] + 12.0)


def test_noise_is_correlated_with_requested_sigma() -> None:
    noise = ct_noise(np.random.default_rng(0), 256, 15.0)
    assert noise.std() == pytest.approx(15.0, rel=1e-6)
    assert abs(noise.mean()) < 1.0
    lag1 = np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]
    assert lag1 > 0.3  # white noise would give about 0


def test_larger_patients_are_noisier() -> None:
    thin = make_body(Subject("male", 40, 1760.0, 0.0), np.random.default_rng(0))
    large = make_body(Subject("male", 40, 1760.0, 1.0), np.random.default_rng(0))
    sig_thin = render_ct(thin, "abdomen", np.random.default_rng(0), 96).meta["noise_sigma_hu"]
    sig_large = render_ct(large, "abdomen", np.random.default_rng(0), 96).meta["noise_sigma_hu"]
    assert sig_large > sig_thin


def test_apply_window_clips_to_unit_range() -> None:
    out = apply_window(np.array([-1000.0, 40.0, 80.0, 3000.0]), 40.0, 80.0)
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0, 1.0])


def test_bad_arguments_raise_helpful_errors(body: Body) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown CT region 'elbow'.*head"):
        render_ct(body, "elbow", rng)
    with pytest.raises(ValueError, match="unknown CT window 'liver'.*soft_tissue"):
        render_ct(body, "abdomen", rng, window="liver")
    with pytest.raises(ValueError, match="at least 32"):
        ct_hounsfield(body, "head", rng, size=8)
    with pytest.raises(ValueError, match="width must be positive"):
        apply_window(np.zeros(3), 0.0, 0.0)
