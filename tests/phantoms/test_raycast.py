"""Exact chords through the convex primitives, against closed forms and brute-force sampling."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.phantoms.materials import material
from radsynth.phantoms.raycast import Grid, pack_scene, project, scale_scene, section
from radsynth.phantoms.solids import Structure, ellipsoid, frustum, rotation_about

MU = material("muscle").mu_per_mm


def _brute_chord(inside, origin: np.ndarray, direction: np.ndarray) -> float:
    t = np.linspace(-400.0, 400.0, 400_001)
    points = origin + t[:, None] * direction
    return float(inside(points).sum() * (t[1] - t[0]))


def _grid_across(direction: np.ndarray, shape=(32, 32), spacing=3.0) -> Grid:
    a = np.cross(direction, [1.0, 0.0, 0.0])
    if np.linalg.norm(a) < 1e-3:
        a = np.cross(direction, [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    return Grid.centred(
        np.array([2.0, -3.0, 1.0]), a, np.cross(direction, a), shape, (spacing, spacing)
    )


def test_ellipsoid_chord_through_centre_matches_closed_form():
    rot = rotation_about((0.0, 0.0, 1.0), 0.3)
    scene = pack_scene(
        [Structure("e", "organ", "muscle", "air", [ellipsoid((0, 0, 0), (50, 30, 40), rot)])]
    )
    grid = Grid.centred(
        np.zeros(3), np.array([0, 0, -1.0]), np.array([1.0, 0, 0]), (101, 101), (1.0, 1.0)
    )
    integral, masks = project(scene, grid, np.array([0.0, -1.0, 0.0]))
    # Chord through the centre along d is 2 / sqrt(d^T A d), A = R diag(1/r^2) R^T.
    d = np.array([0.0, 1.0, 0.0])
    a = rot @ np.diag(1.0 / np.array([50.0, 30.0, 40.0]) ** 2) @ rot.T
    assert integral[50, 50] / MU == pytest.approx(2.0 / np.sqrt(d @ a @ d), rel=1e-9)
    assert masks["e"][50, 50] and not masks["e"][0, 0]


@pytest.mark.parametrize("direction", [(0, -1, 0), (0.3, -1, 0.4), (0, 0, 1), (0.2, 0.1, 1)])
def test_tapered_frustum_chords_match_sampling(direction):
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    solid = frustum((0, 0, -60), (0, 0, 60), 30.0, 20.0, taper=0.5)
    scene = pack_scene([Structure("f", "organ", "muscle", "air", [solid])])
    grid = _grid_across(d)
    integral, _ = project(scene, grid, d)

    def inside(p):
        z = p[:, 2] + 60.0
        s = 1.0 - 0.5 * z / 120.0
        return (z >= 0) & (z <= 120) & ((p[:, 0] / 30.0) ** 2 + (p[:, 1] / 20.0) ** 2 <= s**2)

    for r, c in [(16, 16), (5, 20), (25, 9), (12, 28)]:
        origin = grid.corner + r * grid.row_step + c * grid.col_step
        assert integral[r, c] / MU == pytest.approx(_brute_chord(inside, origin, d), abs=0.01)


def test_union_and_cutout_lengths():
    # Two overlapping balls count their overlap once; a cut-out removes its part.
    balls = [ellipsoid((-10, 0, 0), (20, 20, 20)), ellipsoid((10, 0, 0), (20, 20, 20))]
    hole = ellipsoid((0, 0, 0), (5, 5, 5))
    union = pack_scene([Structure("u", "organ", "muscle", "air", balls)])
    cut = pack_scene([Structure("u", "organ", "muscle", "air", balls, cutouts=[hole])])
    grid = Grid.centred(
        np.zeros(3), np.array([0, 0, -1.0]), np.array([0, 1.0, 0]), (3, 3), (1.0, 1.0)
    )
    along_x = np.array([1.0, 0.0, 0.0])
    full, _ = project(union, grid, along_x)
    holed, _ = project(cut, grid, along_x)
    assert full[1, 1] / MU == pytest.approx(60.0)
    assert holed[1, 1] / MU == pytest.approx(50.0)


def test_bone_shell_weights_cortex_and_core():
    from radsynth.phantoms.solids import bone

    b = bone("b", [(ellipsoid((0, 0, 0), (20, 20, 20)), 2.0)], parent="muscle")
    scene = pack_scene([b])
    grid = Grid.centred(
        np.zeros(3), np.array([0, 0, -1.0]), np.array([1.0, 0, 0]), (1, 1), (1.0, 1.0)
    )
    integral, _ = project(scene, grid, np.array([0.0, -1.0, 0.0]))
    cortical, trabecular = (
        material("cortical_bone").mu_per_mm,
        material("trabecular_bone").mu_per_mm,
    )
    expected = 40.0 * (cortical - MU) + 36.0 * (trabecular - cortical)
    assert integral[0, 0] == pytest.approx(expected)


def test_scaled_scene_equals_scaled_geometry():
    solid = frustum((0, 0, -30), (5, 0, 40), 12.0, 8.0, taper=0.6)
    big = frustum((0, 0, -60), (10, 0, 80), 24.0, 16.0, taper=0.6)
    grid = Grid.centred(
        np.array([1.0, 0, 5]), np.array([0, 0, -1.0]), np.array([1.0, 0, 0]), (40, 40), (2.0, 2.0)
    )
    d = np.array([0.0, -1.0, 0.0])
    scaled, _ = project(
        scale_scene(pack_scene([Structure("s", "organ", "muscle", "air", [solid])]), 2.0), grid, d
    )
    direct, _ = project(pack_scene([Structure("s", "organ", "muscle", "air", [big])]), grid, d)
    np.testing.assert_allclose(scaled, direct, atol=1e-9)


def test_section_paints_later_structures_on_top():
    outer = Structure("outer", "organ", "muscle", "air", [ellipsoid((0, 0, 0), (40, 40, 40))])
    inner = Structure("inner", "organ", "fluid", "muscle", [ellipsoid((0, 0, 0), (10, 10, 10))])
    grid = Grid.centred(
        np.zeros(3), np.array([0, -1.0, 0]), np.array([1.0, 0, 0]), (81, 81), (1.0, 1.0)
    )
    ids, masks = section(pack_scene([outer, inner]), grid)
    from radsynth.phantoms.materials import MATERIAL_IDS

    assert ids[40, 40] == MATERIAL_IDS["fluid"]
    assert ids[40, 70] == MATERIAL_IDS["muscle"]
    assert ids[0, 0] == MATERIAL_IDS["air"]
    assert masks["outer"][40, 40] and masks["inner"][40, 40] and not masks["inner"][40, 70]
    # Area of the inner disc: pi r^2 within a pixel's worth of rim.
    assert abs(masks["inner"].sum() - np.pi * 100) < 2 * np.pi * 10


def test_empty_scene_is_an_error():
    with pytest.raises(ValueError, match="at least one structure"):
        pack_scene([])
