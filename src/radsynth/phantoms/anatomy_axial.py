"""Bones of the axial skeleton: skull, mandible, teeth, vertebrae, ribs, sternum, pelvis, sacrum.

Millimetres, body coordinates (x to the patient's left, y anterior, z up), for a 1750 mm adult.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radsynth.phantoms.solids import (
    Solid,
    Structure,
    bone,
    ellipsoid,
    frustum,
    rotation_about,
)


@dataclass(frozen=True)
class Vertebra:
    """One vertebral level: body centre (mm), body half-width, half-depth and height (mm)."""

    name: str
    center: np.ndarray
    half_width: float
    half_depth: float
    height: float


def spine_levels(scale_z: float = 1.0) -> list[Vertebra]:
    """C1..C7, T1..T12, L1..L5 with the sagittal curves (cervical and lumbar lordosis,
    thoracic kyphosis) as the y position of each body."""
    levels: list[Vertebra] = []
    # (name, z centre, half-width, half-depth, height, y centre)
    cervical: list[tuple[float, float, float, float, float]] = [
        (1612, 20, 9, 10, -2),
        (1590, 17, 9, 16, 0),
    ] + [(1570 - 17 * i, 16 + 0.5 * i, 8.5, 12.5, 2 + (2 - abs(i - 2)) * 1.5) for i in range(5)]
    for i, (z, hw, hd, h, y) in enumerate(cervical, start=1):
        levels.append(Vertebra(f"c{i}", np.array([0.0, y - 10.0, z * scale_z]), hw, hd, h))
    for i in range(1, 13):
        t = (i - 1) / 11.0
        z = 1478 - (1478 - 1196) * t
        y = -38.0 - 22.0 * np.sin(np.pi * t)  # kyphosis: most posterior at mid-thoracic levels
        levels.append(
            Vertebra(f"t{i}", np.array([0.0, y, z * scale_z]), 15 + 6 * t, 11 + 5 * t, 17 + 7 * t)
        )
    for i in range(1, 6):
        t = (i - 1) / 4.0
        z = 1163 - 38.0 * (i - 1)
        y = -38.0 + 16.0 * np.sin(np.pi * min(t * 1.15, 1.0))  # lordosis: forward at L3-L4
        levels.append(
            Vertebra(f"l{i}", np.array([0.0, y, z * scale_z]), 22 + 4 * t, 16 + 2 * t, 27 + t)
        )
    return levels


def vertebra_bone(v: Vertebra) -> Structure:
    """Body (elliptic cylinder with endplates), pedicles, laminae, spinous and transverse
    processes. The pedicles show end-on as the paired ovals of a frontal radiograph."""
    c = v.center
    up = np.array([0.0, 0.0, 1.0])
    half_h = v.height / 2.0
    lumbar = v.name.startswith("l")
    cervical = v.name.startswith("c")
    pieces: list = []
    if v.name != "c1":
        pieces.append(
            (frustum(c - up * half_h, c + up * half_h, v.half_width, v.half_depth, taper=1.0), 1.2)
        )
    back = c + np.array([0.0, -v.half_depth, 0.0])
    ped_len = v.half_depth * (0.7 if lumbar else 0.9)
    ped_r = 5.5 if lumbar else (3.5 if cervical else 4.5)
    for s in (-1.0, 1.0):
        p0 = back + np.array([s * v.half_width * 0.62, 2.0, half_h * 0.15])
        p1 = p0 + np.array([s * 2.0, -ped_len, 0.0])
        pieces.append((frustum(p0, p1, ped_r, ped_r * 1.3, u=(1.0, 0.0, 0.0)), 1.2))
        # Lamina from the pedicle to the midline behind the canal.
        lam_end = back + np.array([0.0, -ped_len - v.half_depth * 0.9, 0.0])
        pieces.append((frustum(p1, lam_end, 3.5, half_h * 0.45, u=(0.0, 0.0, 1.0)), 1.0))
        # Transverse process.
        tp_len = 28.0 if lumbar else (14.0 if cervical else 22.0)
        tp_dir = np.array([s, -0.6 if not lumbar else -0.2, 0.0])
        tp_dir /= np.linalg.norm(tp_dir)
        pieces.append(
            (frustum(p1, p1 + tp_dir * tp_len, 4.5, 3.5, taper=0.7, u=(0.0, 0.0, 1.0)), 1.0)
        )
    if v.name == "c1":
        # Atlas: lateral masses and arches, no body.
        for s in (-1.0, 1.0):
            pieces.append((ellipsoid(c + np.array([s * 18.0, -2.0, 0.0]), (8.0, 11.0, 8.0)), 1.0))
        pieces.append((ellipsoid(c + np.array([0.0, 12.0, 0.0]), (10.0, 4.0, 5.0)), 1.0))
    if v.name == "c2":
        pieces.append((ellipsoid(c + np.array([0.0, 2.0, half_h + 8.0]), (5.0, 5.0, 11.0)), 1.0))
    spine_len = 30.0 if lumbar else (22.0 if cervical else 38.0)
    tilt = -0.25 if lumbar else (-0.3 if cervical else -0.9)
    sp_dir = np.array([0.0, -1.0, tilt])
    sp_dir /= np.linalg.norm(sp_dir)
    sp0 = back + np.array([0.0, -ped_len - v.half_depth * 0.9, 0.0])
    pieces.append(
        (
            frustum(
                sp0,
                sp0 + sp_dir * spine_len,
                3.5,
                7.0 if lumbar else 4.5,
                taper=0.8,
                u=(1.0, 0.0, 0.0),
            ),
            1.0,
        )
    )
    return bone(v.name, pieces)


def spinal_canal_and_discs(levels: list[Vertebra]) -> list[Structure]:
    """Intervertebral discs between the vertebral bodies, the thecal sac (CSF) in the canal
    behind them and the spinal cord in it, ending at L1 (the conus)."""
    out: list[Structure] = []
    up = np.array([0.0, 0.0, 1.0])
    for upper, lower in zip(levels[1:-1], levels[2:], strict=True):
        top = upper.center - up * upper.height / 2.0
        bottom = lower.center + up * lower.height / 2.0
        if top[2] - bottom[2] < 1.0:
            continue
        out.append(
            Structure(
                f"disc_{upper.name}_{lower.name}",
                "organ",
                "cartilage",
                "muscle",
                [frustum(bottom, top, lower.half_width * 0.98, lower.half_depth * 0.98)],
                inner_material="fluid",
                inner_parts=[
                    frustum(bottom, top, lower.half_width * 0.45, lower.half_depth * 0.45)
                ],
            )
        )
    canal = [v.center + np.array([0.0, -v.half_depth - 9.0, 0.0]) for v in levels[1:]]
    canal.append(canal[-1] + np.array([0.0, -14.0, -60.0]))
    sac: list[Solid] = [frustum(p, q, 8.5, 7.5) for p, q in zip(canal[:-1], canal[1:], strict=True)]
    sac += [ellipsoid(p, (8.5, 7.5, 4.0)) for p in canal[1:-1]]
    cord_end = next(i for i, v in enumerate(levels) if v.name == "l1")
    cord = [
        frustum(p, q, 4.5, 3.5)
        for p, q in zip(canal[: cord_end - 1], canal[1:cord_end], strict=True)
    ]
    out.append(Structure("thecal_sac", "organ", "csf", "muscle", sac))
    out.append(Structure("spinal_cord", "organ", "white_matter", "csf", cord))
    return out


def rib_bones(
    levels: dict[str, Vertebra], chest_half_width: float, female: bool
) -> tuple[list[Structure], list[Structure]]:
    """12 pairs of ribs (bony part) and the costal cartilages of ribs 1-10.

    Each rib leaves its vertebra, runs back to the rib angle, sweeps round the chest wall and
    ends anteriorly lower than it started, as on a frontal chest radiograph."""
    ribs: list[Structure] = []
    cartilages: list[Structure] = []
    for i in range(1, 13):
        v = levels[f"t{i}"]
        t = (i - 1) / 11.0
        # Half-width of the rib's ellipse grows to rib 8, then the lower ribs shorten.
        half_w = chest_half_width * (0.55 + 0.45 * np.sin(np.pi * min(t * 1.35, 1.0) / 2.0 + 0.2))
        # The rib ellipse spans from behind the transverse processes to the sternum.
        y_post = v.center[1] - 28.0
        y_ant = 84.0 + 14.0 * t
        half_d = (y_ant - y_post) / 2.0
        y_centre = (y_ant + y_post) / 2.0
        sweep = np.pi * (0.80 if i <= 7 else (0.72 if i <= 10 else 0.45 + 0.02 * (12 - i)))
        drop = 18.0 + 95.0 * np.sin(np.pi * min(t * 1.2, 1.0) * 0.5) if i > 1 else 22.0
        start_angle = np.arcsin(min(24.0 / half_w, 0.9))
        angles = np.linspace(start_angle, sweep, 15)
        for s, side in ((1.0, "left"), (-1.0, "right")):
            points = [
                np.array(
                    [
                        s * half_w * np.sin(a),
                        y_centre - half_d * np.cos(a),
                        v.center[2]
                        + 4.0
                        - drop * ((a - start_angle) / (np.pi - start_angle)) ** 1.6,
                    ]
                )
                for a in angles
            ]
            height = 4.6 + 1.6 * np.sin(np.pi * t)
            # Ribs thin towards their anterior ends (fainter anterior ribs on a frontal film).
            n_seg = len(points) - 1
            scale = [1.0 - 0.4 * k / n_seg for k in range(n_seg + 1)]
            pieces: list[tuple[Solid, float]] = [
                (
                    frustum(
                        p, q, 3.2 * scale[k], height * scale[k],
                        taper=scale[k + 1] / scale[k], u=(0.0, 0.0, 1.0),
                    ),
                    0.7 * scale[k],
                )
                for k, (p, q) in enumerate(zip(points[:-1], points[1:], strict=True))
            ]  # fmt: skip
            pieces.append((ellipsoid(points[0], (5.0, 5.0, 6.0)), 0.8))
            ribs.append(bone(f"{side}_rib_{i}", pieces))
            if i <= 10:
                end = points[-1]
                target = np.array(
                    [
                        s * (12.0 if i <= 7 else 45.0 + 8 * (i - 8)),
                        y_centre + half_d - 4.0,
                        end[2] - (10.0 if i <= 7 else 25.0),
                    ]
                )
                if i > 7:
                    target[1] = end[1] + 25.0
                cartilages.append(
                    Structure(
                        f"{side}_costal_cartilage_{i}",
                        "cartilage",
                        "cartilage",
                        "muscle",
                        [frustum(end, target, 3.5, height * 0.9, u=(0.0, 0.0, 1.0))],
                    )
                )
    del female
    return ribs, cartilages


def sternum_bone(notch: np.ndarray) -> Structure:
    """Manubrium and sternal body, from the suprasternal notch down (mm)."""
    manubrium = frustum(
        notch + np.array([0.0, 0.0, -2.0]),
        notch + np.array([0.0, 2.0, -48.0]),
        26.0,
        6.0,
        taper=0.7,
    )
    body = frustum(
        notch + np.array([0.0, 2.0, -50.0]),
        notch + np.array([0.0, 6.0, -150.0]),
        15.0,
        6.0,
        taper=1.2,
    )
    xiphoid = frustum(
        notch + np.array([0.0, 6.0, -150.0]),
        notch + np.array([0.0, 4.0, -178.0]),
        9.0,
        3.0,
        taper=0.4,
    )
    return bone("sternum", [(manubrium, 1.0), (body, 1.0), (xiphoid, 0.8)])


def skull_bones(head_centre: np.ndarray, scale: float = 1.0) -> list[Structure]:
    """Cranial vault (outer table, diploe, inner table), skull base, facial bones with orbits
    and sinuses, mandible, and teeth. `head_centre` is the centre of the cranial vault."""
    c = head_centre
    vault_r = np.array([72.0, 94.0, 82.0]) * scale
    outer = ellipsoid(c, vault_r)
    cavity = ellipsoid(c, vault_r - 7.0)
    # The occiput and posterior fossa bulge behind and below the vault (the egg-shaped
    # lateral outline) and hold the cerebellum.
    fossa_c, fossa_r = c + np.array([0.0, -48.0, -42.0]), np.array([60.0, 46.0, 42.0]) * scale
    skull_pieces = [outer, ellipsoid(fossa_c, fossa_r)]
    # Skull base: a dense plate at the level of the cranial floor, and the petrous ridges.
    base_z = c[2] - vault_r[2] * 0.55
    skull_base = ellipsoid(c + np.array([0.0, 0.0, -vault_r[2] * 0.55]), (62.0, 80.0, 9.0))
    petrous = [
        frustum(
            c + np.array([s * 55.0, -25.0, -vault_r[2] * 0.45]),
            c + np.array([s * 12.0, 8.0, -vault_r[2] * 0.42]),
            9.0,
            7.0,
            taper=0.6,
        )
        for s in (-1.0, 1.0)
    ]
    skull = Structure(
        "skull",
        "bone",
        "cortical_bone",
        "muscle",
        skull_pieces,
        cutouts=[cavity, ellipsoid(fossa_c, fossa_r - 6.0)],
        inner_material="trabecular_bone",
        inner_parts=[ellipsoid(c, vault_r - 2.2), ellipsoid(fossa_c, fossa_r - 2.0)],
    )
    del skull_base  # a flat plate reads as a line on laterals; the petrous ridges carry the base
    skull_base_bone = bone("skull_base", [(p, 1.5) for p in petrous])
    # Facial skeleton: maxilla and zygomas below the anterior vault, orbits and sinuses as holes.
    # Facial skeleton in front of and below the anterior vault: orbital rims, maxilla with its
    # sinuses and the nasal cavity, zygomas with their arches back to the temporal bones.
    face_c = c + np.array([0.0, vault_r[1] * 0.74, -vault_r[2] * 0.66])
    orbit_c = [face_c + np.array([s * 31.0, -4.0, 34.0]) for s in (-1.0, 1.0)]
    maxilla = ellipsoid(face_c + np.array([0.0, 4.0, -14.0]), (40.0, 26.0, 27.0))
    zygomas = [
        ellipsoid(face_c + np.array([s * 47.0, -10.0, 10.0]), (10.0, 18.0, 14.0))
        for s in (-1.0, 1.0)
    ]
    arches = [
        frustum(
            face_c + np.array([s * 50.0, -18.0, 8.0]),
            c + np.array([s * 64.0, 4.0, -vault_r[2] * 0.55]),
            4.0,
            7.0,
            u=(0.0, 0.0, 1.0),
        )
        for s in (-1.0, 1.0)
    ]
    rims = [ellipsoid(p, (21.0, 12.0, 19.0)) for p in orbit_c]
    nasal_bones = frustum(
        face_c + np.array([0.0, 6.0, 30.0]), face_c + np.array([0.0, 24.0, 4.0]), 6.0, 3.0
    )
    orbits = [ellipsoid(p + np.array([0.0, 2.0, 0.0]), (16.5, 16.0, 15.0)) for p in orbit_c]
    maxillary_sinus = [
        ellipsoid(face_c + np.array([s * 22.0, 2.0, -8.0]), (13.0, 15.0, 14.0)) for s in (-1.0, 1.0)
    ]
    nasal = ellipsoid(face_c + np.array([0.0, 10.0, 0.0]), (8.0, 20.0, 22.0))
    facial_parts: list[Solid] = [maxilla, *zygomas, *arches, *rims, nasal_bones]
    facial = Structure(
        "facial_bones",
        "bone",
        "cortical_bone",
        "muscle",
        facial_parts,
        cutouts=[*orbits, *maxillary_sinus, nasal],
        inner_material="trabecular_bone",
        inner_parts=[maxilla.shrunk(2.0), *(z.shrunk(1.5) for z in zygomas)],
    )
    # Mandible: body as an arch of segments, rami up to the temporomandibular joints.
    chin = face_c + np.array([0.0, 30.0, -68.0])
    # The body of the mandible is a U opening backwards to the angles, below the ears.
    depth = 82.0 / (1.0 - np.cos(1.35))
    arch = [
        chin + np.array([50.0 * np.sin(a), -depth * (1 - np.cos(a)), 10.0 * (1 - np.cos(a))])
        for a in np.linspace(-1.35, 1.35, 11)
    ]
    pieces: list[tuple[Solid, float]] = [
        (frustum(p, q, 5.5, 13.0, u=(0.0, 0.0, 1.0)), 1.8)
        for p, q in zip(arch[:-1], arch[1:], strict=True)
    ]
    for end in (arch[0], arch[-1]):
        condyle = np.array([end[0] * 1.05, c[1] - 12.0, base_z - 6.0])
        pieces.append((frustum(end, condyle, 6.0, 14.0, taper=0.8, u=(0.0, 1.0, 0.0)), 1.6))
        pieces.append((ellipsoid(condyle, (9.0, 5.0, 6.0)), 1.0))
    mandible = bone("mandible", pieces)
    teeth: list[Structure] = []
    upper_arch = face_c + np.array([0.0, 30.0, -40.0])
    for jaw, centre, sign in (
        ("upper", upper_arch, 1.0),
        ("lower", chin + np.array([0.0, -2.0, 22.0]), -1.0),
    ):
        for k, a in enumerate(np.linspace(-1.25, 1.25, 14)):
            p = centre + np.array([40.0 * np.sin(a), -58.0 * (1 - np.cos(a)), 0.0])
            teeth.append(
                Structure(
                    f"tooth_{jaw}_{k + 1}",
                    "bone",
                    "cortical_bone",
                    "muscle",
                    [
                        frustum(
                            p - np.array([0.0, 0.0, sign * 10.0]),
                            p + np.array([0.0, 0.0, sign * 9.0]),
                            4.0,
                            4.5,
                            taper=0.7,
                        )
                    ],
                )
            )
    return [skull, skull_base_bone, facial, mandible, *teeth]


def pelvis_bones(
    hips: dict[str, np.ndarray], sacrum_top: np.ndarray, female: bool
) -> list[Structure]:
    """Pelvic ring (both hip bones as one structure `pelvis`, acetabula cupped round the
    femoral heads) and the sacrum with its foramina, plus the coccyx."""
    pieces: list = []
    cutouts = []
    flare = 1.12 if female else 1.0
    for side, hip in hips.items():
        s = 1.0 if side == "left" else -1.0
        # Iliac wing: a thin curved plate facing anterolaterally, dense rim along the crest.
        wing_c = hip + np.array([s * 12.0 * flare, -32.0, 92.0])
        wing_rot = rotation_about((0.0, 0.0, 1.0), s * np.deg2rad(42.0)) @ rotation_about(
            (0.0, 1.0, 0.0), -s * np.deg2rad(14.0)
        )
        wing = ellipsoid(wing_c, (72.0 * flare, 10.0, 62.0), wing_rot)
        crest_pts = [
            wing_c + wing_rot @ np.array([72.0 * flare * np.cos(a), 0.0, 62.0 * np.sin(a)])
            for a in np.linspace(0.35, 2.6, 8)
        ]
        for p, q in zip(crest_pts[:-1], crest_pts[1:], strict=True):
            pieces.append((frustum(p, q, 6.0, 7.0), 1.5))
        pieces.append((wing, 2.2))
        # Acetabular roof and body of the ilium around the femoral head.
        pieces.append((ellipsoid(hip + np.array([-s * 4.0, -4.0, 9.0]), (31.0, 30.0, 31.0)), 2.0))
        # Posterior ilium towards the sacroiliac joint.
        si = sacrum_top + np.array([s * 42.0, -8.0, -25.0])
        pieces.append(
            (frustum(hip + np.array([-s * 8.0, -18.0, 30.0]), si, 20.0, 14.0, taper=1.1), 1.6)
        )
        # The obturator ring: superior pubic ramus, pubic body, inferior ramus and ischium
        # run round the obturator foramen, an oval facing anterolaterally.
        centre = hip + np.array([-s * 40.0 * flare, 18.0, -52.0])
        across = np.array([-s * np.cos(np.deg2rad(38.0)), np.sin(np.deg2rad(38.0)), 0.0])
        up = np.array([0.0, 0.0, 1.0])
        ring = [
            centre + (24.0 * flare) * np.cos(a) * across + 30.0 * np.sin(a) * up
            for a in np.linspace(-np.pi, np.pi, 15)
        ]
        for k, (p, q) in enumerate(zip(ring[:-1], ring[1:], strict=True)):
            angle = -np.pi + 2.0 * np.pi * (k + 0.5) / 14
            # Thick ischium below-laterally, slender rami above and below.
            radius = 12.0 if np.cos(angle) < -0.2 and np.sin(angle) < 0.3 else 7.5
            pieces.append((frustum(p, q, radius, radius * 0.85), 1.6))
        symph = np.array([s * 9.0 * flare, centre[1] + 30.0, centre[2] + 4.0])
        pieces.append((ellipsoid(symph, (10.0, 12.0, 22.0)), 1.6))
        pieces.append((frustum(ring[7], symph, 9.0, 9.0), 1.6))
        tuber = centre + np.array([s * 4.0, -26.0, -38.0])
        pieces.append((ellipsoid(tuber, (14.0, 18.0, 16.0)), 1.5))
        pieces.append(
            (frustum(hip + np.array([-s * 4.0, -18.0, -10.0]), tuber, 14.0, 12.0, taper=0.9), 2.0)
        )
        # The acetabular socket itself is a cut-out, so the femoral head sits in a cup.
        cutouts.append(ellipsoid(hip, (26.5, 26.5, 26.5)))
    pelvis = Structure(
        "pelvis",
        "bone",
        "cortical_bone",
        "muscle",
        [p for p, _ in pieces],
        cutouts=cutouts,
        inner_material="trabecular_bone",
        inner_parts=[p.shrunk(t) for p, t in pieces],
    )
    # Sacrum: a wedge tilted backwards, with four pairs of anterior foramina.
    tilt = np.array([0.0, -0.45, -1.0])
    tilt /= np.linalg.norm(tilt)
    sac_len = 105.0
    sac_end = sacrum_top + tilt * sac_len
    sacrum_pieces: list[tuple[Solid, float]] = [
        (frustum(sacrum_top, sac_end, 52.0 * flare, 20.0, taper=0.35), 1.5)
    ]
    for s in (-1.0, 1.0):
        sacrum_pieces.append(
            (
                ellipsoid(
                    sacrum_top + np.array([s * 32.0 * flare, -6.0, -22.0]), (22.0, 20.0, 30.0)
                ),
                1.5,
            )
        )
    foramina = [
        ellipsoid(
            sacrum_top + tilt * (18.0 + 21.0 * k) + np.array([s * (22.0 - 2.5 * k), 14.0, 0.0]),
            (4.5, 14.0, 4.5),
        )
        for k in range(4)
        for s in (-1.0, 1.0)
    ]
    sacrum = Structure(
        "sacrum",
        "bone",
        "cortical_bone",
        "muscle",
        [p for p, _ in sacrum_pieces],
        cutouts=foramina,
        inner_material="trabecular_bone",
        inner_parts=[p.shrunk(t) for p, t in sacrum_pieces],
    )
    coccyx = bone(
        "coccyx",
        [(frustum(sac_end, sac_end + np.array([0.0, 12.0, -28.0]), 9.0, 6.0, taper=0.4), 1.0)],
    )
    return [pelvis, sacrum, coccyx]
