"""Implants and devices placed into a phantom body: hip and knee prostheses, plates and
screws, pacemaker, ECG leads and jewellery. Internal to `radsynth.phantoms.findings`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from radsynth.phantoms._finding_geometry import (
    _SIGN,
    _X,
    _Y,
    _Z,
    Out,
    Quals,
    Rng,
    Site,
    _break_bone,
    _centre,
    _chain,
    _exit_distance,
    _extent,
    _frustum_break,
    _grid_points,
    _inside,
    _limb_side,
    _longest_frustum,
    _perpendicular,
    _radius_at,
    _replaced,
    _spline,
    _unit,
    _with_cutouts,
    near_joint_point,
)
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


# The longest plate asked on a regional radiograph: a periarticular plate, inside the field.
NEAR_JOINT_PLATE_MM = 80.0
_PLATE_SIDE = {"femur": _X, "tibia": -_X, "fibula": _X, "humerus": _X, "radius": None}


def _add_plate_and_screws(
    body: Body, site: Site, quals: Quals, rng: Rng, side: Site, near: str | None = None
) -> Out:
    """A steel plate on the lateral (tibia: medial; radius: volar) cortex of the shaft with 4-8
    screws across the bone; in most cases over a fixed fracture at the plate's centre. Asked on
    a regional radiograph (`near`: the joint at its field's centre, `REGION_JOINTS`), the plate
    is at most 80 mm long and its centre lies as near that joint as the shaft allows: a tibial
    plate on a knee radiograph is a proximal one, not one at the ankle off the film."""
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
    if near is not None:
        length = min(length, NEAR_JOINT_PLATE_MM)
        point = near_joint_point(body, bone, near, side, rng)
        t_near = float(np.dot(point - shaft.start, shaft.axis))
        t_mid = float(np.clip(t_near, length / 2 + 2.0, shaft.length - length / 2 - 2.0))
    elif site in ("fibula", "radius"):  # ankle (Weber B) and distal radius plates sit distally
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


def pacemaker_side(side: str | None, rng: np.random.Generator) -> str:
    """`side`, or the side a pacemaker is drawn on when none is given: left in 85 %."""
    return side if side is not None else ("left" if rng.random() < 0.85 else "right")


def _add_pacemaker(body: Body, site: Site, quals: Quals, rng: Rng, side: Site) -> Out:
    """A titanium generator (about 50 x 45 x 7 mm) in the infraclavicular subcutaneous fat
    (left in 85 % when no side is given), with one or two leads (2 mm wire) through the
    subclavian vein and superior vena cava into the right ventricular apex (and right atrium)."""
    side = pacemaker_side(side, rng)
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
