"""The phantom body: anatomy counts from masks, determinism, subjects."""

from __future__ import annotations

import re

import numpy as np
import pytest

from radsynth.phantoms.body import Subject, draw_subject, make_body
from radsynth.phantoms.xray import render_xray


@pytest.fixture(scope="module")
def body():
    rng = np.random.default_rng(7)
    return make_body(draw_subject(rng, sex="female", age=50), rng)


def _count(masks: dict[str, np.ndarray], pattern: str) -> int:
    return sum(1 for name, m in masks.items() if re.fullmatch(pattern, name) and m.sum() > 4)


def test_knee_shows_its_four_bones(body):
    masks = render_xray(body, "knee", "ap", "left", np.random.default_rng(0), 128).masks
    for bone in ("femur", "tibia", "fibula", "patella"):
        assert masks[f"left_{bone}"].sum() > 20, bone
    assert not any(name.startswith("right_") for name in masks if name != "right_breast")


def test_hand_has_eight_carpals_five_metacarpals_fourteen_phalanges(body):
    masks = render_xray(body, "hand", "pa", "right", np.random.default_rng(0), 128).masks
    carpals = "right_(scaphoid|lunate|triquetrum|pisiform|trapezium|trapezoid|capitate|hamate)"
    assert _count(masks, carpals) == 8
    assert _count(masks, r"right_metacarpal_\d") == 5
    assert _count(masks, r"right_(proximal|middle|distal)_phalanx_\d") == 14


def test_lumbar_spine_shows_five_lumbar_vertebrae(body):
    masks = render_xray(body, "lumbar_spine", "ap", None, np.random.default_rng(0), 128).masks
    assert _count(masks, r"l\d") == 5


def test_chest_has_twelve_rib_pairs_and_female_breasts(body):
    masks = render_xray(body, "chest", "pa", None, np.random.default_rng(0), 128).masks
    assert _count(masks, r"left_rib_\d+") == 12 and _count(masks, r"right_rib_\d+") == 12
    assert masks["left_breast"].sum() > 0 and masks["right_breast"].sum() > 0


def test_male_body_has_no_breast_structures():
    rng = np.random.default_rng(3)
    male = make_body(draw_subject(rng, sex="male"), rng)
    assert not any("breast" in name for name in male.structure_names())


def test_full_skeleton_counts(body):
    names = body.structure_names()
    assert sum(bool(re.fullmatch(r"c\d", n)) for n in names) == 7
    assert sum(bool(re.fullmatch(r"t\d+", n)) for n in names) == 12
    assert sum(bool(re.fullmatch(r"(left|right)_toe_\w+_phalanx_\d", n)) for n in names) == 28
    tarsals = r"(left|right)_(talus|calcaneus|navicular|cuboid|\w+_cuneiform)"
    assert sum(bool(re.fullmatch(tarsals, n)) for n in names) == 14
    for name in (
        "skull",
        "mandible",
        "pelvis",
        "sacrum",
        "left_clavicle",
        "right_scapula",
        "sternum",
    ):
        assert name in names


def test_same_seed_same_body_bit_for_bit():
    def build(seed):
        rng = np.random.default_rng(seed)
        return make_body(draw_subject(rng), rng)

    a, b, c = build(11), build(11), build(12)
    assert a.subject == b.subject
    np.testing.assert_array_equal(a.scene().prim_matrix, b.scene().prim_matrix)
    assert a.subject != c.subject


def test_height_scales_the_skeleton():
    rng = np.random.default_rng(0)
    tall = make_body(Subject("male", 40, 1900.0, 0.5), rng)
    short = make_body(Subject("male", 40, 1600.0, 0.5), np.random.default_rng(0))
    ratio = tall.landmark("left_knee")[2] / short.landmark("left_knee")[2]
    assert ratio == pytest.approx(1900.0 / 1600.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sex": "other", "age": 40, "height_mm": 1700.0, "build": 0.5}, "sex"),
        ({"sex": "male", "age": 5, "height_mm": 1700.0, "build": 0.5}, "age"),
        ({"sex": "male", "age": 40, "height_mm": 900.0, "build": 0.5}, "height"),
        ({"sex": "male", "age": 40, "height_mm": 1700.0, "build": 2.0}, "build"),
    ],
)
def test_bad_subjects_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Subject(**kwargs)
