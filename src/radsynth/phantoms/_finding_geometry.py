"""Geometry shared by the findings: solid helpers, bone breaks and the builder types.

Internal to `radsynth.phantoms.findings` and its implant and device builders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from radsynth.phantoms.body import Body
from radsynth.phantoms.solids import (
    Ellipsoid,
    Frustum,
    Solid,
    Structure,
    ellipsoid,
    frustum,
    rotation_about,
)

SIDES: tuple[str, ...] = ("left", "right")
_SIGN = {"left": 1.0, "right": -1.0}
_X, _Y, _Z = np.eye(3)

Site = str | None
Quals = tuple[str, ...]
Rng = np.random.Generator
Out = tuple[list[Structure], list[str]]  # the new structure list and the finding's names
Builder = Callable[[Body, Site, Quals, Rng, Site], Out]


def _limb_side(side: str | None, rng: Rng) -> str:
    return side if side is not None else str(rng.choice(SIDES))


# --------------------------------------------------------------------------- geometry helpers


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, float) / float(np.linalg.norm(v))


def _inside_solid(solid: Solid, points: np.ndarray) -> np.ndarray:
    matrix, origin = solid.local_transform()
    q = (points - origin) @ matrix.T
    if isinstance(solid, Ellipsoid):
        return np.asarray((q**2).sum(axis=1) <= 1.0)
    z = q[:, 2]
    scale = 1.0 + solid.slope * z
    return np.asarray((z >= 0.0) & (z <= solid.length) & (q[:, 0] ** 2 + q[:, 1] ** 2 <= scale**2))


def _inside(structure: Structure, points: np.ndarray, cutouts: bool = True) -> np.ndarray:
    """Which points (N, 3 in mm) lie in the structure's parts minus (optionally) its cut-outs."""
    points = np.atleast_2d(points)
    inside = np.zeros(len(points), dtype=bool)
    for part in structure.parts:
        inside |= _inside_solid(part, points)
    if cutouts:
        for cut in structure.cutouts:
            inside &= ~_inside_solid(cut, points)
    return inside


def _sphere_points(n: int) -> np.ndarray:
    """n near-uniform unit vectors (Fibonacci sphere)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (1.0 + np.sqrt(5.0)) * k
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


_SHELL = _sphere_points(96)


def _samples(solid: Ellipsoid) -> np.ndarray:
    """Points on the surface, on a half-size shell and at the centre of an ellipsoid (mm)."""
    unit = np.vstack([_SHELL, 0.5 * _SHELL, np.zeros((1, 3))])
    return np.asarray(solid.center + (unit * solid.radii) @ solid.rotation.T)


def _extent(solid: Ellipsoid, direction: np.ndarray) -> float:
    """Half-extent of an ellipsoid along a unit direction (mm)."""
    return float(np.linalg.norm((solid.rotation.T @ direction) * solid.radii))


def _centre(solid: Solid) -> np.ndarray:
    return solid.center if isinstance(solid, Ellipsoid) else 0.5 * (solid.start + solid.end)


def _sub_frustum(f: Frustum, t0: float, t1: float) -> Frustum:
    """The piece of a frustum between t0 and t1 mm along its axis."""
    s0, s1 = 1.0 + f.slope * t0, 1.0 + f.slope * t1
    return replace(f, start=f.start + f.axis * t0, end=f.start + f.axis * t1,
                   a=f.a * s0, b=f.b * s0, taper=s1 / s0)  # fmt: skip


def _perpendicular(axis: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """The unit vector perpendicular to `axis` closest to `preferred`."""
    v = preferred - np.dot(preferred, axis) * axis
    if np.linalg.norm(v) < 1e-6:
        v = np.cross(axis, _X if abs(axis[0]) < 0.9 else _Y)
    return _unit(v)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    return rotation_about(_unit(rng.normal(size=3)), float(rng.uniform(0.0, np.pi)))


def _frame(axis: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """Rotation with columns (lateral, normal, axis): ellipsoid radii (lat, normal, along)."""
    lat = _perpendicular(axis, lateral)
    return np.stack([lat, np.cross(axis, lat), axis], axis=1)


def _spline(waypoints: list[np.ndarray], step: float) -> np.ndarray:
    """Points every `step` mm or so along a Catmull-Rom curve through the waypoints."""
    p = [waypoints[0], *waypoints, waypoints[-1]]
    out = [waypoints[0]]
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        n = max(2, int(np.ceil(np.linalg.norm(p2 - p1) / step)))
        for t in np.linspace(0.0, 1.0, n + 1)[1:]:
            out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                              + (3 * p1 - p0 - 3 * p2 + p3) * t**3))  # fmt: skip
    return np.array(out)


def _chain(points: np.ndarray, radius: float) -> list[Solid]:
    """A smooth tube (wire, lead, bead string) through points: frusta with balls at the joints."""
    parts: list[Solid] = [
        frustum(p, q, radius) for p, q in zip(points[:-1], points[1:], strict=True)
        if np.linalg.norm(q - p) > 1e-3
    ]  # fmt: skip
    parts += [ellipsoid(p, (radius, radius, radius)) for p in points[1:-1]]
    return parts


def _exit_distance(structure: Structure, origin: np.ndarray, direction: np.ndarray) -> float:
    """Distance (mm, 0.5 mm resolution) from `origin`, inside the structure's parts, to where a
    ray along `direction` first leaves them (the skin surface for the `body` envelope)."""
    ts = np.arange(0.0, 600.0, 0.5)
    inside = _inside(structure, origin + ts[:, None] * _unit(direction), cutouts=False)
    if not inside[0]:
        raise ValueError(f"point {origin.round(1)} is outside {structure.name!r}")
    outside = np.flatnonzero(~inside)
    return float(ts[outside[0]] - 0.25) if outside.size else 600.0


def _grid_points(structure: Structure, spacing: float = 4.0) -> np.ndarray:
    """Points of a regular grid (mm spacing) inside a structure (parts minus cut-outs)."""
    low, high = structure.bounds()
    axes = [np.arange(lo + spacing / 2, hi, spacing) for lo, hi in zip(low, high, strict=True)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return points[_inside(structure, points)]


def _place(
    candidates: np.ndarray,
    rng: np.random.Generator,
    make: Callable[[np.ndarray], list[Ellipsoid]],
    fits: Callable[[np.ndarray], bool],
    what: str,
) -> list[Ellipsoid]:
    """Try candidate centres in random order until the solids made there fit."""
    for index in rng.permutation(len(candidates))[:400]:
        solids = make(candidates[index])
        if all(fits(_samples(s)) for s in solids):
            return solids
    raise ValueError(f"no room for the {what} in this body; use another site or a smaller size")


def _replaced(structures: list[Structure], name: str, new: list[Structure]) -> list[Structure]:
    index = [s.name for s in structures].index(name)
    return structures[:index] + new + structures[index + 1 :]


def _with_cutouts(structure: Structure, cutouts: Sequence[Solid]) -> Structure:
    """A new structure (fresh packing cache) with extra cut-outs."""
    return replace(structure, cutouts=[*structure.cutouts, *cutouts])


def _longest_frustum(bone: Structure) -> int:
    lengths = [p.length if isinstance(p, Frustum) else -1.0 for p in bone.parts]
    return int(np.argmax(lengths))


def _radius_at(f: Frustum, t: float) -> float:
    return min(f.a, f.b) * (1.0 + f.slope * t)


# --------------------------------------------------------------------------- fractures


@dataclass(frozen=True)
class _Break:
    """Where a bone breaks: the piece (index into its parts), a point on the piece's axis (mm),
    the direction from the proximal to the distal fragment, and the bone radius there (mm)."""

    index: int
    point: np.ndarray
    axis: np.ndarray
    radius: float


def _frustum_break(bone: Structure, index: int, t: float, towards: np.ndarray | None) -> _Break:
    f = bone.parts[index]
    assert isinstance(f, Frustum)
    axis = f.axis if towards is None or np.dot(f.axis, towards) >= 0 else -f.axis
    return _Break(index, f.start + f.axis * t, axis, max(f.a, f.b) * (1.0 + f.slope * t))


# Distal fracture sites: (joint, the next joint up, nearest and farthest mm above the joint's
# centre). The distal radius 15-25 mm above the wrist; the distal tibia (metaphysis) and fibula
# (at and above the syndesmosis, Weber B/C) 15-45 mm above the ankle, inside its radiograph.
_DISTAL_BREAKS: dict[str, tuple[str, str, float, float]] = {
    "distal_radius": ("wrist", "elbow", 15.0, 25.0),
    "distal_tibia": ("ankle", "knee", 15.0, 45.0),
    "distal_fibula": ("ankle", "knee", 15.0, 45.0),
}


# The joint at the centre of a regional radiograph's field: a break or lesion of a long bone's
# shaft asked for on that region lies this many mm (nearest, farthest) from the joint along the
# bone, inside the field, not anywhere along the shaft (a femoral fracture on a knee radiograph
# is a supracondylar one, not a midshaft one off the film).
REGION_JOINTS: dict[str, str] = {
    "knee": "knee",
    "wrist": "wrist",
    "hand": "wrist",
    "ankle": "ankle",
    "shoulder": "shoulder",
    "chest": "shoulder",
    "pelvis": "hip",
}
LONG_BONES = ("femur", "tibia", "fibula", "humerus", "radius", "ulna")
NEAR_JOINT_MM = (20.0, 50.0)


def near_joint_point(
    body: Body, bone: Structure, joint: str, side: str, rng: np.random.Generator
) -> np.ndarray:
    """A point `NEAR_JOINT_MM` from the `side` `joint` (a landmark name without its side),
    towards the middle of `bone` (reference coordinates, mm)."""
    centre = body.reference_landmarks[f"{side}_{joint}"]
    low, high = bone.bounds()
    return centre + _unit((low + high) / 2.0 - centre) * rng.uniform(*NEAR_JOINT_MM)


def _locate_break(
    body: Body,
    bone: Structure,
    site: str,
    side: str,
    rng: np.random.Generator,
    near: str | None = None,
) -> _Break:
    """Pick the fracture level for a site (shaft, neck, distal radius, distal tibia or fibula,
    clavicle, patella); a long bone's shaft breaks near the joint `near` where one is given
    (see `REGION_JOINTS`)."""
    lm = body.reference_landmarks
    if site == "patella":
        e = bone.parts[0]
        assert isinstance(e, Ellipsoid)
        level = rng.uniform(-0.25, 0.25) * _extent(e, _Z)
        return _Break(0, e.center - _Z * level, -_Z, _extent(e, _Y))
    frusta = [i for i, p in enumerate(bone.parts) if isinstance(p, Frustum)]
    if site == "femoral_neck":
        hip = lm[f"{side}_hip"]
        index = min(frusta, key=lambda i: _end_distance(bone.parts[i], hip))
        f = bone.parts[index]
        assert isinstance(f, Frustum)
        head = max((p for p in bone.parts if isinstance(p, Ellipsoid)),
                   key=lambda e: -np.linalg.norm(e.center - hip))  # fmt: skip
        head_r = float(np.max(head.radii))
        from_hip = rng.uniform(head_r + 2.0, head_r + 0.5 * max(f.length - head_r, 6.0))
        near_start = np.linalg.norm(f.start - hip) <= np.linalg.norm(f.end - hip)
        t = from_hip if near_start else f.length - from_hip
        return _frustum_break(bone, index, t, f.axis if near_start else -f.axis)
    if site in _DISTAL_BREAKS:
        joint_name, proximal_name, lo, hi = _DISTAL_BREAKS[site]
        joint, proximal = lm[f"{side}_{joint_name}"], lm[f"{side}_{proximal_name}"]
        target = joint + _unit(proximal - joint) * rng.uniform(lo, hi)
        index, t = _nearest_axis_point(bone, frusta, target)
        return _frustum_break(bone, index, t, joint - proximal)
    if site == "clavicle":
        lengths = np.array([bone.parts[i].length for i in frusta])  # type: ignore[union-attr]
        at = rng.uniform(0.4, 0.65) * lengths.sum()
        k = int(np.searchsorted(np.cumsum(lengths), at))
        return _frustum_break(bone, frusta[k], at - float(np.cumsum(lengths)[k] - lengths[k]), None)
    if near is not None and site in LONG_BONES:
        index, t = _nearest_axis_point(bone, frusta, near_joint_point(body, bone, near, side, rng))
        return _frustum_break(bone, index, t, None)
    index = _longest_frustum(bone)
    lo, hi = (0.5, 0.85) if site == "metacarpal" else (0.25, 0.75)
    return _frustum_break(bone, index, rng.uniform(lo, hi) * bone.parts[index].length, None)  # type: ignore[union-attr]


def _end_distance(solid: Solid, point: np.ndarray) -> float:
    if not isinstance(solid, Frustum) or solid.length > 100.0:
        return np.inf
    return float(min(np.linalg.norm(solid.start - point), np.linalg.norm(solid.end - point)))


def _nearest_axis_point(
    bone: Structure, frusta: list[int], target: np.ndarray
) -> tuple[int, float]:
    best: tuple[float, int, float] = (np.inf, frusta[0], 0.0)
    for i in frusta:
        f = bone.parts[i]
        assert isinstance(f, Frustum)
        t = float(np.clip(np.dot(target - f.start, f.axis), 0.0, f.length))
        best = min(best, (float(np.linalg.norm(f.start + f.axis * t - target)), i, t))
    return best[1], best[2]


def _split(
    bone: Structure, brk: _Break, normal: np.ndarray, gap: float
) -> tuple[Structure, Structure]:
    """Cut a bone into a proximal and a distal fragment along the plane through the break point
    with the given normal, leaving a lucent gap (mm). Pieces go to the side their centre lies on;
    the broken piece goes to both, each cut by a slab beyond the fracture plane."""
    if len(bone.inner_parts) != len(bone.parts):
        raise ValueError(f"{bone.name!r} is not a two-layer bone; it cannot be fractured")
    extra = 1.2 * brk.radius + 3.0
    sides: dict[bool, tuple[list[Solid], list[Solid]]] = {True: ([], []), False: ([], [])}
    for i, (part, inner) in enumerate(zip(bone.parts, bone.inner_parts, strict=True)):
        if i != brk.index:
            proximal = float(np.dot(_centre(part) - brk.point, brk.axis)) < 0.0
            sides[proximal][0].append(part)
            sides[proximal][1].append(inner)
            continue
        for solid, slot in ((part, 0), (inner, 1)):
            if isinstance(solid, Frustum):
                t = float(np.dot(brk.point - solid.start, solid.axis))
                before = _sub_frustum(solid, 0.0, min(solid.length, t + extra))
                after = _sub_frustum(solid, max(0.0, t - extra), solid.length)
                forward = np.dot(solid.axis, brk.axis) >= 0.0
                sides[True][slot].append(before if forward else after)
                sides[False][slot].append(after if forward else before)
            else:
                sides[True][slot].append(solid)
                sides[False][slot].append(solid)
    reach = 3.0 * brk.radius + 10.0
    fragments = []
    for proximal, sign in ((True, 1.0), (False, -1.0)):
        start = brk.point - sign * normal * gap / 2.0  # each fragment ends short of the gap
        slab = frustum(start, start + sign * normal * reach, reach)
        name = bone.name if proximal else f"{bone.name}_distal_fragment"
        parts, cores = sides[proximal]
        fragments.append(replace(bone, name=name, parts=parts, inner_parts=cores,
                                 cutouts=[*bone.cutouts, slab]))  # fmt: skip
    return fragments[0], fragments[1]


def _sideways(axis: np.ndarray, preferred: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A direction perpendicular to `axis`, within 35 degrees of +/- the preferred one."""
    base = _perpendicular(axis, preferred) * rng.choice([-1.0, 1.0])
    return rotation_about(axis, np.deg2rad(rng.uniform(-35.0, 35.0))) @ base


def _fracture_motion(
    brk: _Break, site: str, quals: Quals, rng: Rng
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (about the break point) and shift (mm) of the distal fragment."""
    preferred = -_Z if site == "clavicle" else _X
    rotation, shift = np.eye(3), np.zeros(3)
    if "displaced" in quals:
        direction = brk.axis if site == "patella" else _sideways(brk.axis, preferred, rng)
        shift = direction * rng.uniform(3.0, 10.0)
    if "angulated" in quals:
        bend = _sideways(brk.axis, preferred, rng)
        rotation = rotation_about(np.cross(brk.axis, bend), np.deg2rad(rng.uniform(8.0, 25.0)))
    return rotation, shift


def _fracture_bone(body: Body, site: str, side: str, rng: np.random.Generator) -> str:
    if site == "metacarpal":
        ray = int(rng.choice([2, 3, 4, 5], p=[0.15, 0.2, 0.25, 0.4]))
        return f"{side}_metacarpal_{ray}"
    bone = {
        "femoral_neck": "femur",
        "distal_radius": "radius",
        "distal_tibia": "tibia",
        "distal_fibula": "fibula",
    }.get(site, site)
    return f"{side}_{bone}"


def _break_bone(
    body: Body, name: str, brk: _Break, rng: np.random.Generator, site: str = ""
) -> tuple[Structure, Structure, Solid, Solid]:
    """Fragments and the two halves of the fracture-line disc (proximal, distal) for a break."""
    bone = body.structure(name)
    gap = rng.uniform(1.0, 3.0)
    tilt = np.deg2rad(rng.uniform(0.0, 10.0) if site == "patella" else rng.uniform(8.0, 30.0))
    tilt_axis = _perpendicular(brk.axis, _Y) * rng.choice([-1.0, 1.0])
    normal = rotation_about(tilt_axis, tilt) @ brk.axis
    proximal, distal = _split(bone, brk, normal, gap)
    disc_r = brk.radius / np.cos(tilt) + 1.0
    half = gap / 2.0 + 1.2
    disc_prox = frustum(brk.point - normal * half, brk.point, disc_r)
    disc_dist = frustum(brk.point, brk.point + normal * half, disc_r)
    return proximal, distal, disc_prox, disc_dist
