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
        return (self.rotation / self.radii[np.newaxis, :]).T, self.center

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        half = np.sqrt(((self.rotation * self.radii[np.newaxis, :]) ** 2).sum(axis=1))
        return self.center - half, self.center + half

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

    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Orthonormal (u, v, w): w along the axis, u as close to `self.u` as possible."""
        w = self.axis
        u = self.u - np.dot(self.u, w) * w
        if np.linalg.norm(u) < 1e-6:  # reference parallel to the axis: pick any perpendicular
            helper = np.array([1.0, 0.0, 0.0]) if abs(w[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
            u = helper - np.dot(helper, w) * w
        u = _unit(u)
        return u, np.cross(w, u), w

    def local_transform(self) -> tuple[np.ndarray, np.ndarray]:
        """Matrix M and origin with local = M @ (p - start): x, y scaled by a, b; z in mm."""
        u, v, w = self.frame()
        return np.stack([u / self.a, v / self.b, w]), self.start

    @property
    def slope(self) -> float:
        """k in the inside test x^2 + y^2 <= (1 + k z)^2 (1/mm)."""
        return (self.taper - 1.0) / self.length

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        u, v, _ = self.frame()
        lows, highs = [], []
        for centre, scale in ((self.start, 1.0), (self.end, self.taper)):
            half = np.sqrt((u * self.a * scale) ** 2 + (v * self.b * scale) ** 2)
            lows.append(centre - half)
            highs.append(centre + half)
        return np.minimum(*lows), np.maximum(*highs)

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
