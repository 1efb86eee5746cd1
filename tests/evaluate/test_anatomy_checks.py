"""Anatomy checks on phantom truth masks: normal phantoms pass, variants with bones removed,
duplicated or fused and fields moved off the region fail the right check."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.anatomy import check_anatomy, instance_areas, truth_structure_map
from radsynth.evaluate.reader.variant_cases import sixth_lumbar_below
from radsynth.phantoms.body import Body, draw_subject, make_body
from radsynth.phantoms.cases import make_case
from radsynth.phantoms.variants import Variant, render_body_variant, structure_centre

SIZE = 160


@pytest.fixture(scope="module")
def woman() -> Body:
    rng = np.random.default_rng([11, 7])
    return make_body(draw_subject(rng, sex="female", age=40), rng)


def _checks(image, region: str, view: str, sex: str | None = None):
    return check_anatomy(truth_structure_map(image.masks), region, view, sex)


@pytest.mark.parametrize(
    ("region", "view"),
    [
        ("hand", "pa"),
        ("wrist", "pa"),
        ("knee", "ap"),
        ("knee", "lateral"),
        ("lumbar_spine", "ap"),
        ("lumbar_spine", "lateral"),
        ("chest", "pa"),
        ("ankle", "ap"),
        ("pelvis", "ap"),
    ],
)
def test_normal_phantoms_pass_every_check(region: str, view: str) -> None:
    side = "left" if region in ("hand", "wrist", "knee", "ankle") else None
    case = make_case(
        5, modality="xray", region=region, view=view, laterality=side, findings_=(), size=SIZE
    )
    results = _checks(case.image, region, view, case.labels.sex)
    failed = {k: r for k, r in results.items() if r.passed is False}
    assert not failed
    if region == "hand":
        assert results["carpals_count"].value == 8
        assert results["metacarpals_count"].value == 5
        assert results["phalanges_count"].value == 14
    if region == "lumbar_spine":
        assert results["lumbar_vertebrae_count"].value == 5


def test_missing_fibula_is_found(woman: Body) -> None:
    image = render_body_variant(
        woman, "knee", "ap", "left", Variant(remove=("left_fibula",)), 1, SIZE
    )
    results = _checks(image, "knee", "ap")
    assert results["fibula_present"].passed is False
    assert results["patella_present"].passed is True


def test_missing_carpal_is_missing_not_fused(woman: Body) -> None:
    image = render_body_variant(
        woman, "hand", "pa", "left", Variant(remove=("left_lunate",)), 1, SIZE
    )
    results = _checks(image, "hand", "pa")
    assert results["carpals_count"].value == 7
    assert results["fused_bones"].passed is True  # short of a bone, but no bone is double size


def test_fused_carpals_are_fused(woman: Body) -> None:
    variant = Variant(fuse=(("left_lunate", "left_triquetrum"),))
    image = render_body_variant(woman, "wrist", "pa", "left", variant, 1, SIZE)
    results = _checks(image, "wrist", "pa")
    assert results["carpals_count"].value == 7
    assert results["fused_bones"].value == ["carpals"]


def test_extra_digit_is_extra(woman: Body) -> None:
    shift = structure_centre(woman, "left_metacarpal_5") - structure_centre(
        woman, "left_metacarpal_4"
    )
    variant = Variant(duplicate=("left_metacarpal_5", "left_*_phalanx_5"), shift_mm=tuple(shift))
    image = render_body_variant(woman, "hand", "pa", "left", variant, 1, SIZE)
    results = _checks(image, "hand", "pa")
    assert results["metacarpals_count"].value == 6
    assert results["phalanges_count"].value == 17
    assert results["extra_bones"].value == ["metacarpals", "phalanges"]


def test_sixth_lumbar_vertebra_is_extra(woman: Body) -> None:
    # A copy of L5 one vertebral step below it (over the sacrum): six lumbar bodies.
    variant = sixth_lumbar_below(woman)
    l4, l5 = (structure_centre(woman, name) for name in ("l4", "l5"))
    assert np.linalg.norm(l5 + np.asarray(variant.shift_mm) - l4) > 1.5 * np.linalg.norm(l5 - l4)
    image = render_body_variant(woman, "lumbar_spine", "ap", None, variant, 1, SIZE)
    results = _checks(image, "lumbar_spine", "ap")
    assert results["lumbar_vertebrae_count"].value == 6
    assert results["extra_bones"].passed is False


def test_field_moved_off_the_region_fails_in_field(woman: Body) -> None:
    centred = render_body_variant(woman, "hand", "pa", "left", Variant(), 1, SIZE)
    moved = render_body_variant(
        woman, "hand", "pa", "left", Variant(field_shift=(0.3, 0.0)), 1, SIZE
    )
    assert _checks(centred, "hand", "pa")["in_field"].passed is True
    assert _checks(moved, "hand", "pa")["in_field"].passed is False


def test_breast_shadows_follow_the_breasts(woman: Body) -> None:
    normal = render_body_variant(woman, "chest", "pa", None, Variant(), 1, SIZE)
    removed = render_body_variant(
        woman, "chest", "pa", None, Variant(remove=("*_breast",)), 1, SIZE
    )
    assert _checks(normal, "chest", "pa", "female")["breast_shadows"].passed is True
    assert _checks(removed, "chest", "pa", "female")["breast_shadows"].passed is False
    assert _checks(removed, "chest", "pa", "male")["breast_shadows"].passed is True


def test_instance_areas_split_a_mask_between_centres() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:4, 1:9] = True
    assert instance_areas(mask, [(2, 2), (2, 7)]) == [8, 8]
    assert instance_areas(mask, []) == []


def test_unknown_region_is_a_clear_error() -> None:
    case = make_case(1, modality="xray", region="knee", size=64)
    with pytest.raises(ValueError, match="no anatomy checks"):
        check_anatomy(truth_structure_map(case.image.masks), "liver", "ap")
