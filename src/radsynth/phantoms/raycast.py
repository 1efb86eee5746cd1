"""Exact parallel-beam projections and planar sections of a scene of convex solids.

`pack_scene` flattens structures into arrays; `project` returns, for every detector pixel, the
line integral of attenuation (sum over structures of chord length x attenuation difference) and
the footprint mask of every structure; `section` returns the material and structure under every
point of a plane (for CT, MRI and ultrasound). Both run in compiled, parallel loops (numba) over
16x16 pixel tiles, each tile visiting only the solids whose bounding box reaches it.

Chords are exact: a line meets an ellipsoid or an elliptic frustum in one interval, found by
solving a quadratic; unions and cut-outs of a structure are merged as interval sets per ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numba
import numpy as np

from radsynth.phantoms.materials import MATERIAL_IDS, MATERIAL_NAMES, material
from radsynth.phantoms.solids import ELLIPSOID, Solid, Structure, solid_arrays

TILE = 8
MAX_INTERVALS = 96  # per structure group and ray; more overlapping pieces than any structure has


@dataclass
class PackedScene:
    """Structures flattened into primitive and group arrays for the compiled kernels."""

    names: list[str]
    categories: list[str]
    prim_type: np.ndarray  # (P,) int64: ELLIPSOID or FRUSTUM
    prim_matrix: np.ndarray  # (P, 3, 3) world -> local
    prim_origin: np.ndarray  # (P, 3) mm
    prim_length: np.ndarray  # (P,) frustum length, mm
    prim_slope: np.ndarray  # (P,) frustum taper slope, 1/mm
    prim_group: np.ndarray  # (P,) group index, non-decreasing
    prim_negative: np.ndarray  # (P,) bool: a cut-out
    prim_low: np.ndarray  # (P, 3) bounding box, mm
    prim_high: np.ndarray
    group_weight: np.ndarray  # (G,) attenuation difference, 1/mm
    group_material: np.ndarray  # (G,) material id
    group_structure: np.ndarray  # (G,) structure index
    group_outer: np.ndarray  # (G,) bool: the structure's outer group (sets its mask)


def _structure_layout(structure: Structure) -> tuple[list[Solid], dict[str, np.ndarray]]:
    """A structure's solids in packing order and its group arrays."""
    groups = [(structure.material, structure.parent, structure.parts, True)]
    if structure.inner_material is not None and structure.inner_parts:
        groups.append((structure.inner_material, structure.material, structure.inner_parts, False))
    solids: list[Solid] = []
    group_ids: list[int] = []
    negatives: list[bool] = []
    for group, (_, _, parts, _) in enumerate(groups):
        for solid_list, negative in ((parts, False), (structure.cutouts, True)):
            solids += solid_list
            group_ids += [group] * len(solid_list)
            negatives += [negative] * len(solid_list)
    if not solids:
        raise ValueError(f"structure {structure.name!r} has no solids")
    return solids, {
        "prim_group": np.asarray(group_ids, dtype=np.int64),
        "prim_negative": np.asarray(negatives, dtype=np.bool_),
        "group_fill": np.asarray([MATERIAL_IDS[g[0]] for g in groups], dtype=np.int64),
        "group_parent": np.asarray([MATERIAL_IDS[g[1]] for g in groups], dtype=np.int64),
        "group_outer": np.asarray([g[3] for g in groups], dtype=np.bool_),
        "group_owner": np.zeros(len(groups), dtype=np.int64),
    }


def _structure_chunks(structures: Sequence[Structure]) -> list[dict[str, np.ndarray]]:
    """Primitive and group arrays of each structure. They are computed once, for all new
    structures together, and kept on the structure (structures are treated as immutable once
    built; a change makes a new structure)."""
    new = [s for s in structures if "_packed_chunk" not in s.__dict__]
    if new:
        layouts = [_structure_layout(s) for s in new]
        solids = [solid for solid_list, _ in layouts for solid in solid_list]
        arrays = solid_arrays(solids)
        start = 0
        for structure, (solid_list, chunk) in zip(new, layouts, strict=True):
            stop = start + len(solid_list)
            chunk.update({key: value[start:stop] for key, value in arrays.items()})
            structure.__dict__["_packed_chunk"] = chunk
            start = stop
    return [s.__dict__["_packed_chunk"] for s in structures]


_TAIL_CACHE: dict[tuple[int, ...], dict[str, np.ndarray]] = {}


def _merged(chunks: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Several structures' chunks as one chunk (group indices offset, owners numbered)."""
    group_counts = [len(c["group_fill"]) for c in chunks]
    offsets = np.concatenate([[0], np.cumsum(group_counts)[:-1]]).astype(np.int64)
    owners = [0] + list(np.cumsum([c["group_owner"].max() + 1 for c in chunks])[:-1])
    merged = {
        key: np.concatenate([c[key] for c in chunks])
        for key in chunks[0]
        if key not in ("prim_group", "group_owner")
    }
    merged["prim_group"] = np.concatenate(
        [c["prim_group"] + off for c, off in zip(chunks, offsets, strict=True)]
    )
    merged["group_owner"] = np.concatenate(
        [c["group_owner"] + own for c, own in zip(chunks, owners, strict=True)]
    )
    return merged


def pack_scene(
    structures: Sequence[Structure],
    mu_scale: dict[str, float] | None = None,
    shared_tail: int = 0,
) -> PackedScene:
    """Flatten `structures` (in painting order: later ones lie on top in sections).

    `mu_scale` multiplies the attenuation of named materials (e.g. lower bone density with age).
    `shared_tail`: how many structures at the end are shared between scenes (a cached skeleton);
    their flattened arrays are kept and reused.
    """
    if not structures:
        raise ValueError("a scene needs at least one structure")
    mu = np.array([material(name).mu_per_mm for name in MATERIAL_NAMES])
    for name, factor in (mu_scale or {}).items():
        mu[MATERIAL_IDS[material(name).name]] *= factor
    split = len(structures) - min(max(shared_tail, 0), len(structures))
    chunks = _structure_chunks(structures[:split])
    if split < len(structures):
        key = tuple(id(s) for s in structures[split:])
        if key not in _TAIL_CACHE:
            if len(_TAIL_CACHE) > 64:
                _TAIL_CACHE.clear()
            _TAIL_CACHE[key] = _merged(_structure_chunks(structures[split:]))
        chunks = [*chunks, _TAIL_CACHE[key]]
    merged = _merged(chunks)
    return PackedScene(
        names=[s.name for s in structures],
        categories=[s.category for s in structures],
        **{key: value for key, value in merged.items() if key.startswith("prim_")},
        group_weight=mu[merged["group_fill"]] - mu[merged["group_parent"]],
        group_material=merged["group_fill"],
        group_structure=merged["group_owner"],
        group_outer=merged["group_outer"],
    )


def scale_scene(scene: PackedScene, factor: float) -> PackedScene:
    """The scene uniformly scaled about the origin by `factor` (a taller or shorter body)."""
    ellipsoids = scene.prim_type == ELLIPSOID
    matrix = scene.prim_matrix / factor
    # Frusta keep their local z in mm: only the cross-section rows scale.
    matrix[~ellipsoids, 2, :] = scene.prim_matrix[~ellipsoids, 2, :]
    return replace(
        scene,
        prim_matrix=matrix,
        prim_origin=scene.prim_origin * factor,
        prim_length=scene.prim_length * factor,
        prim_slope=scene.prim_slope / factor,
        prim_low=scene.prim_low * factor,
        prim_high=scene.prim_high * factor,
    )


@dataclass(frozen=True)
class Grid:
    """A regular grid of points on a plane: pixel (row, col) sits at
    `corner + row * row_step + col * col_step` (all in mm, body coordinates)."""

    corner: np.ndarray
    row_step: np.ndarray
    col_step: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def centred(
        cls,
        center: np.ndarray,
        row_dir: np.ndarray,
        col_dir: np.ndarray,
        shape: tuple[int, int],
        spacing_mm: tuple[float, float],
    ) -> Grid:
        """Grid of `shape` pixels centred on `center`, rows along `row_dir`, columns along
        `col_dir` (unit vectors), with (row, column) spacing in mm."""
        row_step = np.asarray(row_dir, float) * spacing_mm[0]
        col_step = np.asarray(col_dir, float) * spacing_mm[1]
        corner = (
            np.asarray(center, float)
            - row_step * (shape[0] - 1) / 2.0
            - col_step * (shape[1] - 1) / 2.0
        )
        return cls(corner, row_step, col_step, shape)


def _pixel_rects(scene: PackedScene, grid: Grid, normal: np.ndarray | None) -> np.ndarray:
    """Per primitive, the pixel rectangle [r0, r1) x [c0, c1) its bounding box covers.

    With a `normal` (sections), primitives whose box misses the plane get an empty rectangle."""
    rects = _box_rects(
        scene.prim_low,
        scene.prim_high,
        grid.corner,
        grid.row_step / float(grid.row_step @ grid.row_step),
        grid.col_step / float(grid.col_step @ grid.col_step),
        np.zeros(3) if normal is None else np.asarray(normal, dtype=np.float64),
        normal is not None,
        grid.shape[0],
        grid.shape[1],
    )
    return _clip_cutouts(scene, rects)


@numba.njit(cache=True)
def _box_rects(low, high, corner, row_axis, col_axis, normal, sectioning, height, width):
    rects = np.zeros((low.shape[0], 4), dtype=np.int64)
    for p in range(low.shape[0]):
        r_min, r_max, c_min, c_max = np.inf, -np.inf, np.inf, -np.inf
        d_min, d_max = np.inf, -np.inf
        for bits in range(8):
            x = high[p, 0] if bits & 1 else low[p, 0]
            y = high[p, 1] if bits & 2 else low[p, 1]
            z = high[p, 2] if bits & 4 else low[p, 2]
            rx, ry, rz = x - corner[0], y - corner[1], z - corner[2]
            row = rx * row_axis[0] + ry * row_axis[1] + rz * row_axis[2]
            col = rx * col_axis[0] + ry * col_axis[1] + rz * col_axis[2]
            depth = rx * normal[0] + ry * normal[1] + rz * normal[2]
            r_min, r_max = min(r_min, row), max(r_max, row)
            c_min, c_max = min(c_min, col), max(c_max, col)
            d_min, d_max = min(d_min, depth), max(d_max, depth)
        if sectioning and (d_min > 1e-9 or d_max < -1e-9):
            continue
        rects[p, 0] = min(max(np.floor(r_min), 0.0), height)
        rects[p, 1] = min(max(np.floor(r_max) + 2.0, 0.0), height)
        rects[p, 2] = min(max(np.floor(c_min), 0.0), width)
        rects[p, 3] = min(max(np.floor(c_max) + 2.0, 0.0), width)
    return rects


def _clip_cutouts(scene: PackedScene, rects: np.ndarray) -> np.ndarray:
    """A cut-out only matters where its group has parts: clip its rectangle to theirs."""
    n_groups = len(scene.group_weight)
    parts = ~scene.prim_negative & (rects[:, 1] > rects[:, 0]) & (rects[:, 3] > rects[:, 2])
    low = np.full((n_groups, 2), np.iinfo(np.int64).max)
    high = np.full((n_groups, 2), -1)
    np.minimum.at(low, scene.prim_group[parts], rects[parts][:, [0, 2]])
    np.maximum.at(high, scene.prim_group[parts], rects[parts][:, [1, 3]])
    cut = scene.prim_negative
    g = scene.prim_group[cut]
    clipped = rects[cut].copy()
    clipped[:, 0] = np.maximum(clipped[:, 0], low[g, 0])
    clipped[:, 1] = np.minimum(clipped[:, 1], high[g, 0])
    clipped[:, 2] = np.maximum(clipped[:, 2], low[g, 1])
    clipped[:, 3] = np.minimum(clipped[:, 3], high[g, 1])
    empty = (clipped[:, 1] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 2])
    clipped[empty] = 0
    rects[cut] = clipped
    return rects


def _local_steps(scene: PackedScene, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local coordinates of pixel (0, 0) and their change per row and per column."""
    base = np.einsum("pij,pj->pi", scene.prim_matrix, grid.corner - scene.prim_origin)
    per_row = scene.prim_matrix @ grid.row_step
    per_col = scene.prim_matrix @ grid.col_step
    return base, per_row, per_col


@numba.njit(cache=True, inline="always")
def _interval(kind, q0, q1, q2, e0, e1, e2, length, slope, a, inv_a, inv_e2):
    """Entry and exit parameter of the line q + t e with one primitive (lo > hi when missed).

    `a` (the quadratic's leading coefficient), `inv_a` and `inv_e2` depend only on the
    direction, so they are computed once per primitive and projection."""
    if kind == ELLIPSOID:
        b = q0 * e0 + q1 * e1 + q2 * e2
        c = q0 * q0 + q1 * q1 + q2 * q2 - 1.0
        disc = b * b - a * c
        if disc <= 0.0:
            return 1.0, 0.0
        root = np.sqrt(disc)
        return (-b - root) * inv_a, (-b + root) * inv_a
    # Frustum: the cone quadric (cheap rejection first), then the slab 0 <= z <= length.
    s0 = 1.0 + slope * q2
    b = q0 * e0 + q1 * e1 - slope * s0 * e2
    c = q0 * q0 + q1 * q1 - s0 * s0
    disc = b * b - a * c
    if a > 1e-14 and disc <= 0.0:
        return 1.0, 0.0
    if inv_e2 == 0.0:
        if q2 < 0.0 or q2 > length:
            return 1.0, 0.0
        lo, hi = -np.inf, np.inf
    else:
        t0 = -q2 * inv_e2
        t1 = (length - q2) * inv_e2
        lo, hi = min(t0, t1), max(t0, t1)
    if abs(a) <= 1e-14:
        if abs(b) < 1e-14:
            return (lo, hi) if c <= 0.0 else (1.0, 0.0)
        root = -c / (2.0 * b)
        return (max(lo, root), hi) if b < 0.0 else (lo, min(hi, root))
    if a > 0.0:
        root = np.sqrt(disc)
        return max(lo, (-b - root) * inv_a), min(hi, (-b + root) * inv_a)
    if disc <= 0.0:
        return lo, hi
    root = np.sqrt(disc)
    r1, r2 = (-b + root) * inv_a, (-b - root) * inv_a  # a < 0: inside outside [r1, r2]
    first_lo, first_hi = lo, min(hi, r1)
    if first_hi > first_lo:
        return first_lo, first_hi
    return max(lo, r2), hi


def _direction_terms(
    scene: PackedScene, local_direction: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per primitive: the quadratic's leading coefficient for this direction, its inverse and
    the inverse of the direction's axial component (0 where undefined)."""
    e0, e1, e2 = local_direction[:, 0], local_direction[:, 1], local_direction[:, 2]
    ellipsoid = scene.prim_type == ELLIPSOID
    a = np.where(ellipsoid, e0**2 + e1**2 + e2**2, e0**2 + e1**2 - (scene.prim_slope * e2) ** 2)
    with np.errstate(divide="ignore"):
        inv_a = np.where(np.abs(a) > 1e-14, 1.0 / np.where(a == 0.0, 1.0, a), 0.0)
        inv_e2 = np.where(np.abs(e2) > 1e-12, 1.0 / np.where(e2 == 0.0, 1.0, e2), 0.0)
    return a, inv_a, inv_e2


@numba.njit(cache=True)
def _union_length(lo, hi, n):
    """Sort n intervals in place by start and merge them; returns the merged count."""
    for i in range(1, n):
        key_lo, key_hi = lo[i], hi[i]
        j = i - 1
        while j >= 0 and lo[j] > key_lo:
            lo[j + 1], hi[j + 1] = lo[j], hi[j]
            j -= 1
        lo[j + 1], hi[j + 1] = key_lo, key_hi
    m = 0
    for i in range(n):
        if m > 0 and lo[i] <= hi[m - 1]:
            hi[m - 1] = max(hi[m - 1], hi[i])
        else:
            lo[m], hi[m] = lo[i], hi[i]
            m += 1
    return m


@numba.njit(cache=True)
def _group_length(pos_lo, pos_hi, n_pos, neg_lo, neg_hi, n_neg):
    """Length of (union of positive intervals) minus (union of negative intervals)."""
    m = _union_length(pos_lo, pos_hi, n_pos)
    total = 0.0
    for i in range(m):
        total += pos_hi[i] - pos_lo[i]
    if n_neg == 0:
        return total
    k = _union_length(neg_lo, neg_hi, n_neg)
    i = 0
    j = 0
    while i < m and j < k:
        overlap = min(pos_hi[i], neg_hi[j]) - max(pos_lo[i], neg_lo[j])
        if overlap > 0.0:
            total -= overlap
        if pos_hi[i] < neg_hi[j]:
            i += 1
        else:
            j += 1
    return total


@numba.njit(cache=True)
def _bin_tiles(rects, tiles_r, tiles_c):
    """For every tile, the primitives whose pixel rectangle reaches it, in primitive order
    (so grouped by structure group): offsets (tiles + 1) into one index array."""
    n_tiles = tiles_r * tiles_c
    counts = np.zeros(n_tiles + 1, dtype=np.int64)
    for p in range(rects.shape[0]):
        if rects[p, 1] <= rects[p, 0] or rects[p, 3] <= rects[p, 2]:
            continue
        for tr in range(rects[p, 0] // TILE, (rects[p, 1] - 1) // TILE + 1):
            for tc in range(rects[p, 2] // TILE, (rects[p, 3] - 1) // TILE + 1):
                counts[tr * tiles_c + tc + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    indices = np.empty(offsets[-1], dtype=np.int64)
    for p in range(rects.shape[0]):
        if rects[p, 1] <= rects[p, 0] or rects[p, 3] <= rects[p, 2]:
            continue
        for tr in range(rects[p, 0] // TILE, (rects[p, 1] - 1) // TILE + 1):
            for tc in range(rects[p, 2] // TILE, (rects[p, 3] - 1) // TILE + 1):
                t = tr * tiles_c + tc
                indices[fill[t]] = p
                fill[t] += 1
    return offsets, indices


@numba.njit(parallel=True, cache=True)
def _project_kernel(
    height, width, rects, base, per_row, per_col, direction, kind, length, slope,
    group, negative, group_weight, group_structure, group_outer, structure_slot, n_slots,
    clip_lo, clip_hi, coef_a, inv_a, inv_e2,
):  # fmt: skip
    integral = np.zeros((height, width))
    masks = np.zeros((n_slots, height, width), dtype=np.bool_)
    tiles_r = (height + TILE - 1) // TILE
    tiles_c = (width + TILE - 1) // TILE
    offsets, indices = _bin_tiles(rects, tiles_r, tiles_c)
    for tile in numba.prange(tiles_r * tiles_c):
        r0 = (tile // tiles_c) * TILE
        c0 = (tile % tiles_c) * TILE
        r1 = min(r0 + TILE, height)
        c1 = min(c0 + TILE, width)
        cand = indices[offsets[tile] : offsets[tile + 1]]
        n_cand = cand.shape[0]
        if n_cand == 0:
            continue
        pos_lo = np.empty(MAX_INTERVALS)
        pos_hi = np.empty(MAX_INTERVALS)
        neg_lo = np.empty(MAX_INTERVALS)
        neg_hi = np.empty(MAX_INTERVALS)
        for r in range(r0, r1):
            for c in range(c0, c1):
                total = 0.0
                i = 0
                missed_structure = -1  # a structure whose outer group this ray missed
                while i < n_cand:
                    g = group[cand[i]]
                    if not group_outer[g] and group_structure[g] == missed_structure:
                        # The inner group lies inside the outer one: nothing to find.
                        while i < n_cand and group[cand[i]] == g:
                            i += 1
                        continue
                    n_pos = 0
                    n_neg = 0
                    while i < n_cand and group[cand[i]] == g:
                        p = cand[i]
                        i += 1
                        if (
                            r < rects[p, 0]
                            or r >= rects[p, 1]
                            or c < rects[p, 2]
                            or c >= rects[p, 3]
                        ):
                            continue
                        # A group lists its parts before its cut-outs: with no part on this
                        # ray, its cut-outs cannot matter.
                        if negative[p] and n_pos == 0:
                            continue
                        q0 = base[p, 0] + r * per_row[p, 0] + c * per_col[p, 0]
                        q1 = base[p, 1] + r * per_row[p, 1] + c * per_col[p, 1]
                        q2 = base[p, 2] + r * per_row[p, 2] + c * per_col[p, 2]
                        lo, hi = _interval(
                            kind[p], q0, q1, q2, direction[p, 0], direction[p, 1],
                            direction[p, 2], length[p], slope[p], coef_a[p], inv_a[p], inv_e2[p],
                        )  # fmt: skip
                        lo = max(lo, clip_lo)
                        hi = min(hi, clip_hi)
                        if hi <= lo:
                            continue
                        if negative[p]:
                            if n_neg < MAX_INTERVALS:
                                neg_lo[n_neg] = lo
                                neg_hi[n_neg] = hi
                                n_neg += 1
                        elif n_pos < MAX_INTERVALS:
                            pos_lo[n_pos] = lo
                            pos_hi[n_pos] = hi
                            n_pos += 1
                    chord = 0.0
                    if n_pos > 0:
                        chord = _group_length(pos_lo, pos_hi, n_pos, neg_lo, neg_hi, n_neg)
                    if group_outer[g] and chord <= 0.0:
                        missed_structure = group_structure[g]
                    if chord > 0.0:
                        total += chord * group_weight[g]
                        if group_outer[g]:
                            slot = structure_slot[group_structure[g]]
                            if slot >= 0:
                                masks[slot, r, c] = True
                integral[r, c] = total
    return integral, masks


@numba.njit(cache=True, inline="always")
def _inside(kind, q0, q1, q2, length, slope):
    if kind == ELLIPSOID:
        return q0 * q0 + q1 * q1 + q2 * q2 <= 1.0
    if q2 < 0.0 or q2 > length:
        return False
    s = 1.0 + slope * q2
    return q0 * q0 + q1 * q1 <= s * s


@numba.njit(parallel=True, cache=True)
def _section_kernel(
    height, width, rects, base, per_row, per_col, kind, length, slope, group, negative,
    group_material, group_structure, group_outer, structure_slot, n_slots,
):  # fmt: skip
    materials = np.zeros((height, width), dtype=np.int64)
    masks = np.zeros((n_slots, height, width), dtype=np.bool_)
    tiles_r = (height + TILE - 1) // TILE
    tiles_c = (width + TILE - 1) // TILE
    offsets, indices = _bin_tiles(rects, tiles_r, tiles_c)
    for tile in numba.prange(tiles_r * tiles_c):
        r0 = (tile // tiles_c) * TILE
        c0 = (tile % tiles_c) * TILE
        r1 = min(r0 + TILE, height)
        c1 = min(c0 + TILE, width)
        cand = indices[offsets[tile] : offsets[tile + 1]]
        n_cand = cand.shape[0]
        for r in range(r0, r1):
            for c in range(c0, c1):
                i = 0
                while i < n_cand:
                    g = group[cand[i]]
                    in_pos = False
                    in_neg = False
                    while i < n_cand and group[cand[i]] == g:
                        p = cand[i]
                        i += 1
                        if (
                            r < rects[p, 0]
                            or r >= rects[p, 1]
                            or c < rects[p, 2]
                            or c >= rects[p, 3]
                        ):
                            continue
                        q0 = base[p, 0] + r * per_row[p, 0] + c * per_col[p, 0]
                        q1 = base[p, 1] + r * per_row[p, 1] + c * per_col[p, 1]
                        q2 = base[p, 2] + r * per_row[p, 2] + c * per_col[p, 2]
                        if _inside(kind[p], q0, q1, q2, length[p], slope[p]):
                            if negative[p]:
                                in_neg = True
                            else:
                                in_pos = True
                    if in_pos and not in_neg:
                        materials[r, c] = group_material[g]
                        if group_outer[g]:
                            slot = structure_slot[group_structure[g]]
                            if slot >= 0:
                                masks[slot, r, c] = True
    return materials, masks


def _slots(
    scene: PackedScene, rects: np.ndarray, wanted: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """Mask slot per structure: structures whose primitives reach the grid (and are wanted)."""
    reached = (rects[:, 1] > rects[:, 0]) & (rects[:, 3] > rects[:, 2])
    structure_of_prim = scene.group_structure[scene.prim_group]
    visible = np.zeros(len(scene.names), dtype=bool)
    visible[structure_of_prim[reached & ~scene.prim_negative]] = True
    if wanted is not None:
        visible &= np.isin(np.asarray(scene.names, dtype=object), list(wanted))
    slot = np.full(len(scene.names), -1, dtype=np.int64)
    names = [scene.names[i] for i in np.flatnonzero(visible)]
    slot[np.flatnonzero(visible)] = np.arange(len(names))
    return slot, names


def project(
    scene: PackedScene,
    grid: Grid,
    direction: np.ndarray,
    mask_structures: Sequence[str] | None = None,
    clip: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Line integral of attenuation (dimensionless, sum of mu x mm) along `direction` through
    every pixel of `grid`, and the footprint mask of each structure that the grid reaches.

    `mask_structures` limits the masks returned (all structures by default). `clip` keeps only
    the part of each ray between these distances (mm) from the grid's plane, measured along
    `direction` (a lateral view of one knee leaves the other leg out of the beam)."""
    rects = _pixel_rects(scene, grid, None)
    base, per_row, per_col = _local_steps(scene, grid)
    local_direction = scene.prim_matrix @ np.asarray(direction, dtype=float)
    slot, names = _slots(scene, rects, mask_structures)
    integral, masks = _project_kernel(
        grid.shape[0], grid.shape[1], rects, base, per_row, per_col, local_direction,
        scene.prim_type, scene.prim_length, scene.prim_slope, scene.prim_group,
        scene.prim_negative, scene.group_weight, scene.group_structure, scene.group_outer,
        slot, len(names), float(clip[0]), float(clip[1]),
        *_direction_terms(scene, local_direction),
    )  # fmt: skip
    hit = masks.reshape(len(names), -1).any(axis=1) if names else np.zeros(0, dtype=bool)
    found = {name: masks[i] for i, name in enumerate(names) if hit[i]}
    return integral, found


def section(
    scene: PackedScene, grid: Grid, mask_structures: Sequence[str] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Material id (see `MATERIAL_IDS`) at every point of the planar `grid`, later structures
    painted over earlier ones, and the mask of each structure the plane cuts."""
    normal = np.cross(grid.row_step, grid.col_step)
    normal /= np.linalg.norm(normal)
    rects = _pixel_rects(scene, grid, normal)
    base, per_row, per_col = _local_steps(scene, grid)
    slot, names = _slots(scene, rects, mask_structures)
    materials, masks = _section_kernel(
        grid.shape[0], grid.shape[1], rects, base, per_row, per_col, scene.prim_type,
        scene.prim_length, scene.prim_slope, scene.prim_group, scene.prim_negative,
        scene.group_material, scene.group_structure, scene.group_outer, slot, len(names),
    )  # fmt: skip
    hit = masks.reshape(len(names), -1).any(axis=1) if names else np.zeros(0, dtype=bool)
    found = {name: masks[i] for i, name in enumerate(names) if hit[i]}
    return materials, found
