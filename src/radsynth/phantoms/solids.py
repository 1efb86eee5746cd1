"""Convex solids the phantom body is built from, and structures made of them.

Two convex primitives cover the anatomy: ellipsoids (skull, condyles, carpals, organs) and
elliptic frusta (tapered elliptic cylinders: long-bone shafts, limbs, ribs as chains, vessels).
A line meets a convex solid in one interval, which is what makes projections exact and fast
(`radsynth.phantoms.raycast`). A `Structure` is a union of such solids minus another union
(e.g. a lung minus the diaphragm dome), in one material, optionally with an inner union in a
second material (a bone: cortical shell around trabecular bone).

Coordinates are body coordinates in millimetres: x towards the patient's left, y anterior,
z superior, with the soles of the feet at z = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

ELLIPSOID = 0
FRUSTUM = 1


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise ValueError("zero-length direction vector")
    return vector / norm


def rotation_about(axis: np.ndarray | tuple[float, float, float], angle_rad: float) -> np.ndarray:
    """Rotation matrix about `axis` by `angle_rad` (right-hand rule)."""
    x, y, z = _unit(np.asarray(axis, dtype=float))
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    C = 1.0 - c
    return np.array(
        [
            [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
            [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
            [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
        ]
    )


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid with centre (mm), semi-axes (mm) and a rotation whose columns are its axes."""

    center: np.ndarray
    radii: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def local_transform(self) -> tuple[np.ndarray, np.ndarray]:
        """Matrix M and origin c with local = M @ (p - c); inside when |local| <= 1."""
        matrix, origin, *_ = _ellipsoid_arrays([self])
        return matrix[0], origin[0]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (mm)."""
        *_, low, high = _ellipsoid_arrays([self])
        return low[0], high[0]

    def shrunk(self, thickness: float) -> Ellipsoid:
        """The same ellipsoid with every semi-axis reduced by `thickness` mm (kept >= 30 %)."""
        return replace(self, radii=np.maximum(self.radii - thickness, 0.3 * self.radii))

    def moved(self, rotation: np.ndarray, pivot: np.ndarray, shift: np.ndarray) -> Ellipsoid:
        """Rigidly rotate about `pivot`, then translate by `shift` (mm)."""
        center = rotation @ (self.center - pivot) + pivot + shift
        return replace(self, center=center, rotation=rotation @ self.rotation)

    def scaled(self, factor: float) -> Ellipsoid:
        return replace(self, radii=self.radii * factor)


@dataclass(frozen=True)
class Frustum:
    """Tapered elliptic cylinder from `start` to `end` (mm).

    The cross-section at `start` has semi-axes (`a`, `b`) along (`u`, `v`), both perpendicular to
    the axis; it scales linearly to `taper` times that size at `end`.
    """

    start: np.ndarray
    end: np.ndarray
    a: float
    b: float
    taper: float = 1.0
    u: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))

    @property
    def axis(self) -> np.ndarray:
        return _unit(self.end - self.start)

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.end - self.start))

    def local_transform(self) -> tuple[np.ndarray, np.ndarray]:
        """Matrix M and origin with local = M @ (p - start): x, y scaled by a, b; z in mm."""
        matrix, origin, *_ = _frustum_arrays([self])
        return matrix[0], origin[0]

    @property
    def slope(self) -> float:
        """k in the inside test x^2 + y^2 <= (1 + k z)^2 (1/mm)."""
        return (self.taper - 1.0) / self.length

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (mm)."""
        *_, low, high = _frustum_arrays([self])
        return low[0], high[0]

    def shrunk(self, thickness: float) -> Frustum:
        """The same frustum with its cross-section reduced by `thickness` mm (kept >= 30 %)."""
        a = max(self.a - thickness, 0.3 * self.a)
        b = max(self.b - thickness, 0.3 * self.b)
        end_a = max(self.a * self.taper - thickness, 0.3 * self.a * self.taper)
        return replace(self, a=a, b=b, taper=end_a / a)

    def moved(self, rotation: np.ndarray, pivot: np.ndarray, shift: np.ndarray) -> Frustum:
        start = rotation @ (self.start - pivot) + pivot + shift
        end = rotation @ (self.end - pivot) + pivot + shift
        return replace(self, start=start, end=end, u=rotation @ self.u)

    def scaled(self, factor: float) -> Frustum:
        return replace(self, a=self.a * factor, b=self.b * factor)


Solid = Ellipsoid | Frustum


def ellipsoid(
    center: tuple[float, float, float] | np.ndarray,
    radii: tuple[float, float, float] | np.ndarray,
    rotation: np.ndarray | None = None,
) -> Ellipsoid:
    """Ellipsoid from plain sequences (mm)."""
    return Ellipsoid(
        np.asarray(center, dtype=float),
        np.asarray(radii, dtype=float),
        np.eye(3) if rotation is None else np.asarray(rotation, dtype=float),
    )


def frustum(
    start: tuple[float, float, float] | np.ndarray,
    end: tuple[float, float, float] | np.ndarray,
    a: float,
    b: float | None = None,
    taper: float = 1.0,
    u: tuple[float, float, float] | np.ndarray = (1.0, 0.0, 0.0),
) -> Frustum:
    """Frustum from plain sequences (mm); `b` defaults to `a` (circular section)."""
    return Frustum(
        np.asarray(start, dtype=float),
        np.asarray(end, dtype=float),
        float(a),
        float(a if b is None else b),
        float(taper),
        np.asarray(u, dtype=float),
    )


@dataclass
class Structure:
    """A named anatomical structure, device or finding.

    `parts` (union) minus `cutouts` (union) is filled with `material`, displacing `parent`
    (the material that would be there without it). `inner_parts` (union), which must lie inside
    the parts, hold `inner_material`: for bones, trabecular bone inside the cortical shell.
    `category` groups structures: envelope, organ, bone, vessel, device, finding, marker.
    """

    name: str
    category: str
    material: str
    parent: str
    parts: Sequence[Solid]
    cutouts: Sequence[Solid] = field(default_factory=list)
    inner_material: str | None = None
    inner_parts: Sequence[Solid] = field(default_factory=list)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lows, highs = zip(*(part.bounds() for part in self.parts), strict=True)
        return np.min(lows, axis=0), np.max(highs, axis=0)

    def moved(self, rotation: np.ndarray, pivot: np.ndarray, shift: np.ndarray) -> Structure:
        """A rigidly moved copy (rotation about `pivot`, then `shift`, in mm)."""
        return replace(
            self,
            parts=[p.moved(rotation, pivot, shift) for p in self.parts],
            cutouts=[p.moved(rotation, pivot, shift) for p in self.cutouts],
            inner_parts=[p.moved(rotation, pivot, shift) for p in self.inner_parts],
        )


def bone(
    name: str,
    pieces: Sequence[tuple[Solid, float]],
    parent: str = "muscle",
    trabecular: str = "trabecular_bone",
) -> Structure:
    """A bone from (solid, cortical thickness in mm) pieces: cortical shell, trabecular core."""
    return Structure(
        name=name,
        category="bone",
        material="cortical_bone",
        parent=parent,
        parts=[solid for solid, _ in pieces],
        inner_material=trabecular,
        inner_parts=[solid.shrunk(thickness) for solid, thickness in pieces],
    )


def _ellipsoid_arrays(solids: list[Ellipsoid]) -> tuple[np.ndarray, ...]:
    rotation = np.stack([e.rotation for e in solids])  # (n, 3, 3), columns are the axes
    radii = np.stack([e.radii for e in solids])  # (n, 3)
    centre = np.stack([e.center for e in solids])
    matrix = np.transpose(rotation / radii[:, None, :], (0, 2, 1))
    half = np.sqrt(((rotation * radii[:, None, :]) ** 2).sum(axis=2))
    zeros = np.zeros(len(solids))
    return matrix, centre, zeros, zeros, centre - half, centre + half


def _frustum_arrays(solids: list[Frustum]) -> tuple[np.ndarray, ...]:
    start = np.stack([f.start for f in solids])
    end = np.stack([f.end for f in solids])
    a = np.array([f.a for f in solids])[:, None]
    b = np.array([f.b for f in solids])[:, None]
    taper = np.array([f.taper for f in solids])
    ref = np.stack([f.u for f in solids])
    length = np.linalg.norm(end - start, axis=1)
    if np.any(length <= 0.0):
        raise ValueError("a frustum needs distinct start and end points")
    w = (end - start) / length[:, None]
    u = ref - (ref * w).sum(axis=1, keepdims=True) * w
    degenerate = np.linalg.norm(u, axis=1) < 1e-6
    if degenerate.any():  # reference along the axis: any perpendicular will do
        helper = np.where(np.abs(w[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        fallback = helper - (helper * w).sum(axis=1, keepdims=True) * w
        u = np.where(degenerate[:, None], fallback, u)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(w, u)
    matrix = np.stack([u / a, v / b, w], axis=1)
    half0 = np.sqrt((u * a) ** 2 + (v * b) ** 2)
    half1 = half0 * taper[:, None]
    low = np.minimum(start - half0, end - half1)
    high = np.maximum(start + half0, end + half1)
    return matrix, start, length, (taper - 1.0) / length, low, high


def solid_arrays(solids: list[Solid]) -> dict[str, np.ndarray]:
    """Kind, world-to-local matrix, origin, length, slope and bounds of each solid, in order:
    the arrays the projection kernels read. One implementation serves single solids too."""
    kinds = np.array([ELLIPSOID if isinstance(x, Ellipsoid) else FRUSTUM for x in solids])
    out = {
        "prim_type": kinds.astype(np.int64),
        "prim_matrix": np.empty((len(solids), 3, 3)),
        "prim_origin": np.empty((len(solids), 3)),
        "prim_length": np.zeros(len(solids)),
        "prim_slope": np.zeros(len(solids)),
        "prim_low": np.empty((len(solids), 3)),
        "prim_high": np.empty((len(solids), 3)),
    }
    keys = ("prim_matrix", "prim_origin", "prim_length", "prim_slope", "prim_low", "prim_high")
    ellipsoids = [i for i, x in enumerate(solids) if isinstance(x, Ellipsoid)]
    frusta = [i for i, x in enumerate(solids) if isinstance(x, Frustum)]
    batches = (
        (ellipsoids, lambda: _ellipsoid_arrays([solids[i] for i in ellipsoids])),  # type: ignore[misc]
        (frusta, lambda: _frustum_arrays([solids[i] for i in frusta])),  # type: ignore[misc]
    )
    for where, build in batches:
        if where:
            for key, value in zip(keys, build(), strict=True):
                out[key][where] = value
    return out
