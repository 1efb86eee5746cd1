from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from radsynth.phantoms.body import Body, Subject, make_body
from radsynth.phantoms.materials import MATERIAL_IDS
from radsynth.phantoms.mri import (
    MRI_SEQUENCES,
    MRI_VIEWS,
    bias_field,
    kspace_sample,
    render_mri,
    spin_echo_signal,
)


@pytest.fixture(scope="module")
def body() -> Body:
    subject = Subject(sex="female", age=45, height_mm=1650.0, build=0.5)
    return make_body(subject, np.random.default_rng(21))


def _mean_in(image: np.ndarray, mask: np.ndarray, erode: int = 1) -> float:
    core = ndimage.binary_erosion(mask, iterations=erode) if erode else mask
    assert core.sum() > 10, "structure too small in the slice to measure"
    return float(image[core].mean())


def test_same_seed_gives_identical_slices(body: Body) -> None:
    a = render_mri(body, "knee", np.random.default_rng(3), size=96, sequence="pd")
    b = render_mri(body, "knee", np.random.default_rng(3), size=96, sequence="pd")
    np.testing.assert_array_equal(a.image, b.image)
    assert a.meta == b.meta
    assert all(np.array_equal(a.masks[k], b.masks[k]) for k in a.masks)


@pytest.mark.parametrize("sequence", sorted(MRI_SEQUENCES))
def test_every_region_view_and_sequence_renders(body: Body, sequence: str) -> None:
    for region, views in MRI_VIEWS.items():
        for view in views:
            out = render_mri(
                body, region, np.random.default_rng(0), 64, sequence=sequence, view=view
            )
            assert out.image.shape == (64, 64) and out.image.dtype == np.float32
            assert out.image.min() >= 0.0 and out.image.max() <= 1.0
            assert out.meta["view"] == view and out.meta["sequence"] == sequence
            assert (out.meta["repetition_time_ms"], out.meta["echo_time_ms"]) == MRI_SEQUENCES[
                sequence
            ]
            assert "body" in out.masks and len(out.masks) > 2, (region, view, sorted(out.masks))


def test_csf_is_dark_on_t1_and_bright_on_t2(body: Body) -> None:
    means = {}
    for sequence in ("t1", "t2"):
        out = render_mri(body, "head", np.random.default_rng(4), sequence=sequence, view="axial")
        csf = _mean_in(out.image, out.masks["lateral_ventricles"])
        white = _mean_in(out.image, out.masks["white_matter"] & ~out.masks["lateral_ventricles"])
        means[sequence] = (csf, white)
    assert means["t1"][0] < means["t1"][1]
    assert means["t2"][0] > means["t2"][1]


def test_fat_is_brighter_than_muscle_on_t1(body: Body) -> None:
    out = render_mri(body, "abdomen", np.random.default_rng(5), sequence="t1")
    fat = out.masks["left_perirenal_fat"] & ~out.masks["left_kidney"]
    assert _mean_in(out.image, fat) > 1.5 * _mean_in(out.image, out.masks["left_psoas"])


def test_flowing_blood_and_air_are_dark(body: Body) -> None:
    out = render_mri(body, "abdomen", np.random.default_rng(6), sequence="t2")
    vein = out.masks["inferior_vena_cava"] & ~out.masks["l2"]
    assert _mean_in(out.image, vein) < 0.5 * _mean_in(out.image, out.masks["liver"])
    corner = out.image[:12, :12]
    assert 0.0 < corner.mean() < 0.1  # Rayleigh noise floor of a magnitude image


def test_abdomen_orientation_and_sagittal_spine_orientation(body: Body) -> None:
    out = render_mri(body, "abdomen", np.random.default_rng(7), sequence="t1")
    size = out.image.shape[1]
    assert np.nonzero(out.masks["left_kidney"])[1].mean() > size / 2
    assert np.nonzero(out.masks["right_kidney"])[1].mean() < size / 2
    spine = render_mri(body, "spine", np.random.default_rng(7), sequence="t2")
    rows = {name: np.nonzero(spine.masks[name])[0].mean() for name in ("l1", "l5")}
    assert rows["l1"] < rows["l5"]  # head up
    cols = {name: np.nonzero(spine.masks[name])[1].mean() for name in ("abdominal_cavity", "l3")}
    assert cols["abdominal_cavity"] < cols["l3"]  # anterior on the image left


def test_knee_sagittal_passes_through_a_compartment(body: Body) -> None:
    out = render_mri(body, "knee", np.random.default_rng(8), sequence="pd", view="sagittal")
    side = out.meta["side"]
    assert out.meta["compartment"] in ("lateral", "medial")
    assert {f"{side}_femur", f"{side}_tibia"} <= out.masks.keys()


def test_spin_echo_signal_orders_tissues() -> None:
    t1 = spin_echo_signal(*MRI_SEQUENCES["t1"])
    t2 = spin_echo_signal(*MRI_SEQUENCES["t2"])
    ids = MATERIAL_IDS
    assert t1[ids["fat"]] > t1[ids["muscle"]]
    assert t1[ids["csf"]] < t1[ids["white_matter"]]
    assert t2[ids["csf"]] > t2[ids["grey_matter"]] > t2[ids["white_matter"]]
    assert t1[ids["air"]] == 0.0 and t2[ids["blood"]] == 0.0


def test_bias_field_is_smooth_and_bounded() -> None:
    field = bias_field(np.random.default_rng(0), 128, 0.2)
    assert np.abs(field - 1.0).max() == pytest.approx(0.2)
    assert np.abs(np.diff(field, axis=0)).max() < 0.02


def test_kspace_truncation_blurs_and_rings_at_edges() -> None:
    fine = np.zeros((128, 128))
    fine[:, 40:88] = 1.0
    full = kspace_sample(fine, 64, 1.0, phase_axis=1).real
    np.testing.assert_allclose(full[:, 32], 1.0, atol=0.05)
    truncated = kspace_sample(fine, 64, 0.5, phase_axis=1).real
    assert truncated.max() > 1.05  # Gibbs overshoot next to the edge
    assert np.abs(np.diff(truncated[0])).max() < np.abs(np.diff(full[0])).max()  # blur
    np.testing.assert_allclose(truncated[:, 32], truncated[0, 32])  # rows untouched


def test_bad_arguments_raise_helpful_errors(body: Body) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown MRI region 'chest'.*head"):
        render_mri(body, "chest", rng)
    with pytest.raises(ValueError, match="unknown MRI sequence 'flair'.*t1"):
        render_mri(body, "head", rng, sequence="flair")
    with pytest.raises(ValueError, match="not acquired in the 'axial' view.*sagittal"):
        render_mri(body, "spine", rng, view="axial")
    with pytest.raises(ValueError, match="at least 32"):
        render_mri(body, "head", rng, size=16)
