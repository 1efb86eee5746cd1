"""Findings, implants and foreign bodies placed into a phantom body.

`add_finding` returns a new `Body` with the finding built from the same convex solids as the
anatomy, and the names of the structures that make up the finding (their masks are the finding's
masks; they are called `finding_<kind>` or `finding_<kind>_<part>`). Positions come from the body's
landmarks and from the solids of the named structures, in the reference coordinates of a 1750 mm
body (millimetres; x to the patient's left, y anterior, z up), so the body's scale applies to them.

Physics follows the projector: a structure adds (mu(material) - mu(parent)) over its chord. Where a
finding replaces bone (a lesion, a stem, a screw) the bone gets the solid as a cut-out and the
finding displaces the bone's parent, which is exact for lesions that thin the cortex too.
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
from radsynth.vocabulary.labels import (
    FINDING_SITES,
    Finding,
    check_finding,
)

SIDES: tuple[str, ...] = ("left", "right")
_SIGN = {"left": 1.0, "right": -1.0}
_X, _Y, _Z = np.eye(3)

Site = str | None
Quals = tuple[str, ...]
Rng = np.random.Generator
Out = tuple[list[Structure], list[str]]  # the new structure list and the finding's names
Builder = Callable[[Body, Site, Quals, Rng, Site], Out]


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


def _locate_break(
    body: Body, bone: Structure, site: str, side: str, rng: np.random.Generator
) -> _Break:
    """Pick the fracture level for a site (shaft, neck, distal radius, clavicle, patella)."""
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
    if site == "distal_radius":
        wrist, elbow = lm[f"{side}_wrist"], lm[f"{side}_elbow"]
        target = wrist + _unit(elbow - wrist) * rng.uniform(15.0, 25.0)
        index, t = _nearest_axis_point(bone, frusta, target)
        return _frustum_break(bone, index, t, wrist - elbow)
    if site == "clavicle":
        lengths = np.array([bone.parts[i].length for i in frusta])  # type: ignore[union-attr]
        at = rng.uniform(0.4, 0.65) * lengths.sum()
        k = int(np.searchsorted(np.cumsum(lengths), at))
        return _frustum_break(bone, frusta[k], at - float(np.cumsum(lengths)[k] - lengths[k]), None)
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
    bone = {"femoral_neck": "femur", "distal_radius": "radius"}.get(site, site)
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


def _add_fracture(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    assert site is not None
    if "non_displaced" in quals and len(set(quals)) > 1:
        raise ValueError("a fracture cannot be non_displaced and displaced or angulated; pick one")
    side = _limb_side(side, rng)
    name = _fracture_bone(body, site, side, rng)
    brk = _locate_break(body, body.structure(name), site, side, rng)
    proximal, distal, disc_prox, disc_dist = _break_bone(body, name, brk, rng, site)
    rotation, shift = _fracture_motion(brk, site, quals, rng)
    distal = distal.moved(rotation, brk.point, shift)
    disc_dist = disc_dist.moved(rotation, brk.point, shift)
    parent = proximal.parent
    mask = Structure("finding_fracture", "finding", "haemorrhage", parent, [disc_prox, disc_dist])
    return _replaced(body.structures, name, [mask, proximal, distal]), [mask.name]


# --------------------------------------------------------------------------- bone tumour


def _add_bone_tumour(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """A lytic (default) or sclerotic lesion in the diaphysis or metaphysis of a long bone.

    The lesion is cut out of the bone and displaces the bone's parent: a lytic lesion may reach
    to within 1.2 mm of the periosteal surface (endosteal scalloping, thinned cortex); a
    sclerotic one stays inside the trabecular core."""
    assert site is not None
    if len(set(quals)) > 1:
        raise ValueError("a bone tumour is either lytic or sclerotic; pick one")
    sclerotic = "sclerotic" in quals
    side = _limb_side(side, rng)
    bone = body.structure(f"{side}_{site}")
    index = _longest_frustum(bone)
    shaft, core = bone.parts[index], bone.inner_parts[index]
    assert isinstance(shaft, Frustum) and isinstance(core, Frustum)
    length = shaft.length
    if rng.random() < 0.5:  # metaphysis: near either end of the shaft
        t = rng.uniform(0.1, 0.2) * length
        t = t if rng.random() < 0.5 else length - t
    else:
        t = rng.uniform(0.3, 0.7) * length
    room = min(t, length - t) - 2.0
    limit = (
        min(_radius_at(core, 0.0), _radius_at(core, core.length)) - 0.5
        if sclerotic
        else min(_radius_at(shaft, 0.0), _radius_at(shaft, length)) - 1.2
    )
    r_perp = rng.uniform(0.6 if sclerotic else 0.75, 0.95) * limit
    r_axis = min(rng.uniform(1.5, 3.0) * r_perp, room)
    rotation = _frame(shaft.axis, shaft.u)
    offset = rotation[:, 0] * rng.uniform(-1.0, 1.0) * (limit - r_perp)
    lesion = ellipsoid(shaft.start + shaft.axis * t + offset,
                       (r_perp, r_perp * rng.uniform(0.8, 1.0), r_axis), rotation)  # fmt: skip
    material = "tumour_sclerotic" if sclerotic else "tumour_lytic"
    tumour = Structure("finding_bone_tumour", "finding", material, bone.parent, [lesion])
    new_bone = _with_cutouts(bone, [lesion])
    return _replaced(body.structures, bone.name, [new_bone, tumour]), [tumour.name]


# --------------------------------------------------------------------------- lungs


def _lung(body: Body, site: str) -> Structure:
    return body.structure(f"{site.split('_')[0]}_lung")


def _lobe_points(lung: Structure, site: str) -> np.ndarray:
    """Grid points of the lung in the site's region: upper and lower halves for the upper and
    lower lobes, the anterior middle third for the right middle lobe (mm)."""
    points = _grid_points(lung)
    z = points[:, 2]
    if site.endswith("upper_lobe"):
        return points[z >= np.median(z)]
    if site.endswith("lower_lobe"):
        return points[z < np.median(z)]
    if site == "right_middle_lobe":
        lo, hi = np.percentile(z, [30.0, 62.0])
        band = points[(z >= lo) & (z <= hi)]
        return band[band[:, 1] >= np.median(band[:, 1])]
    return points


def _add_lung_nodule(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """A nodule (6-25 mm) or a lobulated mass (30-60 mm) of soft-tissue density in a lung."""
    assert site is not None
    if len(set(quals)) > 1:
        raise ValueError("a lung lesion is either a nodule or a mass; pick one")
    lung = _lung(body, site)
    mass = "mass" in quals
    radius = rng.uniform(15.0, 30.0) if mass else rng.uniform(3.0, 12.5)

    def make(centre: np.ndarray) -> list[Ellipsoid]:
        rot = _random_rotation(rng)
        main = ellipsoid(centre, radius * rng.uniform(0.85, 1.1, 3), rot)
        if not mass:
            return [main]
        bumps = [
            ellipsoid(
                centre + _unit(rng.normal(size=3)) * radius * 0.55,
                radius * rng.uniform(0.4, 0.6, 3),
                _random_rotation(rng),
            )  # fmt: skip
            for _ in range(int(rng.integers(2, 4)))
        ]
        return [main, *bumps]

    def fits(points: np.ndarray) -> bool:
        return bool(_inside(lung, points).all())

    solids = _place(_lobe_points(lung, site), rng, make, fits, "lung lesion")
    nodule = Structure("finding_lung_nodule", "finding", "nodule", "lung", list(solids))
    return [*body.structures, nodule], [nodule.name]


def _add_consolidation(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """Airspace opacity: a cluster of 4-8 overlapping ellipsoids, each inside the lung."""
    assert site is not None
    lung = _lung(body, site)
    region = _lobe_points(lung, site)

    def fits(points: np.ndarray) -> bool:
        return bool(_inside(lung, points).all())

    def blob(centre: np.ndarray, size: float) -> list[Ellipsoid]:
        return [ellipsoid(centre, size * rng.uniform(0.6, 1.2, 3), _random_rotation(rng))]

    seed = _place(region, rng, lambda c: blob(c, rng.uniform(22.0, 32.0)), fits, "consolidation")
    parts = list(seed)
    for _ in range(60):
        if len(parts) >= 8:
            break
        anchor = parts[int(rng.integers(len(parts)))].center
        candidate = blob(anchor + rng.normal(0.0, 18.0, 3), rng.uniform(12.0, 28.0))[0]
        if fits(_samples(candidate)):
            parts.append(candidate)
    opacity = Structure("finding_consolidation", "finding", "consolidation", "lung", list(parts))
    return [*body.structures, opacity], [opacity.name]


def _add_pleural_effusion(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """Fluid in the lowest part of a pleural space: the lung's pieces below a level, minus the
    lung's own cut-outs (diaphragm, heart) and minus a wide ellipsoid whose underside forms the
    meniscus, so the fluid climbs the lateral wall and fills the costophrenic angle."""
    assert site is not None
    lung = _lung(body, site)
    points = _grid_points(lung, 3.0)
    z_low = float(points[:, 2].min())
    # Moderate effusions: deep enough to rise above the dome and blunt the costophrenic angle
    # on a frontal film (smaller ones hide behind the diaphragm in projection).
    depth = rng.uniform(80.0, 140.0)
    z_top = z_low + depth
    pieces: list[Solid] = []
    for part in lung.parts:
        if isinstance(part, Frustum) and min(part.start[2], part.end[2]) < z_top:
            up = part.axis[2]
            t = (z_top - part.start[2]) / up if abs(up) > 1e-6 else part.length
            pieces.append(_sub_frustum(part, 0.0, float(np.clip(t, 1.0, part.length))))
    level = points[np.abs(points[:, 2] - z_top) < 4.0]
    lo, hi = level.min(axis=0), level.max(axis=0)
    half = 0.5 * (hi - lo) * 1.15
    rz = 1.2 * depth + 10.0
    centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, z_top - 0.5 * depth + rz])
    meniscus = ellipsoid(centre, (half[0], half[1], rz))
    fluid = Structure("finding_pleural_effusion", "finding", "fluid", "lung", pieces,
                      cutouts=[*lung.cutouts, meniscus])  # fmt: skip
    return [*body.structures, fluid], [fluid.name]


# --------------------------------------------------------------------------- head


def _add_intracranial_haemorrhage(
    body: Body, site: Site, quals: Quals, rng: Rng, side: Site
) -> Out:
    """Intraparenchymal (default: a haematoma in the hemisphere's white matter), subdural (a
    crescent along the inner table) or epidural (a biconvex lens against the inner table)."""
    assert site is not None
    if len(set(quals)) > 1:
        raise ValueError("pick one haemorrhage type: intraparenchymal, subdural or epidural")
    s = _SIGN[site.split("_")[0]]
    cavity = body.structure("csf_space").parts[0]
    assert isinstance(cavity, Ellipsoid)
    if "subdural" in quals:
        thickness = rng.uniform(5.0, 14.0)
        inner = replace(cavity, center=cavity.center - _X * s * thickness)
        floor = cavity.center[2] - rng.uniform(10.0, 30.0)
        below = frustum((cavity.center[0], cavity.center[1], floor),
                        (cavity.center[0], cavity.center[1], floor - 200.0), 200.0)  # fmt: skip
        bleed = Structure("finding_intracranial_haemorrhage", "finding", "haemorrhage", "csf",
                          [cavity], cutouts=[inner, below])  # fmt: skip
    elif "epidural" in quals:
        bleed = _epidural(cavity, s, rng)
    else:
        bleed = _intraparenchymal(body, s, rng)
    return [*body.structures, bleed], [bleed.name]


def _surface_point(e: Ellipsoid, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a ray from the centre meets the ellipsoid, and the outward normal there."""
    matrix, _ = e.local_transform()
    d = _unit(direction)
    point = e.center + d / float(np.linalg.norm(matrix @ d))
    return point, _unit(matrix.T @ matrix @ (point - e.center))


def _epidural(cavity: Ellipsoid, s: float, rng: np.random.Generator) -> Structure:
    """Lens = ellipsoid centred on the inner table, minus tangent slabs outside the cavity (the
    complement of a convex cavity is the union of its outer half-spaces)."""
    direction = np.array([s, rng.uniform(-0.4, 0.4), rng.uniform(0.0, 0.5)])
    centre, normal = _surface_point(cavity, direction)
    thickness, extent = rng.uniform(9.0, 18.0), rng.uniform(24.0, 34.0)
    rotation = _frame(normal, _Z)[:, [2, 0, 1]]  # columns: normal, two tangents
    lens = ellipsoid(centre, (thickness, extent, extent * rng.uniform(0.8, 1.0)), rotation)
    slabs: list[Solid] = []
    for du in np.linspace(-45.0, 45.0, 7):
        for dv in np.linspace(-45.0, 45.0, 7):
            target = centre + rotation[:, 1] * du + rotation[:, 2] * dv
            point, n = _surface_point(cavity, target - cavity.center)
            slabs.append(frustum(point, point + n * 30.0, 40.0))
    return Structure("finding_intracranial_haemorrhage", "finding", "haemorrhage", "csf",
                     [lens], cutouts=slabs)  # fmt: skip


def _intraparenchymal(body: Body, s: float, rng: np.random.Generator) -> Structure:
    white = body.structure("white_matter")
    ventricles = body.structure("lateral_ventricles")
    points = _grid_points(white, 3.0)
    points = points[points[:, 0] * s > 8.0]
    radius = rng.uniform(8.0, 20.0)

    def make(centre: np.ndarray) -> list[Ellipsoid]:
        return [ellipsoid(centre, radius * rng.uniform(0.75, 1.15, 3), _random_rotation(rng))]

    def fits(samples: np.ndarray) -> bool:
        return bool(_inside(white, samples).all() and not _inside(ventricles, samples).any())

    solids = _place(points, rng, make, fits, "haematoma")
    return Structure("finding_intracranial_haemorrhage", "finding", "haemorrhage",
                     "white_matter", list(solids))  # fmt: skip


# --------------------------------------------------------------------------- knee


def _add_joint_effusion(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """Fluid distending the suprapatellar recess: an ellipsoid above the patella, between the
    quadriceps tendon and the anterior distal femur, clear of both bones. It takes the place of
    the suprapatellar fat pads (parent fat), which is why it shows on a lateral knee."""
    side = _limb_side(side, rng)
    knee = body.reference_landmarks[f"{side}_knee"]
    femur = body.structure(f"{side}_femur")
    patella = body.structure(f"{side}_patella")
    scale = rng.uniform(0.8, 1.2)
    tilt = rotation_about(_X, np.deg2rad(-rng.uniform(5.0, 15.0)))
    for _ in range(40):
        pouch = ellipsoid(knee + np.array([0.0, 31.0, 96.0]), np.array([30.0, 12.0, 32.0]) * scale,
                          tilt)  # fmt: skip
        samples = _samples(pouch)
        if not (_inside(femur, samples).any() or _inside(patella, samples).any()):
            break
        scale *= 0.93
    fluid = Structure("finding_joint_effusion", "finding", "fluid", "fat", [pouch])
    return [*body.structures, fluid], [fluid.name]


# --------------------------------------------------------------------------- implants


def _add_hip_prosthesis(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """Total hip replacement: the femoral head and neck are removed; a cobalt-chrome ball
    (28-36 mm) on a titanium stem tapering down the femoral canal; a titanium hemispherical
    cup with a polyethylene liner in the acetabulum (inclination about 45 degrees)."""
    assert site is not None
    side = site.split("_")[0]
    s = _SIGN[side]
    hip = body.reference_landmarks[f"{side}_hip"]
    femur = body.structure(f"{side}_femur")
    touching = [i for i, p in enumerate(femur.parts) if _touches(p, hip)]
    neck = max((p for i in touching if isinstance(p := femur.parts[i], Frustum)),
               key=lambda f: f.length)  # fmt: skip
    neck_end = neck.end if np.linalg.norm(neck.end - hip) > neck.length / 2 else neck.start
    shaft_index = _longest_frustum(femur)
    shaft, core = femur.parts[shaft_index], femur.inner_parts[shaft_index]
    assert isinstance(shaft, Frustum) and isinstance(core, Frustum)
    canal = min(_radius_at(core, 0.0) - 0.8, 7.5)
    seat = shaft.start + shaft.axis * 20.0
    stem_parts: list[Solid] = [
        frustum(hip, hip + (neck_end - hip) * 0.9, 6.5, taper=1.3),
        frustum(neck_end, seat, 10.0, 8.0, taper=canal / 10.0),
        frustum(seat, shaft.start + shaft.axis * rng.uniform(100.0, 140.0), canal, taper=0.55),
        ellipsoid(neck_end, (8.0, 8.0, 8.0)),
    ]
    kept = [i for i in range(len(femur.parts)) if i not in touching]
    new_femur = replace(femur, parts=[femur.parts[i] for i in kept],
                        inner_parts=[femur.inner_parts[i] for i in kept],
                        cutouts=[*femur.cutouts, *stem_parts])  # fmt: skip
    ball_r = rng.uniform(14.0, 18.0)
    cup_r = min(26.0, ball_r + rng.uniform(5.0, 7.0) + 3.0)
    opening = _unit(np.array([s * np.sin(np.deg2rad(rng.uniform(38.0, 48.0))),
                              np.sin(np.deg2rad(rng.uniform(10.0, 20.0))), -0.75]))  # fmt: skip
    rim = frustum(hip, hip + opening * (cup_r + 5.0), cup_r + 5.0)

    def ball(r: float) -> Ellipsoid:
        return ellipsoid(hip, (r, r, r))

    parent = femur.parent
    parts = [
        Structure("finding_hip_prosthesis_stem", "device", "titanium", parent, stem_parts),
        Structure(
            "finding_hip_prosthesis_ball", "device", "cobalt_chrome", parent, [ball(ball_r)]
        ),  # fmt: skip
        Structure(
            "finding_hip_prosthesis_cup",
            "device",
            "titanium",
            parent,
            [ball(cup_r)],
            cutouts=[ball(cup_r - 3.0), rim],
        ),  # fmt: skip
        Structure(
            "finding_hip_prosthesis_liner",
            "device",
            "polyethylene",
            parent,
            [ball(cup_r - 3.0)],
            cutouts=[ball(ball_r + 0.3), rim],
        ),  # fmt: skip
    ]
    return [*_replaced(body.structures, femur.name, [new_femur]), *parts], [p.name for p in parts]


def _touches(solid: Solid, point: np.ndarray) -> bool:
    if isinstance(solid, Ellipsoid):
        return bool(np.linalg.norm(solid.center - point) < 3.0)
    ends = (solid.start, solid.end)
    return bool(solid.length < 100.0 and min(np.linalg.norm(e - point) for e in ends) < 3.0)


def _slab(start: np.ndarray, direction: np.ndarray, a: float, b: float | None = None) -> Frustum:
    """A thick disc beyond a plane: everything within (a, b) mm of the axis, 200 mm deep."""
    u = _Y if abs(direction[0]) > 0.9 else _X
    return frustum(start, start + _unit(direction) * 200.0, a, b, u=u)


def _add_knee_prosthesis(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """Total knee replacement: the distal femur is resected with distal, anterior and posterior
    cuts and capped by a cobalt-chrome femoral component (the condyles' outer shape, J-shaped
    on the lateral view); the tibial plateau is resected and carries a titanium tray with a
    stem; a polyethylene insert fills the joint space between them."""
    side = _limb_side(side, rng)
    knee = body.reference_landmarks[f"{side}_knee"]
    kx, ky, kz = knee
    femur, tibia = body.structure(f"{side}_femur"), body.structure(f"{side}_tibia")
    condyles = [p for p in femur.parts
                if isinstance(p, Ellipsoid) and np.linalg.norm(p.center - knee) < 50.0]  # fmt: skip
    y_ant, y_post = ky + rng.uniform(14.0, 17.0), ky - rng.uniform(26.0, 29.0)
    z_cut = kz + rng.uniform(8.0, 10.0)
    cuts = [
        _slab(np.array([kx, ky, z_cut]), -_Z, 90.0),
        _slab(np.array([kx, y_ant, kz - 45.0]), _Y, 90.0, 100.0),
        _slab(np.array([kx, y_post, kz - 55.0]), -_Y, 90.0, 100.0),
    ]
    core = frustum((kx, (y_ant + y_post) / 2, z_cut), (kx, (y_ant + y_post) / 2, kz + 90.0),
                   200.0, (y_ant - y_post) / 2)  # fmt: skip
    top = _slab(np.array([kx, ky, kz + 55.0]), _Z, 150.0)
    component = Structure("finding_knee_prosthesis_femoral", "device", "cobalt_chrome",
                          femur.parent, list(condyles), cutouts=[core, top])  # fmt: skip
    bottom = min(float(p.center[2] - _extent(p, _Z)) for p in condyles)
    z_tray = kz - rng.uniform(8.0, 10.0)
    stem: Solid = frustum((kx, ky, z_tray), (kx, ky + 2.0, z_tray - rng.uniform(40.0, 60.0)), 8.0,
                   taper=0.6)  # fmt: skip
    tray = frustum((kx, ky - 2.0, z_tray), (kx, ky - 2.0, z_tray + 3.0), 35.0, 24.0)
    insert = frustum((kx, ky - 2.0, z_tray + 3.0), (kx, ky - 2.0, bottom - 0.3), 34.0, 23.0)
    parts = [
        component,
        Structure(
            "finding_knee_prosthesis_tibial", "device", "titanium", tibia.parent, [tray, stem]
        ),  # fmt: skip
        Structure(
            "finding_knee_prosthesis_insert", "device", "polyethylene", tibia.parent, [insert]
        ),  # fmt: skip
    ]
    structures = _replaced(body.structures, femur.name, [_with_cutouts(femur, cuts)])
    tibia_cuts = [_slab(np.array([kx, ky, z_tray]), _Z, 90.0), stem]
    structures = _replaced(structures, tibia.name, [_with_cutouts(tibia, tibia_cuts)])
    return [*structures, *parts], [p.name for p in parts]


_PLATE_SIDE = {"femur": _X, "tibia": -_X, "fibula": _X, "humerus": _X, "radius": None}


def _add_plate_and_screws(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """A steel plate on the lateral (tibia: medial; radius: volar) cortex of the shaft with 4-8
    screws across the bone; in most cases over a fixed fracture at the plate's centre."""
    assert site is not None
    side = _limb_side(side, rng)
    name = f"{side}_{site}"
    bone = body.structure(name)
    index = _longest_frustum(bone)
    shaft = bone.parts[index]
    assert isinstance(shaft, Frustum)
    preferred = _PLATE_SIDE[site]
    out = _perpendicular(shaft.axis, _Y if preferred is None else preferred * _SIGN[side])
    length = min(rng.uniform(0.4, 0.65) * shaft.length, 200.0)
    t_mid = rng.uniform(length / 2 + 5.0, shaft.length - length / 2 - 5.0)
    if site in ("fibula", "radius"):  # ankle (Weber B) and distal radius plates sit distally
        length = min(length, 110.0)
        t_mid = shaft.length - length / 2 - 5.0
    r_mid = max(shaft.a, shaft.b) * (1.0 + shaft.slope * t_mid)
    thick, width = np.clip(0.13 * r_mid, 1.2, 2.2), np.clip(0.5 * r_mid, 3.5, 8.0)
    centre = shaft.start + shaft.axis * t_mid + out * (r_mid + thick + 0.3)
    plate = frustum(centre - shaft.axis * length / 2, centre + shaft.axis * length / 2,
                    thick, width, u=out)  # fmt: skip
    n = int(rng.integers(4, 9))
    half = length / 2 - 8.0
    ts = np.concatenate([np.linspace(t_mid - half, t_mid - 8.0, n // 2),
                         np.linspace(t_mid + 8.0, t_mid + half, n - n // 2)])  # fmt: skip
    screw_r = float(np.clip(0.16 * r_mid, 1.5, 2.5))
    shafts: list[Solid] = []
    heads: list[Solid] = []
    for t in ts:
        r = max(shaft.a, shaft.b) * (1.0 + shaft.slope * t)
        p = shaft.start + shaft.axis * t
        top = p + out * (r + 2 * thick + 0.3)
        shafts.append(frustum(top, p - out * (r + 2.5), screw_r))
        heads.append(frustum(top, top + out * 2.5, screw_r * 1.8))
    metal = [
        Structure("finding_plate_and_screws_plate", "device", "steel", bone.parent, [plate]),
        Structure(
            "finding_plate_and_screws_screws", "device", "steel", bone.parent, shafts + heads
        ),  # fmt: skip
    ]
    if rng.random() < 0.6:
        brk = _frustum_break(bone, index, t_mid, None)
        proximal, distal, disc_a, disc_b = _break_bone(body, name, brk, rng)
        line = Structure("finding_plate_and_screws_fracture", "finding", "haemorrhage",
                         bone.parent, [disc_a, disc_b])  # fmt: skip
        new = [line, _with_cutouts(proximal, shafts), _with_cutouts(distal, shafts)]
        metal.append(line)
    else:
        new = [_with_cutouts(bone, shafts)]
    structures = _replaced(body.structures, name, new)
    return [*structures, *metal[:2]], [m.name for m in metal]


# --------------------------------------------------------------------------- devices on the chest


def _skin(body: Body) -> Structure:
    """The outer envelope: every structure that displaces air (trunk, limbs), as one union."""
    parts = [p for s in body.structures if s.parent == "air" for p in s.parts]
    return Structure("skin", "envelope", "fat", "air", parts)


def _skin_y(body: Body, x: float, z: float) -> float:
    """y of the anterior skin surface at (x, z) (mm)."""
    return float(_exit_distance(_skin(body), np.array([x, 0.0, z]), _Y))


def _heart_points(body: Body) -> np.ndarray:
    """Grid points at least 8 mm inside the heart (mm)."""
    heart = body.structure("heart")
    points = _grid_points(heart, 4.0)
    keep = np.ones(len(points), dtype=bool)
    for offset in np.vstack([np.eye(3), -np.eye(3)]) * 8.0:
        keep &= _inside(heart, points + offset)
    return points[keep]


def _add_pacemaker(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """A titanium generator (about 50 x 45 x 7 mm) in the infraclavicular subcutaneous fat
    (left in 85 % when no side is given), with one or two leads (2 mm wire) through the
    subclavian vein and superior vena cava into the right ventricular apex (and right atrium)."""
    side = side if side is not None else ("left" if rng.random() < 0.85 else "right")
    s = _SIGN[side]
    clavicle = body.structure(f"{side}_clavicle")
    z_clavicle = float(np.mean([_centre(p)[2] for p in clavicle.parts]))
    x, z = s * rng.uniform(60.0, 85.0), z_clavicle - rng.uniform(35.0, 55.0)
    centre = np.array([x, _skin_y(body, x, z) - rng.uniform(6.0, 9.0), z])
    rotation = rotation_about(_Y, np.deg2rad(rng.uniform(-20.0, 20.0)))
    generator = Structure("finding_pacemaker_generator", "device", "titanium", "fat",
                          [ellipsoid(centre, (25.0, 3.5, 22.5), rotation)],
                          inner_material="steel",
                          inner_parts=[ellipsoid(centre, (17.0, 1.8, 13.0), rotation)])  # fmt: skip
    notch = body.reference_landmarks["sternal_notch"]
    heart = _heart_points(body)
    atrium = heart[heart[:, 0] <= np.percentile(heart[:, 0], 5.0)].mean(axis=0)
    apex = heart[np.argmax(heart[:, 0] - heart[:, 2] + 0.5 * heart[:, 1])]
    appendage = heart[heart[:, 0] < atrium[0] + 20.0]
    appendage = appendage[np.argmax(appendage[:, 2] + 0.5 * appendage[:, 1])]
    route = [
        centre + rotation @ np.array([-s * 14.0, 0.0, 16.0]),
        notch + np.array([s * 65.0, -20.0, -10.0]),
        notch + np.array([25.0 if s > 0 else -35.0, -35.0, -25.0]),
        notch + np.array([-22.0, -50.0, -70.0]),
        atrium,
    ]
    wires = _chain(_spline([*route, 0.5 * (atrium + apex) + 8.0 * _Y, apex], 6.0), 1.0)
    if rng.random() < 0.5:  # dual chamber: a second lead curls into the right atrial appendage
        wires += _chain(_spline([*route[:-1], atrium + 6.0 * _X, appendage], 6.0), 1.0)
    leads = Structure("finding_pacemaker_leads", "device", "steel", "blood", wires)
    return [*body.structures, generator, leads], [generator.name, leads.name]


# Electrode spots on the anterior trunk (x, z in mm): right and left infraclavicular, left and
# right lower chest, and a precordial spot.
_ECG_SPOTS = ((-70.0, 1425.0), (70.0, 1425.0), (85.0, 1170.0), (-85.0, 1170.0), (30.0, 1280.0))


def _add_ecg_leads(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """3-5 ECG electrodes on the chest skin (a 3-4 mm steel snap with a thin ring round it)
    and their wires (1 mm) looping off to the edge of the field."""
    snaps: list[Solid] = []
    rings: list[Solid] = []
    holes: list[Solid] = []
    wires: list[Solid] = []
    for x0, z0 in _ECG_SPOTS[: int(rng.integers(3, 6))]:
        x, z = x0 + rng.normal(0.0, 8.0), z0 + rng.normal(0.0, 8.0)
        y = _skin_y(body, x, z)
        snaps.append(frustum((x, y + 0.3, z), (x, y + 2.3, z), rng.uniform(1.5, 2.0)))
        rings.append(frustum((x, y, z), (x, y + 0.6, z), 6.5))
        holes.append(frustum((x, y - 1.0, z), (x, y + 2.0, z), 5.5))
        out = 1.0 if x >= 0 else -1.0
        route = [np.array([x, y + 2.3, z]), np.array([1.2 * x + out * 30.0, y + 10.0, z - 30.0]),
                 np.array([out * 330.0, y + 20.0, z - rng.uniform(40.0, 90.0)])]  # fmt: skip
        wires += _chain(_spline(route, 10.0), 0.5)
    parts = [
        Structure("finding_ecg_leads_electrodes", "device", "steel", "air", snaps),
        Structure("finding_ecg_leads_rings", "device", "steel", "air", rings, cutouts=holes),
        Structure("finding_ecg_leads_wires", "device", "steel", "air", wires),
    ]
    return [*body.structures, *parts], [p.name for p in parts]


def _add_jewellery(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """A gold ring on a proximal phalanx, a necklace of beads round the neck or a bracelet
    round the wrist (qualifier ring, necklace or bracelet; random when none is given)."""
    if len(set(quals)) > 1:
        raise ValueError("pick one piece of jewellery: ring, necklace or bracelet")
    kind = quals[0] if quals else str(rng.choice(["ring", "necklace", "bracelet"]))
    if kind == "necklace":
        solids, cutouts = _necklace(body, rng), list[Solid]()
    else:
        solids, cutouts = _band(body, kind, _limb_side(side, rng), rng)
    piece = Structure(f"finding_jewellery_{kind}", "device", "gold", "fat", solids, cutouts)
    return [*body.structures, piece], [piece.name]


def _band(body: Body, kind: str, side: str, rng: Rng) -> tuple[list[Solid], list[Solid]]:
    """A ring round a proximal phalanx or a bracelet round the distal forearm, fitted to the
    skin 0.5-1.5 mm clear of it: an outer frustum with a concentric cut-out."""
    if kind == "ring":
        ray = int(rng.choice([2, 3, 4, 5], p=[0.1, 0.2, 0.6, 0.1]))
        phalanx = body.structure(f"{side}_proximal_phalanx_{ray}")
        f = phalanx.parts[_longest_frustum(phalanx)]
        assert isinstance(f, Frustum)
        axis, centre = f.axis, f.start + f.axis * rng.uniform(0.3, 0.5) * f.length
        width, clearance = rng.uniform(2.5, 5.0), 0.5
    else:
        wrist, elbow = (body.reference_landmarks[f"{side}_{j}"] for j in ("wrist", "elbow"))
        axis = _unit(wrist - elbow)
        centre = wrist - axis * rng.uniform(15.0, 35.0)
        width, clearance = rng.uniform(5.0, 10.0), 1.5
    u = _perpendicular(axis, _X)
    skin, radii = _skin(body), []
    for d in (np.cross(axis, u), u):  # a finger's width is its dorsal-palmar thickness
        plus, minus = (_exit_distance(skin, centre, e) for e in (d, -d))
        centre = centre + d * (plus - minus) / 2.0
        radii.append((plus + minus) / 2.0 + clearance)
        if kind == "ring":
            radii.append(radii[0])
            break
    radii.reverse()
    thick = rng.uniform(1.2, 2.0)
    ends = (centre - axis * width / 2, centre + axis * width / 2)
    outer = frustum(*ends, radii[0] + thick, radii[1] + thick, u=u)
    hole = frustum(ends[0] - axis, ends[1] + axis, radii[0], radii[1], u=u)
    return [outer], [hole]


def _necklace(body: Body, rng: Rng) -> list[Solid]:
    """Beads (2-3.5 mm) on a loop round the neck, high at the back, dropping onto the chest."""
    notch = body.reference_landmarks["sternal_notch"]
    envelope = _skin(body)
    bead = rng.uniform(2.0, 3.5)
    rise = rng.uniform(25.0, 40.0)  # back of the loop above the sternal notch (mm)
    z_back, drop = notch[2] + rise, rise + rng.uniform(10.0, 50.0)
    loop = []
    for angle in np.linspace(0.0, 2.0 * np.pi, 49)[:-1]:
        z = z_back - drop * (1.0 + np.cos(angle)) / 2.0
        origin = np.array([0.0, -9.0, z])
        direction = np.array([np.sin(angle), np.cos(angle), 0.0])
        loop.append(origin + direction * (_exit_distance(envelope, origin, direction) + bead))
    path = _spline([*loop, loop[0]], 1.0)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    stations = np.arange(0.0, arc[-1] - bead, 2.2 * bead)
    centres = [path[np.searchsorted(arc, a)] for a in stations]
    return [ellipsoid(c, (bead, bead, bead)) for c in centres]


# --------------------------------------------------------------------------- entry point


def _limb_side(side: str | None, rng: Rng) -> str:
    return side if side is not None else str(rng.choice(SIDES))


_BUILDERS: dict[str, Builder] = {
    "fracture": _add_fracture,
    "bone_tumour": _add_bone_tumour,
    "lung_nodule": _add_lung_nodule,
    "intracranial_haemorrhage": _add_intracranial_haemorrhage,
    "consolidation": _add_consolidation,
    "pleural_effusion": _add_pleural_effusion,
    "joint_effusion": _add_joint_effusion,
    "hip_prosthesis": _add_hip_prosthesis,
    "knee_prosthesis": _add_knee_prosthesis,
    "plate_and_screws": _add_plate_and_screws,
    "pacemaker": _add_pacemaker,
    "ecg_leads": _add_ecg_leads,
    "jewellery": _add_jewellery,
}


def _check(finding: Finding, side: str | None) -> None:
    check_finding(finding)  # again: a Finding can be built around its own check
    if side is not None and side not in SIDES:
        raise ValueError(f"side must be 'left', 'right' or None, got {side!r}")
    own = (finding.site or "").split("_")[0]
    if side is not None and own in SIDES and own != side:
        raise ValueError(f"site {finding.site!r} is on the {own} side; drop side={side!r}")


def add_finding(
    body: Body, finding: Finding, rng: np.random.Generator, *, side: str | None = None
) -> tuple[Body, list[str]]:
    """Add one finding, implant or foreign body to a copy of `body`.

    `finding.site` picks the structure (limb sites take `side`, 'left' or 'right', random when
    None; a missing site is drawn from the kind's sites); qualifiers shape it (see
    `FINDING_QUALIFIERS`). Sizes are in mm for the 1750 mm reference body and scale with it.
    Returns the new body and the names of the structures whose masks are the finding's masks.
    The input body is left unchanged; the same `rng` state gives the same result.
    """
    _check(finding, side)
    sites = FINDING_SITES[finding.kind]
    site = finding.site if finding.site is not None or not sites else str(rng.choice(sites))
    structures, names = _BUILDERS[finding.kind](body, site, tuple(finding.qualifiers), rng, side)
    return body.with_structures(structures), names
