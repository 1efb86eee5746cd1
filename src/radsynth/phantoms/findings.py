"""Findings, implants and foreign bodies placed into a phantom body.

`add_finding` returns a new `Body` with the finding built from the same convex solids as the
anatomy, and the names of the structures that make up the finding (their masks are the finding's
masks; they are called `finding_<kind>` or `finding_<kind>_<part>`). Positions come from the body's
landmarks and from the solids of the named structures, in the reference coordinates of a 1750 mm
body (millimetres; x to the patient's left, y anterior, z up), so the body's scale applies to them.

Physics follows the projector: a structure adds (mu(material) - mu(parent)) over its chord. Where a
finding replaces bone (a lesion, a stem, a screw) the bone gets the solid as a cut-out and the
finding displaces the bone's parent, which is exact for lesions that thin the cortex too.

Implants and devices are built in `_finding_devices.py`, on the geometry helpers and bone
breaks of `_finding_geometry.py`.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from radsynth.phantoms._finding_devices import (
    _add_ecg_leads,
    _add_hip_prosthesis,
    _add_jewellery,
    _add_knee_prosthesis,
    _add_pacemaker,
    _add_plate_and_screws,
    pacemaker_side,
)
from radsynth.phantoms._finding_geometry import (
    _SIGN,
    _X,
    _Z,
    REGION_JOINTS,
    SIDES,
    Builder,
    Out,
    Quals,
    Rng,
    Site,
    _break_bone,
    _fracture_bone,
    _fracture_motion,
    _frame,
    _grid_points,
    _inside,
    _limb_side,
    _locate_break,
    _longest_frustum,
    _place,
    _radius_at,
    _random_rotation,
    _replaced,
    _samples,
    _sub_frustum,
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
from radsynth.vocabulary.labels import (
    FINDING_SITES,
    LIMB_SIDED_KINDS,
    Finding,
    check_finding,
    side_named_by,
)


def _add_fracture(
    body: Body, site: Site, quals: Quals, rng: Rng, side: Site, near: str | None = None
) -> Out:
    assert site is not None
    if "non_displaced" in quals and len(set(quals)) > 1:
        raise ValueError("a fracture cannot be non_displaced and displaced or angulated; pick one")
    side = _limb_side(side, rng)
    name = _fracture_bone(body, site, side, rng)
    brk = _locate_break(body, body.structure(name), site, side, rng, near)
    proximal, distal, disc_prox, disc_dist = _break_bone(body, name, brk, rng, site)
    rotation, shift = _fracture_motion(brk, site, quals, rng)
    distal = distal.moved(rotation, brk.point, shift)
    disc_dist = disc_dist.moved(rotation, brk.point, shift)
    parent = proximal.parent
    mask = Structure("finding_fracture", "finding", "haemorrhage", parent, [disc_prox, disc_dist])
    return _replaced(body.structures, name, [mask, proximal, distal]), [mask.name]


# --------------------------------------------------------------------------- bone tumour


def _add_bone_tumour(
    body: Body, site: Site, quals: Quals, rng: Rng, side: Site, near: str | None = None
) -> Out:
    """A lytic (default) or sclerotic lesion in the diaphysis or metaphysis of a long bone; in
    the metaphysis by the joint `near`, where one is given (see `REGION_JOINTS`).

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
    if near is not None:  # the metaphysis by that joint, in the regional radiograph's field
        point = near_joint_point(body, bone, near, side, rng)
        t = float(np.clip(np.dot(point - shaft.start, shaft.axis), 0.04 * length, 0.96 * length))
    elif rng.random() < 0.5:  # metaphysis: near either end of the shaft
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


# --------------------------------------------------------------------------- entry point


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
    own = side_named_by(finding.site)
    if side is not None and own is not None and own != side:
        raise ValueError(f"site {finding.site!r} is on the {own} side; drop side={side!r}")
    if side is not None and finding.side is not None and finding.side != side:
        raise ValueError(f"the finding is on the {finding.side} side; drop side={side!r}")


def add_finding(
    body: Body,
    finding: Finding,
    rng: np.random.Generator,
    *,
    side: str | None = None,
    region: str | None = None,
) -> tuple[Body, list[str]]:
    """`place_finding` without the placed finding: the new body and the finding's structure
    names."""
    new_body, names, _ = place_finding(body, finding, rng, side=side, region=region)
    return new_body, names


def place_finding(
    body: Body,
    finding: Finding,
    rng: np.random.Generator,
    *,
    side: str | None = None,
    region: str | None = None,
) -> tuple[Body, list[str], Finding]:
    """Add one finding, implant or foreign body to a copy of `body`.

    `finding.site` picks the structure (limb sites take `side`, 'left' or 'right', or else the
    finding's own side, random when neither is given; a missing site is drawn from the kind's
    sites); qualifiers shape it (see `FINDING_QUALIFIERS`). `region`: the region imaged, if
    one; a fracture or tumour of a long bone's shaft is then placed near the region's joint
    (`REGION_JOINTS`), in its field. Sizes are in mm for the 1750 mm reference body and scale
    with it. Returns the new body, the names of the structures whose masks are the finding's
    masks and the finding as placed: its site and, for the kinds in `LIMB_SIDED_KINDS`, the
    side it was drawn on. The input body is left unchanged; the same `rng` state gives the same
    result.
    """
    _check(finding, side)
    side = side or finding.side
    sites = FINDING_SITES[finding.kind]
    site = finding.site if finding.site is not None or not sites else str(rng.choice(sites))
    if finding.kind in LIMB_SIDED_KINDS:
        # The builder's own first draw, made here so that the placed finding can name it.
        side = pacemaker_side(side, rng) if finding.kind == "pacemaker" else _limb_side(side, rng)
    builder = _BUILDERS[finding.kind]
    near = REGION_JOINTS.get(region) if region is not None else None
    if near is not None and finding.kind in ("fracture", "bone_tumour", "plate_and_screws"):
        builder = partial(builder, near=near)  # type: ignore[call-arg]
    structures, names = builder(body, site, tuple(finding.qualifiers), rng, side)
    structures, names = _own_names(body, structures, names)
    placed = replace(finding, site=site, side=side if finding.kind in LIMB_SIDED_KINDS else None)
    return body.with_structures(structures), names, placed


def _own_names(
    body: Body, structures: list[Structure], names: list[str]
) -> tuple[list[Structure], list[str]]:
    """A second finding of a kind (a left and a right pleural effusion) gets names of its own,
    "finding_pleural_effusion_2", so that each keeps its mask (the reader's lesion maps unite
    a kind's names, `finding_<kind>` and `finding_<kind>_<part>`)."""
    earlier = {id(s) for s in body.structures}
    taken = set(body.structure_names())
    renamed: dict[str, str] = {}
    out = []
    for structure in structures:
        name = structure.name
        if id(structure) not in earlier and name.startswith("finding_") and name in taken:
            number = 2
            while f"{name}_{number}" in taken:
                number += 1
            renamed[name] = f"{name}_{number}"
            structure = replace(structure, name=renamed[name])
        taken.add(structure.name)
        out.append(structure)
    return out, [renamed.get(name, name) for name in names]
