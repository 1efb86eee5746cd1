"""B-mode ultrasound phantoms: geometry, determinism and the physics a sonographer relies on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from radsynth.phantoms.ultrasound import (
    SCENE_DECIMATION,
    US_ORGANS,
    _simulate,
    render_ultrasound,
)


@pytest.fixture(scope="module")
def images() -> dict[str, object]:
    return {organ: render_ultrasound(organ, np.random.default_rng(7), 160) for organ in US_ORGANS}


def _render(organ: str, seed: int, size: int = 192):
    return render_ultrasound(organ, np.random.default_rng(seed), size)


def test_same_seed_same_image_and_other_seed_differs() -> None:
    first, again, other = (
        _render("kidney", 3, 64),
        _render("kidney", 3, 64),
        _render("kidney", 4, 64),
    )
    assert np.array_equal(first.image, again.image)
    assert first.masks.keys() == again.masks.keys()
    assert all(np.array_equal(first.masks[k], again.masks[k]) for k in first.masks)
    assert not np.array_equal(first.image, other.image)


@pytest.mark.parametrize("organ", US_ORGANS)
def test_every_organ_renders_with_masks_inside_the_fan(organ: str, images) -> None:
    result = images[organ]
    assert result.image.shape == (160, 160) and result.image.dtype == np.float32
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    fan = result.masks["fan"]
    assert 0.3 < fan.mean() < 1.0
    assert np.all(result.image[~fan] == 0.0)  # black outside the imaged field
    assert result.image[fan].mean() > 0.05
    for name, mask in result.masks.items():
        assert mask.dtype == np.bool_ and mask.any(), name
        assert not (mask & ~fan).any(), name
    row, col = result.pixel_spacing_mm
    assert row == col and result.meta["depth_mm"] <= 160 * row < 2.0 * result.meta["depth_mm"]
    assert result.meta["probe"] == ("linear" if organ == "thyroid" else "curvilinear")
    low, high = (10.0, 12.0) if organ == "thyroid" else (3.5, 5.0)
    assert low <= result.meta["frequency_mhz"] <= high
    assert 50.0 <= result.meta["dynamic_range_db"] <= 60.0
    # The field shown is the imaged depth: rows of the fan times the spacing.
    fan_rows = np.nonzero(fan.any(axis=1))[0]
    extent = (fan_rows.max() - fan_rows.min() + 1) * row
    assert extent == pytest.approx(result.meta["depth_mm"], rel=0.15)


def test_named_structures_per_organ(images) -> None:
    expected = {
        "liver": {"liver", "hepatic_vessels", "diaphragm"},
        "kidney": {"kidney", "renal_sinus", "renal_cortex", "renal_pyramids"},
        "gallbladder": {"liver", "gallbladder"},
        "thyroid": {
            "thyroid_left_lobe",
            "thyroid_right_lobe",
            "isthmus",
            "trachea",
            "left_common_carotid",
            "right_common_carotid",
        },
        "fetus": {"fetal_head", "fetal_skull", "fetal_body", "amniotic_fluid", "placenta"},
    }
    for organ, names in expected.items():
        assert names <= set(images[organ].masks), organ


def _mean(result, name: str, minus: tuple[str, ...] = (), erode: int = 1) -> float:
    mask = result.masks[name].copy()
    for other in minus:
        mask &= ~ndimage.binary_dilation(result.masks[other], iterations=2)
    mask = ndimage.binary_erosion(mask, iterations=erode)
    assert mask.sum() > 20, name
    return float(result.image[mask].mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_fluid_is_darker_than_parenchyma(seed: int) -> None:
    gallbladder = _render("gallbladder", seed)
    liver = _mean(gallbladder, "liver", minus=("gallbladder", "hepatic_vessels"))
    assert _mean(gallbladder, "gallbladder") < 0.4 * liver
    fetus = _render("fetus", seed)
    assert _mean(fetus, "amniotic_fluid", erode=3) < 0.5 * _mean(fetus, "placenta", erode=3)
    scan = _render("liver", seed)
    vessels = _mean(scan, "hepatic_vessels", erode=1)
    assert vessels < 0.6 * _mean(scan, "liver", minus=("hepatic_vessels",))


@pytest.mark.parametrize("seed", [0, 2])
def test_renal_echogenicity_order(seed: int) -> None:
    scan = _render("kidney", seed)
    organ = "liver" if scan.meta["side"] == "right" else "spleen"
    sinus = _mean(scan, "renal_sinus", erode=2)
    parenchyma = _mean(scan, organ, minus=("kidney", "perirenal_fat"), erode=2)
    cortex = _mean(scan, "renal_cortex", minus=("renal_pyramids", "renal_sinus"), erode=1)
    pyramids = _mean(scan, "renal_pyramids", erode=1)
    assert sinus > parenchyma > cortex > pyramids


def _patch_below(result, name: str, depth_px: int = 16) -> tuple[slice, np.ndarray, int]:
    rows, cols = np.nonzero(result.masks[name])
    width = cols.max() - cols.min() + 1
    central = np.arange(cols.min() + width // 4, cols.max() - width // 4 + 1)
    start = rows.max() + 3
    return slice(start, start + depth_px), central, width


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_posterior_acoustic_enhancement_below_the_gallbladder(seed: int) -> None:
    scan = _render("gallbladder", seed)
    rows, below, width = _patch_below(scan, "gallbladder")
    liver = scan.masks["liver"] & ~scan.masks.get(
        "hepatic_vessels", np.zeros_like(scan.masks["fan"])
    )
    beside = []
    for offset in (-width, width):
        cols = below + offset
        patch = np.zeros_like(liver)
        patch[rows, cols[(cols >= 0) & (cols < liver.shape[1])]] = True
        if (patch & liver).sum() > 0.5 * (rows.stop - rows.start) * below.size:
            beside.append(scan.image[patch & liver].mean())
    assert beside, "no liver beside the gallbladder at the same depth"
    assert scan.image[rows][:, below].mean() > 1.15 * max(beside)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_acoustic_shadow_below_the_trachea(seed: int) -> None:
    scan = _render("thyroid", seed)
    rows, below, width = _patch_below(scan, "trachea", depth_px=20)
    vessels = np.zeros_like(scan.masks["fan"])
    for name, mask in scan.masks.items():
        if name.endswith(("carotid", "jugular_vein")):
            vessels |= mask
    beside = np.zeros_like(vessels)
    for offset in (-width, width):
        cols = below + offset
        beside[rows, cols[(cols >= 0) & (cols < vessels.shape[1])]] = True
    beside &= ~vessels & scan.masks["fan"]
    assert scan.image[rows][:, below].mean() < 0.5 * scan.image[beside].mean()


def test_speckle_in_homogeneous_liver_is_rayleigh() -> None:
    beam = _simulate("gallbladder", np.random.default_rng(11), "female", 40, None)
    liver_ids = [0] + [k for k, s in enumerate(beam.scene.structures, 1) if s.material == "liver"]
    wall_ids = [k for k, s in enumerate(beam.scene.structures, 1) if s.shape.bbox is None]
    liver = np.repeat(np.isin(beam.label, liver_ids), SCENE_DECIMATION, axis=0)
    # Stay a few pulse lengths and beam widths away from any other tissue, on lines that cross
    # nothing but the body wall before (no shadow, no enhancement).
    liver = ndimage.binary_erosion(liver, structure=np.ones((41, 25), dtype=bool))
    depth = (np.arange(liver.shape[0]) + 0.5) * beam.dz_mm
    window = np.abs(depth - beam.probe.focus_mm) < 8.0
    above = np.repeat(beam.label, SCENE_DECIMATION, axis=0)[: np.nonzero(window)[0][-1]]
    clear = np.isin(above, liver_ids + wall_ids).all(axis=0)
    liver &= clear[None, :]
    samples = beam.envelope[window][liver[window]]
    assert samples.size > 3_000
    snr = samples.mean() / samples.std()
    assert snr == pytest.approx(np.sqrt(np.pi / (4.0 - np.pi)), abs=0.12)  # 1.91
    assert samples.mean() == pytest.approx(0.886, rel=0.35)  # unit echo power near the focus


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"organ": "brain"}, "choose one of"),
        ({"size": 16}, "at least 32"),
        ({"sex": "other"}, "'female' or 'male'"),
        ({"organ": "fetus", "sex": "male"}, "sex='female'"),
        ({"frequency_mhz": 60.0}, "between 1 and 20 MHz"),
        ({"age": -3}, "between 0 and 120"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, object], message: str) -> None:
    args = {"organ": "liver", "size": 64} | kwargs
    organ, size = args.pop("organ"), args.pop("size")
    with pytest.raises(ValueError, match=message):
        render_ultrasound(organ, np.random.default_rng(0), size, **args)


def test_frequency_override_sets_the_probe_frequency() -> None:
    result = render_ultrasound("liver", np.random.default_rng(0), 64, frequency_mhz=2.5)
    assert result.meta["frequency_mhz"] == 2.5
