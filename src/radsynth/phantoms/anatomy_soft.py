"""Soft tissues: the body envelope (skin, subcutaneous fat, muscle) and the organs.

Millimetres, body coordinates (x to the patient's left, y anterior, z up), for a 1750 mm adult.
Organ positions follow the skeleton's landmarks so that a chest radiograph shows the lungs
inside the rib cage, the domes of the diaphragm, the heart shadow and the gastric bubble.
"""

from __future__ import annotations

import numpy as np

from radsynth.phantoms.solids import Frustum, Solid, Structure, ellipsoid, frustum, rotation_about


def chest_half_width(z: float) -> float:
    """Inner half-width of the rib cage at height z (mm), apex to costal margin."""
    zs = [1130.0, 1190.0, 1260.0, 1350.0, 1420.0, 1470.0, 1500.0]
    ws = [128.0, 138.0, 141.0, 136.0, 118.0, 88.0, 60.0]
    return float(np.interp(z, zs, ws))


def _tube(
    points: list[np.ndarray], radii: list[float], ratio: float = 1.0, u: np.ndarray | None = None
) -> list[Solid]:
    """A smooth limb or trunk: frusta through consecutive points with continuous elliptic
    sections (half-axes radius and ratio x radius), rounded joints and rounded ends."""
    ref = np.array([1.0, 0.0, 0.0]) if u is None else u
    parts: list[Solid] = []
    for i in range(len(points) - 1):
        parts.append(
            frustum(
                points[i],
                points[i + 1],
                radii[i],
                radii[i] * ratio,
                taper=radii[i + 1] / radii[i],
                u=ref,
            )
        )
    # Rounded ends; at inner joints a flat cap is enough to close the wedge between two
    # frusta that meet at a small angle (and it keeps the joint cheap to project).
    last = len(points) - 1
    for i, (point, radius) in enumerate(zip(points, radii, strict=True)):
        height = 0.9 if i in (0, last) else 0.5
        parts.append(ellipsoid(point, (radius, radius * ratio, radius * height)))
    return parts


def envelope(
    female: bool,
    fat_mm: float,
    bulk: float,
    landmarks: dict[str, np.ndarray],
    breast_size: float,
    extra_parts: dict[str, list[Solid]],
) -> list[Structure]:
    """Skin/subcutaneous fat as the outer union, muscle inside it, visceral fat in the abdomen.

    fat_mm: subcutaneous fat thickness; bulk: width factor of the trunk and limbs (1 = average);
    extra_parts: soft tissue built with the skeleton, per side (the hands).
    """
    hip_w = (178.0 if female else 162.0) * bulk
    waist_w = (132.0 if female else 146.0) * bulk
    chest_w = (146.0 if female else 160.0) * bulk
    shoulder_w = (150.0 if female else 170.0) * bulk
    ratio = 0.68
    zs = [850.0, 905.0, 985.0, 1065.0, 1150.0, 1260.0, 1375.0, 1440.0]
    widths = [
        hip_w * 0.94,
        hip_w,
        hip_w * 0.93,
        waist_w,
        chest_w * 0.96,
        chest_w,
        shoulder_w,
        shoulder_w * 0.86,
    ]
    ys = [-14.0, -12.0, -4.0, 2.0, 6.0, 8.0, 2.0, -8.0]
    points = [np.array([0.0, y, z]) for y, z in zip(ys, zs, strict=True)]
    parts: list[Solid] = _tube(points, widths, ratio)
    # Buttocks and shoulder caps (deltoids).
    for s in (-1.0, 1.0):
        parts.append(
            ellipsoid((s * 62.0 * bulk, -62.0 * bulk, 885.0), (78.0 * bulk, 62.0 * bulk, 85.0))
        )
        shoulder = landmarks["left_shoulder" if s > 0 else "right_shoulder"]
        parts.append(
            ellipsoid(shoulder + np.array([s * 6.0, 0.0, 0.0]), (44.0 * bulk, 50.0 * bulk, 50.0))
        )
    # Neck and head (scalp around the vault).
    parts += _tube(
        [np.array([0.0, -14.0, 1430.0]), np.array([0.0, -4.0, 1590.0])], [57.0 * bulk, 52.0], 1.0
    )
    head = landmarks["head_centre"]
    parts.append(ellipsoid(head, (79.0, 99.0, 93.0)))
    parts.append(ellipsoid(head + np.array([0.0, -48.0, -42.0]), (67.0, 53.0, 49.0)))  # occiput
    parts.append(ellipsoid(head + np.array([0.0, 66.0, -80.0]), (60.0, 50.0, 66.0)))  # face and jaw
    trunk_parts = list(parts)
    for side in ("left", "right"):
        parts += _leg_envelope(side, landmarks, bulk)
    muscle = [p.shrunk(fat_mm) for p in parts]
    if female:  # breasts are fat and glandular tissue, with no muscle inside
        for s in (-1.0, 1.0):
            parts.append(_breast_solid(s, breast_size))
    body = Structure(
        "body",
        "envelope",
        "fat",
        "air",
        parts,
        inner_material="muscle",
        inner_parts=muscle,
    )
    # The arms are their own structures (a lateral view of the trunk is taken with the arms
    # raised out of the beam); the trunk is cut out of them so nothing is counted twice.
    arms = []
    for side in ("left", "right"):
        arm_parts = _arm_envelope(side, landmarks, bulk) + extra_parts[side]
        arms.append(
            Structure(
                f"{side}_arm_soft_tissue",
                "envelope",
                "fat",
                "air",
                arm_parts,
                cutouts=trunk_parts,
                inner_material="muscle",
                inner_parts=[p.shrunk(min(fat_mm, 8.0)) for p in arm_parts],
            )
        )
    structures = [body, *arms]
    if female:
        structures += [
            Structure(
                f"{'left' if s > 0 else 'right'}_breast",
                "organ",
                "breast",
                "fat",
                [_breast_solid(s, breast_size).scaled(0.62)],
            )
            for s in (-1.0, 1.0)
        ]
    # Visceral fat fills the abdominal cavity, where the organs sit.
    cavity_pts = [
        np.array([0.0, y, z])
        for y, z in ((12.0, 870.0), (16.0, 960.0), (18.0, 1080.0), (16.0, 1190.0))
    ]
    cavity = _tube(cavity_pts, [hip_w * 0.6, hip_w * 0.66, waist_w * 0.78, chest_w * 0.74], 0.62)
    structures.append(Structure("abdominal_cavity", "envelope", "fat", "muscle", cavity))
    return structures


def _breast_solid(side: float, size: float) -> Solid:
    # Centred inside the chest wall so that only the lower, outer part protrudes: the breast
    # shadow has a visible inferior margin and fades upwards into the chest wall, as on film.
    # Tilted downwards, so the upper slope leaves the chest wall gradually.
    return ellipsoid(
        (side * 80.0, 84.0, 1268.0),
        (62.0 * size, 44.0 * size, 66.0 * size),
        rotation_about((1.0, 0.0, 0.0), np.deg2rad(-35.0)),
    )


def _arm_envelope(side: str, lm: dict[str, np.ndarray], bulk: float) -> list[Solid]:
    shoulder, elbow, wrist = lm[f"{side}_shoulder"], lm[f"{side}_elbow"], lm[f"{side}_wrist"]
    down = (wrist - elbow) / np.linalg.norm(wrist - elbow)
    lateral = np.array([abs(down[2]) * np.sign(wrist[0]), 0.0, abs(down[0])])
    points = [shoulder + down * 10.0, elbow, elbow + down * 90.0, wrist - down * 5.0]
    return _tube(points, [45.0 * bulk, 36.0 * bulk, 38.0 * bulk, 27.0 * bulk], 0.8, u=lateral)


def _leg_envelope(side: str, lm: dict[str, np.ndarray], bulk: float) -> list[Solid]:
    hip, knee, ankle = lm[f"{side}_hip"], lm[f"{side}_knee"], lm[f"{side}_ankle"]
    s = 1.0 if side == "left" else -1.0
    points = [
        hip + np.array([s * 22.0, -8.0, -10.0]),
        knee + np.array([0.0, 0.0, 110.0]),
        knee + np.array([0.0, 4.0, 0.0]),
        knee + np.array([0.0, -14.0, -130.0]),
        ankle + np.array([0.0, -4.0, 40.0]),
        ankle + np.array([0.0, 0.0, -10.0]),
    ]
    radii = [88.0 * bulk, 62.0 * bulk, 50.0 * bulk, 52.0 * bulk, 32.0 * bulk, 33.0]
    return _tube(points, radii, 1.0) + [
        # Prepatellar soft tissue and the patellar tendon in front of the knee.
        ellipsoid(knee + np.array([0.0, 26.0, 30.0]), (40.0 * bulk, 38.0, 62.0)),
        ellipsoid(ankle + np.array([s * 4.0, -22.0, -50.0]), (30.0, 36.0, 34.0)),  # heel
        # Foot: tall at the midfoot, thinning towards the toes, the sole near the ground.
        frustum(
            ankle + np.array([s * 2.0, 0.0, -42.0]),
            ankle + np.array([s * 8.0, 178.0, -70.0]),
            36.0,
            38.0,
            taper=0.42,
            u=(1.0, 0.0, 0.0),
        ),
        ellipsoid(ankle + np.array([s * 4.0, 60.0, -48.0]), (38.0, 60.0, 30.0)),
        ellipsoid(ankle + np.array([s * 8.0, 178.0, -70.0]), (22.0, 18.0, 14.0)),
    ]


def lungs_and_mediastinum(
    rng: np.random.Generator, dome_shift_mm: float, heart_scale: float
) -> list[Structure]:
    """Lungs (with vessel trees), heart, great vessels, trachea and main bronchi."""
    structures: list[Structure] = []
    heart_c = np.array([14.0, 34.0, 1290.0])
    heart_rot = rotation_about((0.0, 1.0, 0.0), np.deg2rad(-28.0)) @ rotation_about(
        (0.0, 0.0, 1.0), np.deg2rad(30.0)
    )
    heart_parts = [ellipsoid(heart_c, np.array([70.0, 52.0, 58.0]) * heart_scale, heart_rot)]
    for side, s in (("left", 1.0), ("right", -1.0)):
        dome_top = (1222.0 if s > 0 else 1238.0) + dome_shift_mm
        zs = [1165.0, 1250.0, 1350.0, 1430.0, 1478.0]
        lateral = [chest_half_width(z) - 10.0 for z in zs]
        medial = [40.0, 30.0, 36.0, 30.0, 30.0] if s < 0 else [52.0, 42.0, 36.0, 30.0, 32.0]
        centres = [
            np.array([s * (lat + med) / 2.0, -4.0, z])
            for lat, med, z in zip(lateral, medial, zs, strict=True)
        ]
        half_widths = [(lat - med) / 2.0 for lat, med in zip(lateral, medial, strict=True)]
        parts: list[Solid] = _tube(centres, half_widths, 1.75)
        dome = ellipsoid((s * 58.0, 6.0, dome_top - 100.0), (72.0, 112.0, 100.0))
        lung = Structure(
            f"{side}_lung", "organ", "lung", "muscle", parts, cutouts=[dome, *heart_parts]
        )
        structures.append(lung)
        structures.append(_vessel_tree(f"{side}_pulmonary_vessels", s, rng, dome_top))
    structures.append(Structure("heart", "organ", "heart", "muscle", heart_parts))
    aorta_pts = [
        np.array(p)
        for p in (
            (12.0, 34.0, 1330.0),
            (8.0, 30.0, 1400.0),
            (12.0, 12.0, 1428.0),
            (26.0, -14.0, 1420.0),
            (26.0, -30.0, 1390.0),
        )
    ]
    aorta_parts: list[Solid] = [
        frustum(p, q, 14.0, 14.0) for p, q in zip(aorta_pts[:-1], aorta_pts[1:], strict=True)
    ]
    # The descending aorta runs down the left side of the thoracic spine, then in front of
    # the lumbar vertebral bodies to the bifurcation at L4.
    descending = [aorta_pts[-1], np.array([24.0, -16.0, 1200.0]), np.array([14.0, 8.0, 1040.0])]
    aorta_parts += [
        frustum(p, q, 13.0, 13.0, taper=0.92)
        for p, q in zip(descending[:-1], descending[1:], strict=True)
    ]
    aorta_parts.append(ellipsoid(descending[1], (12.0, 12.0, 6.0)))
    structures.append(Structure("aorta", "vessel", "blood", "muscle", aorta_parts))
    airway: list[Solid] = [
        frustum((0.0, 10.0, 1580.0), (0.0, 2.0, 1392.0), 9.5, 8.5, u=(1.0, 0.0, 0.0))
    ]
    for s in (-1.0, 1.0):
        airway.append(
            frustum(
                (0.0, 2.0, 1396.0),
                (s * 46.0, -4.0, 1356.0 - (4.0 if s > 0 else 0.0)),
                6.5,
                6.0,
                taper=0.8,
            )
        )
    structures.append(Structure("trachea", "organ", "air", "muscle", airway))
    return structures


def _vessel_tree(name: str, side: float, rng: np.random.Generator, dome_top: float) -> Structure:
    """Pulmonary vessels branching from the hilum towards the periphery (lung markings)."""
    hilum = np.array([side * 52.0, -2.0, 1340.0])
    segments: list[Solid] = []
    targets = [(0.9, 0.35), (0.75, -0.55), (1.0, -0.05), (0.3, 0.95), (0.55, -0.85)]
    stack = []
    for lat, up in targets:
        d = np.array([side * lat, rng.normal(0.0, 0.3), up])
        stack.append((hilum, d / np.sqrt(d @ d), 5.5, 0))
    # Random numbers drawn in blocks: one branch at a time is slow in Python.
    lengths = iter(rng.uniform(28.0, 45.0, size=256))
    turns = iter(rng.normal(0.0, 0.45, size=(512, 3)))
    along = np.array([1.0, 0.0, 0.0])
    while stack:
        start, direction, radius, depth = stack.pop()
        end = start + direction * (next(lengths) * 0.85**depth)
        inner = chest_half_width(float(end[2])) - 25.0
        if abs(end[0]) > inner or end[2] < dome_top - 40.0 or end[2] > 1460.0 or abs(end[0]) < 30.0:
            continue
        segments.append(Frustum(start, end, radius, radius, 0.8, along))
        if depth < 4 and radius > 1.2:
            for _ in range(2):
                child = direction + next(turns)
                stack.append((end, child / np.sqrt(child @ child), radius * 0.72, depth + 1))
    return Structure(name, "vessel", "blood", "lung", segments)


def abdominal_organs(rng: np.random.Generator, dome_shift_mm: float) -> list[Structure]:
    """Liver, spleen, stomach with its gas bubble, kidneys in perirenal fat, psoas muscles,
    colon and small bowel with gas, bladder."""
    z_liver = 1128.0 + dome_shift_mm
    out: list[Structure] = [
        Structure(
            "liver",
            "organ",
            "liver",
            "fat",
            [
                ellipsoid(
                    (-58.0, 12.0, z_liver),
                    (108.0, 92.0, 96.0),
                    rotation_about((0.0, 1.0, 0.0), np.deg2rad(12.0)),
                )
            ],
        ),
        Structure(
            "spleen",
            "organ",
            "spleen",
            "fat",
            [
                ellipsoid(
                    (88.0, -48.0, 1140.0 + dome_shift_mm),
                    (30.0, 48.0, 55.0),
                    rotation_about((0.0, 0.0, 1.0), np.deg2rad(-30.0)),
                )
            ],
        ),
        Structure(
            "stomach",
            "organ",
            "bowel",
            "fat",
            [
                ellipsoid(
                    (58.0, 28.0, 1140.0 + dome_shift_mm),
                    (48.0, 40.0, 62.0),
                    rotation_about((0.0, 1.0, 0.0), np.deg2rad(25.0)),
                )
            ],
        ),
        Structure(
            "gastric_bubble",
            "organ",
            "bowel_gas",
            "bowel",
            [ellipsoid((62.0, 24.0, 1180.0 + dome_shift_mm), (28.0, 22.0, 14.0))],
        ),
    ]
    for side, s in (("left", 1.0), ("right", -1.0)):
        z = 1118.0 if s > 0 else 1102.0  # T12 to L3, the right kidney lower (liver)
        rot = rotation_about((0.0, 1.0, 0.0), -s * np.deg2rad(16.0)) @ rotation_about(
            (0.0, 0.0, 1.0), s * np.deg2rad(25.0)
        )
        centre = np.array([s * 62.0, -48.0, z])
        out.append(
            Structure(
                f"{side}_perirenal_fat",
                "organ",
                "fat",
                "fat",
                [ellipsoid(centre, (42.0, 38.0, 70.0), rot)],
            )
        )
        out.append(
            Structure(
                f"{side}_kidney",
                "organ",
                "kidney",
                "fat",
                [ellipsoid(centre, (28.0, 24.0, 56.0), rot)],
                inner_material="renal_sinus",
                inner_parts=[
                    ellipsoid(centre + np.array([-s * 8.0, 6.0, 0.0]), (10.0, 9.0, 30.0), rot)
                ],
            )
        )
        out.append(
            Structure(
                f"{side}_psoas",
                "organ",
                "muscle",
                "fat",
                [
                    frustum(
                        (s * 30.0, -40.0, 1180.0), (s * 62.0, -10.0, 930.0), 14.0, 14.0, taper=2.0
                    )
                ],
            )
        )
    colon_path = [
        (-92.0, 10.0, 930.0),
        (-98.0, 0.0, 1060.0),
        (-70.0, 40.0, 1105.0),
        (0.0, 58.0, 1085.0),
        (72.0, 40.0, 1120.0),
        (100.0, 0.0, 1070.0),
        (96.0, 0.0, 960.0),
        (40.0, 20.0, 905.0),
        (0.0, -40.0, 890.0),
        (0.0, -55.0, 830.0),
    ]
    pts = [np.array(p) for p in colon_path]
    colon = Structure(
        "colon",
        "organ",
        "bowel",
        "fat",
        [frustum(p, q, 24.0, 22.0) for p, q in zip(pts[:-1], pts[1:], strict=True)],
    )
    out.append(colon)
    # Gas lies in pockets along the colon, elongated with it, more in the transverse colon.
    gas: list[Solid] = []
    for p, q in zip(pts[:-1], pts[1:], strict=True):
        along = (q - p) / np.linalg.norm(q - p)
        helper = np.array([0.0, 0.0, 1.0]) if abs(along[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        across = np.cross(along, helper)
        across /= np.linalg.norm(across)
        rot = np.stack([across, np.cross(along, across), along], axis=1)
        for _ in range(int(rng.integers(0, 3))):
            c = p + (q - p) * rng.uniform(0.15, 0.85) + rng.normal(0.0, 3.0, 3)
            radii = (rng.uniform(8.0, 15.0), rng.uniform(7.0, 13.0), rng.uniform(12.0, 30.0))
            gas.append(ellipsoid(c, radii, rot))
    if not gas:
        gas.append(ellipsoid(pts[3], (12.0, 10.0, 9.0)))
    out.append(Structure("colonic_gas", "organ", "bowel_gas", "bowel", gas))
    small: list[Solid] = []
    for _ in range(int(rng.integers(4, 12))):
        c = np.array([rng.uniform(-60.0, 60.0), rng.uniform(0.0, 60.0), rng.uniform(960.0, 1060.0)])
        small.append(
            ellipsoid(c, (rng.uniform(5.0, 11.0), rng.uniform(5.0, 9.0), rng.uniform(5.0, 10.0)))
        )
    out.append(Structure("small_bowel_gas", "organ", "bowel_gas", "fat", small))
    out.append(
        Structure(
            "bladder",
            "organ",
            "bladder",
            "fat",
            [ellipsoid((0.0, 42.0, 872.0), (42.0, 34.0, 30.0))],
        )
    )
    out.append(
        Structure(
            "inferior_vena_cava",
            "vessel",
            "blood",
            "fat",
            [frustum((-22.0, 8.0, 1020.0), (-26.0, -8.0, 1240.0), 11.0, 9.0)],
        )
    )
    return out


def brain(head_centre: np.ndarray) -> list[Structure]:
    """CSF space, grey and white matter, ventricles, cerebellum, brainstem and the eyes."""
    c = head_centre
    cavity_r = np.array([64.0, 86.0, 74.0])  # inside the vault's inner table
    out = [
        Structure("csf_space", "organ", "csf", "muscle", [ellipsoid(c, cavity_r)]),
        Structure(
            "cerebrum",
            "organ",
            "grey_matter",
            "csf",
            [ellipsoid(c + np.array([0.0, 0.0, 6.0]), cavity_r - np.array([3.0, 3.0, 9.0]))],
            cutouts=[ellipsoid(c + np.array([0.0, -58.0, -52.0]), (52.0, 34.0, 30.0))],
        ),
        Structure(
            "white_matter",
            "organ",
            "white_matter",
            "grey_matter",
            [
                ellipsoid(c + np.array([s * 26.0, -2.0, 14.0]), (30.0, 62.0, 44.0))
                for s in (-1.0, 1.0)
            ],
        ),
        Structure(
            "lateral_ventricles",
            "organ",
            "csf",
            "white_matter",
            [
                ellipsoid(
                    c + np.array([s * 11.0, 4.0, 16.0]),
                    (6.0, 36.0, 9.0),
                    rotation_about((1.0, 0.0, 0.0), np.deg2rad(-8.0)),
                )
                for s in (-1.0, 1.0)
            ],
        ),
        Structure(
            "third_ventricle",
            "organ",
            "csf",
            "grey_matter",
            [ellipsoid(c + np.array([0.0, 0.0, -4.0]), (2.5, 14.0, 10.0))],
        ),
        Structure(
            "cerebellum",
            "organ",
            "grey_matter",
            "csf",
            [ellipsoid(c + np.array([0.0, -56.0, -50.0]), (50.0, 30.0, 27.0))],
            inner_material="white_matter",
            inner_parts=[ellipsoid(c + np.array([0.0, -54.0, -48.0]), (18.0, 12.0, 10.0))],
        ),
        Structure(
            "brainstem",
            "organ",
            "white_matter",
            "csf",
            [
                frustum(
                    c + np.array([0.0, -14.0, -10.0]),
                    c + np.array([0.0, -22.0, -95.0]),
                    13.0,
                    12.0,
                    taper=0.75,
                )
            ],
        ),
    ]
    for s, side in ((1.0, "left"), (-1.0, "right")):
        eye_c = c + np.array([s * 31.0, 70.0, -23.0])
        out.append(
            Structure(
                f"{side}_eye", "organ", "fluid", "fat", [ellipsoid(eye_c, (12.0, 12.0, 12.0))]
            )
        )
    return out
