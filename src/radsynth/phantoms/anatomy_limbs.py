"""Bones of the limbs: shoulder girdle, arm, forearm, hand; femur, patella, leg, foot.

Dimensions are for a 1750 mm adult (the body builder scales them) in millimetres, body
coordinates (x to the patient's left, y anterior, z up from the soles). `side` is +1 for the
left limb and -1 for the right. Arms hang in the anatomical position, abducted 15 degrees so
that the hands clear the thighs, palms forward (forearm supinated, radius lateral).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from radsynth.phantoms.solids import Solid, Structure, bone, ellipsoid, frustum, rotation_about

SIDES = {"left": 1.0, "right": -1.0}
ARM_ABDUCTION_RAD = np.deg2rad(15.0)


@dataclass(frozen=True)
class Frame:
    """A local frame: point(a, l, n) = origin + a * along + l * lateral + n * normal (mm)."""

    origin: np.ndarray
    along: np.ndarray
    lateral: np.ndarray
    normal: np.ndarray

    def point(self, a: float, lat: float = 0.0, n: float = 0.0) -> np.ndarray:
        return self.origin + a * self.along + lat * self.lateral + n * self.normal

    def rotation(self) -> np.ndarray:
        """Columns: lateral, normal, along — an ellipsoid's radii (lat, n, along) follow them."""
        return np.stack([self.lateral, self.normal, self.along], axis=1)


def _segment_bone(
    name: str,
    frame: Frame,
    start: float,
    end: float,
    radii: tuple[float, float, float],
    lat: tuple[float, float] = (0.0, 0.0),
) -> Structure:
    """A short tubular bone (phalanx, metacarpal, metatarsal) from `start` to `end` along the
    frame, with flared base and head. radii: (base, shaft, head) in mm; lat: lateral offset of
    base and head (fingers spread)."""
    base_r, shaft_r, head_r = radii
    p0 = frame.point(start, lat[0])
    p1 = frame.point(end, lat[1])
    axis = (p1 - p0) / np.linalg.norm(p1 - p0)
    length = float(np.linalg.norm(p1 - p0))
    rot = np.stack([frame.lateral, frame.normal, axis], axis=1)
    base = ellipsoid(p0 + axis * base_r * 0.8, (base_r, base_r * 0.8, base_r * 0.9), rot)
    head = ellipsoid(p1 - axis * head_r * 0.8, (head_r, head_r * 0.8, head_r), rot)
    shaft = frustum(
        p0 + axis * base_r * 0.8,
        p1 - axis * head_r * 0.8,
        shaft_r,
        shaft_r * 0.8,
        u=frame.lateral,
    )
    cortex = min(1.6, shaft_r * 0.35)
    del length
    return bone(name, [(base, 0.8), (shaft, cortex), (head, 0.8)])


def arm_frame(shoulder: np.ndarray, side: float) -> Frame:
    """Frame of the hanging arm: along points down the limb, lateral away from the body."""
    along = np.array([side * np.sin(ARM_ABDUCTION_RAD), 0.0, -np.cos(ARM_ABDUCTION_RAD)])
    lateral = np.array([side * np.cos(ARM_ABDUCTION_RAD), 0.0, np.sin(ARM_ABDUCTION_RAD)])
    return Frame(shoulder, along, lateral, np.array([0.0, 1.0, 0.0]))


def shoulder_girdle(
    side_name: str, shoulder: np.ndarray, sternal_notch: np.ndarray
) -> list[Structure]:
    """Clavicle and scapula of one side; `shoulder` is the centre of the humeral head."""
    s = SIDES[side_name]
    # Clavicle: S-curve from the sternal end to the acromion, slightly rising laterally.
    sternal = sternal_notch + np.array([s * 18.0, -4.0, 4.0])
    acromial = shoulder + np.array([-s * 12.0, -8.0, 40.0])
    bend = np.array([0.0, 14.0, 0.0])
    points = [
        sternal + (acromial - sternal) * t + bend * np.sin(np.pi * t) * (1.0 if t < 0.6 else -0.6)
        for t in np.linspace(0.0, 1.0, 7)
    ]
    clavicle_pieces: list[tuple[Solid, float]] = [
        (frustum(a, b, 6.5 - 1.5 * i / 6, 5.0, u=(0.0, 0.0, 1.0)), 1.6)
        for i, (a, b) in enumerate(zip(points[:-1], points[1:], strict=True))
    ]
    clavicle_pieces += [(ellipsoid(sternal, (9.0, 8.0, 9.0)), 1.0)]
    clavicle = bone(f"{side_name}_clavicle", clavicle_pieces)

    # Scapula: a thin triangular blade on the posterior chest wall, glenoid facing the head.
    glenoid_c = shoulder + np.array([-s * 28.0, -4.0, 2.0])
    blade_tilt = rotation_about((0.0, 0.0, 1.0), -s * np.deg2rad(30.0))
    blade = ellipsoid(shoulder + np.array([-s * 75.0, -70.0, -70.0]), (42.0, 5.0, 78.0), blade_tilt)
    lateral_border = frustum(
        glenoid_c + np.array([-s * 8.0, -8.0, -18.0]),
        shoulder + np.array([-s * 62.0, -75.0, -140.0]),
        7.0,
        5.0,
        taper=0.7,
    )
    neck = frustum(glenoid_c + np.array([-s * 22.0, -10.0, 0.0]), glenoid_c, 12.0, 10.0, taper=1.4)
    glenoid = ellipsoid(glenoid_c, (7.0, 13.0, 19.0))
    spine_start = shoulder + np.array([-s * 120.0, -90.0, -15.0])
    acromion_c = shoulder + np.array([s * 2.0, -18.0, 36.0])
    spine = frustum(spine_start, acromion_c, 5.0, 9.0, taper=1.4, u=(0.0, 1.0, 0.0))
    acromion = ellipsoid(acromion_c, (20.0, 14.0, 6.0))
    coracoid = frustum(
        glenoid_c + np.array([-s * 10.0, 0.0, 18.0]),
        glenoid_c + np.array([s * 2.0, 35.0, 12.0]),
        6.0,
        5.0,
        taper=0.8,
    )
    scapula = bone(
        f"{side_name}_scapula",
        [
            (blade, 1.2),
            (lateral_border, 1.5),
            (neck, 1.2),
            (glenoid, 1.2),
            (spine, 1.5),
            (acromion, 1.2),
            (coracoid, 1.2),
        ],
    )
    return [clavicle, scapula]


def arm_bones(
    side_name: str, shoulder: np.ndarray
) -> tuple[list[Structure], dict[str, np.ndarray]]:
    """Humerus, radius, ulna and hand of one side; returns bones and landmarks."""
    s = SIDES[side_name]
    f = arm_frame(shoulder, s)
    humerus_len, forearm_len = 325.0, 250.0
    elbow = f.point(humerus_len)
    humerus = bone(
        f"{side_name}_humerus",
        [
            (ellipsoid(f.point(0.0), (24.0, 24.0, 24.0)), 1.2),
            (ellipsoid(f.point(5.0, 18.0, 2.0), (12.0, 14.0, 16.0), f.rotation()), 1.0),
            (
                frustum(f.point(8.0, 4.0), f.point(60.0, 2.0), 20.0, 19.0, taper=0.62, u=f.lateral),
                2.0,
            ),
            (frustum(f.point(60.0, 2.0), f.point(265.0), 12.0, 11.0, taper=0.95, u=f.lateral), 3.5),
            (frustum(f.point(265.0), f.point(305.0), 11.5, 10.0, taper=2.6, u=f.lateral), 1.5),
            (ellipsoid(f.point(312.0, 0.0, 2.0), (26.0, 11.0, 12.0), f.rotation()), 1.0),
            (ellipsoid(f.point(300.0, -30.0, -2.0), (9.0, 8.0, 10.0), f.rotation()), 1.0),
            (ellipsoid(f.point(303.0, 26.0, 0.0), (7.0, 8.0, 9.0), f.rotation()), 1.0),
        ],
    )
    # Forearm in supination: radius lateral, ulna medial.
    fr = Frame(elbow, f.along, f.lateral, f.normal)
    radius = bone(
        f"{side_name}_radius",
        [
            (ellipsoid(fr.point(14.0, 14.0), (11.0, 11.0, 6.0), fr.rotation()), 1.0),
            (frustum(fr.point(18.0, 14.0), fr.point(40.0, 12.0), 7.0, 7.0, u=fr.lateral), 1.5),
            (
                frustum(
                    fr.point(40.0, 12.0), fr.point(205.0, 10.0), 7.5, 6.5, taper=1.15, u=fr.lateral
                ),
                2.5,
            ),
            (
                frustum(
                    fr.point(205.0, 10.0), fr.point(246.0, 6.0), 8.6, 7.5, taper=2.0, u=fr.lateral
                ),
                1.2,
            ),
            (ellipsoid(fr.point(247.0, 21.0), (4.5, 6.0, 6.0), fr.rotation()), 0.8),
        ],
    )
    ulna = bone(
        f"{side_name}_ulna",
        [
            (ellipsoid(fr.point(-10.0, -12.0, -6.0), (11.0, 11.0, 16.0), fr.rotation()), 1.2),
            (
                frustum(
                    fr.point(0.0, -12.0), fr.point(40.0, -13.0), 12.0, 11.0, taper=0.6, u=fr.lateral
                ),
                1.5,
            ),
            (
                frustum(
                    fr.point(40.0, -13.0), fr.point(228.0, -14.0), 7.0, 6.5, taper=0.8, u=fr.lateral
                ),
                2.3,
            ),
            (ellipsoid(fr.point(236.0, -14.0), (8.0, 7.5, 8.0), fr.rotation()), 0.8),
            (ellipsoid(fr.point(244.0, -21.0), (2.8, 3.0, 5.0), fr.rotation()), 0.6),
        ],
    )
    wrist = fr.point(forearm_len)
    hand_frame = Frame(wrist, f.along, f.lateral, f.normal)
    hand = hand_bones(side_name, hand_frame)
    landmarks = {
        f"{side_name}_shoulder": shoulder,
        f"{side_name}_elbow": elbow,
        f"{side_name}_wrist": wrist,
        f"{side_name}_hand": hand_frame.point(75.0, 2.0),
    }
    return [humerus, radius, ulna, *hand], landmarks


# Carpal bones: (name, along, lateral, normal, radii (lateral, normal, along)) from the wrist.
_CARPALS = (
    ("scaphoid", 10.0, 12.0, 1.0, (7.5, 7.0, 12.0), 35.0),
    ("lunate", 10.0, -1.0, 0.0, (8.0, 8.5, 8.0), 0.0),
    ("triquetrum", 13.0, -12.5, -1.0, (6.5, 7.0, 7.5), 20.0),
    ("pisiform", 12.0, -15.5, 9.0, (4.5, 5.0, 5.5), 0.0),
    ("trapezium", 28.0, 19.0, 2.0, (8.0, 8.0, 8.5), 30.0),
    ("trapezoid", 30.0, 9.0, 0.0, (5.5, 7.0, 7.5), 0.0),
    ("capitate", 30.5, -1.0, 0.0, (7.0, 8.0, 12.5), 0.0),
    ("hamate", 29.0, -12.5, 0.0, (7.0, 8.0, 10.5), -10.0),
)
CARPAL_NAMES: tuple[str, ...] = tuple(carpal[0] for carpal in _CARPALS)
# Rays 2..5: metacarpal base/head lateral offsets and phalanx lengths (proximal, middle, distal).
_FINGERS = (
    (2, 9.0, 16.0, 67.0, (39.0, 23.0, 16.0)),
    (3, -1.0, 1.0, 64.0, (44.0, 27.0, 17.0)),
    (4, -10.5, -13.0, 57.0, (41.0, 26.0, 17.0)),
    (5, -18.5, -26.0, 52.0, (32.0, 18.0, 15.0)),
)


def hand_bones(side_name: str, f: Frame) -> list[Structure]:
    """8 carpals, 5 metacarpals and 14 phalanges of one hand in the frame of its wrist."""
    bones: list[Structure] = []
    for name, a, lat, n, radii, tilt_deg in _CARPALS:
        rot = rotation_about(f.normal, np.deg2rad(tilt_deg)) @ f.rotation()
        bones.append(
            bone(f"{side_name}_{name}", [(ellipsoid(f.point(a, lat, n), radii, rot), 0.7)])
        )
    base_along = 40.0
    gap = 3.0
    for ray, base_lat, head_lat, mc_len, phalanges in _FINGERS:
        end = base_along + mc_len
        bones.append(
            _segment_bone(
                f"{side_name}_metacarpal_{ray}",
                f,
                base_along,
                end,
                (6.0, 4.2, 6.0),
                (base_lat, head_lat),
            )
        )
        spread = (head_lat - base_lat) / mc_len
        start, lat = end + gap, head_lat
        for phalanx, length in zip(("proximal", "middle", "distal"), phalanges, strict=True):
            radius = {
                "proximal": (5.5, 3.8, 4.2),
                "middle": (4.5, 3.2, 3.6),
                "distal": (3.8, 2.6, 3.4),
            }[phalanx]
            stop = start + length
            next_lat = lat + spread * length * 0.6
            bones.append(
                _segment_bone(
                    f"{side_name}_{phalanx}_phalanx_{ray}", f, start, stop, radius, (lat, next_lat)
                )
            )
            start, lat = stop + gap * 0.8, next_lat
    # Thumb: metacarpal 1 leaves the trapezium obliquely (about 40 degrees), then two phalanges.
    thumb_dir = np.cos(np.deg2rad(38.0)) * f.along + np.sin(np.deg2rad(38.0)) * f.lateral
    thumb_lat = np.cross(f.normal, thumb_dir) * -1.0
    thumb = Frame(f.point(34.0, 25.0, 4.0), thumb_dir, thumb_lat, f.normal)
    bones.append(_segment_bone(f"{side_name}_metacarpal_1", thumb, 0.0, 44.0, (7.0, 5.0, 6.5)))
    bones.append(
        _segment_bone(f"{side_name}_proximal_phalanx_1", thumb, 47.0, 78.0, (6.0, 4.3, 5.0))
    )
    bones.append(
        _segment_bone(f"{side_name}_distal_phalanx_1", thumb, 80.5, 103.0, (5.0, 3.2, 4.0))
    )
    return bones


def hand_envelope(side_name: str, shoulder: np.ndarray, bulk: float) -> list[Solid]:
    """Soft tissue of the hand: a flat palm and one tube per finger along its bones (mm)."""
    s = SIDES[side_name]
    f = arm_frame(shoulder, s)
    wrist = f.point(325.0 + 250.0)
    h = Frame(wrist, f.along, f.lateral, f.normal)
    parts: list[Solid] = [
        ellipsoid(h.point(60.0, -4.0, 1.0), (38.0 * bulk, 15.0 * bulk, 60.0), h.rotation()),
        ellipsoid(h.point(14.0, 0.0, 1.0), (32.0 * bulk, 18.0 * bulk, 30.0), h.rotation()),
    ]
    for _ray, base_lat, head_lat, mc_len, phalanges in _FINGERS:
        spread = (head_lat - base_lat) / mc_len
        start = h.point(40.0 + mc_len - 4.0, head_lat, 1.0)
        total = sum(phalanges) + 8.0
        tip_lat = head_lat + spread * total * 0.6
        end = h.point(40.0 + mc_len + total + 1.0, tip_lat, 1.0)
        parts.append(frustum(start, end, 9.5 * bulk, 8.5 * bulk, taper=0.75, u=h.lateral))
        parts.append(ellipsoid(end, (7.0, 6.5, 6.0)))
    thumb_dir = np.cos(np.deg2rad(38.0)) * h.along + np.sin(np.deg2rad(38.0)) * h.lateral
    base = h.point(34.0, 25.0, 4.0)
    parts.append(
        frustum(base, base + thumb_dir * 104.0, 15.0 * bulk, 12.0 * bulk, taper=0.55, u=h.lateral)
    )
    parts.append(ellipsoid(base + thumb_dir * 104.0, (7.5, 7.0, 6.5)))
    return parts


def flare(
    shaft_end: np.ndarray,
    joint_end: np.ndarray,
    shaft_radius: float,
    joint_radius: float,
    ratio: tuple[float, float],
    cortex: tuple[float, float],
    steps: int = 5,
) -> list[tuple[Solid, float]]:
    """A metaphysis: frusta whose radius grows from the shaft to the joint along a concave
    (trumpet) profile; the depth/width ratio goes from `ratio[0]` to `ratio[1]` and the cortex
    thins from `cortex[0]` to `cortex[1]` mm. A ball at the shaft end closes the joint."""
    t = np.linspace(0.0, 1.0, steps + 1)
    radii = shaft_radius + (joint_radius - shaft_radius) * t**2.2
    points = [shaft_end + (joint_end - shaft_end) * v for v in t]
    pieces: list[tuple[Solid, float]] = [
        (ellipsoid(shaft_end, (shaft_radius, shaft_radius * ratio[0], shaft_radius)), cortex[0])
    ]
    for i in range(steps):
        r = ratio[0] + (ratio[1] - ratio[0]) * (i + 0.5) / steps
        piece = frustum(
            points[i], points[i + 1], radii[i], radii[i] * r, taper=radii[i + 1] / radii[i]
        )
        pieces.append((piece, cortex[0] + (cortex[1] - cortex[0]) * t[i]))
    return pieces


def knee_soft_tissues(side_name: str, knee: np.ndarray) -> list[Structure]:
    """Articular cartilage, menisci, cruciate ligaments, patellar and quadriceps tendons, the
    infrapatellar and suprapatellar fat pads and the popliteal vessels of one knee. They come
    before the bones in painting order, so bone paints over where they touch."""
    s = SIDES[side_name]

    def at(x: float, y: float, z: float) -> np.ndarray:
        return knee + np.array([s * x, y, z])

    def part(name: str, category: str, fill: str, parent: str, solids: list[Solid]) -> Structure:
        return Structure(f"{side_name}_{name}", category, fill, parent, solids)

    return [
        part(
            "knee_fat_pads",
            "organ",
            "fat",
            "muscle",
            [
                ellipsoid(at(0.0, 30.0, 6.0), (26.0, 14.0, 22.0)),
                ellipsoid(at(0.0, 30.0, 72.0), (26.0, 9.0, 28.0)),
            ],
        ),
        part(
            "femoral_cartilage",
            "cartilage",
            "cartilage",
            "muscle",
            [
                ellipsoid(at(-17.0, -8.0, 19.0), (27.5, 32.5, 19.5)),
                ellipsoid(at(17.0, -6.0, 19.0), (27.5, 31.5, 19.5)),
                ellipsoid(at(0.0, 12.0, 34.0), (26.0, 14.5, 20.0)),
            ],
        ),
        part(
            "tibial_cartilage",
            "cartilage",
            "cartilage",
            "muscle",
            [
                ellipsoid(at(0.0, -2.0, -17.0), (39.0, 27.0, 15.5)),
            ],
        ),
        part(
            "menisci",
            "cartilage",
            "tendon",
            "muscle",
            [
                ellipsoid(at(-22.0, -2.0, -1.0), (17.0, 22.0, 3.2)),
                ellipsoid(at(22.0, -2.0, -1.0), (15.0, 19.0, 3.2)),
            ],
        ),
        part(
            "cruciate_ligaments",
            "cartilage",
            "tendon",
            "muscle",
            [
                frustum(at(9.0, -14.0, 22.0), at(-2.0, 10.0, -10.0), 4.0, 3.5),
                frustum(at(-9.0, -10.0, 20.0), at(0.0, -24.0, -14.0), 4.5, 4.0),
            ],
        ),
        part(
            "patellar_tendon",
            "cartilage",
            "tendon",
            "fat",
            [
                frustum(at(2.0, 50.0, 22.0), at(0.0, 34.0, -62.0), 12.0, 3.5, u=(1.0, 0.0, 0.0)),
                frustum(at(2.0, 46.0, 62.0), at(0.0, 34.0, 150.0), 16.0, 5.0, u=(1.0, 0.0, 0.0)),
            ],
        ),
        part(
            "popliteal_vessels",
            "vessel",
            "blood",
            "muscle",
            [
                frustum(at(-4.0, -44.0, 140.0), at(-2.0, -38.0, -90.0), 4.0, 4.0),
                frustum(at(4.0, -48.0, 140.0), at(3.0, -42.0, -90.0), 5.0, 4.5),
            ],
        ),
    ]


def leg_bones(
    side_name: str, hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray
) -> list[Structure]:
    """Femur, patella, tibia, fibula and foot of one side.

    `hip` is the femoral head centre, `knee` the centre of the joint line, `ankle` the centre of
    the tibial plafond (all mm)."""
    s = SIDES[side_name]
    lat = np.array([s, 0.0, 0.0])
    head_r = 24.0
    neck_base = hip + np.array([s * 42.0, -4.0, -28.0])
    trochanter = hip + np.array([s * 68.0, -8.0, -22.0])
    shaft_top = hip + np.array([s * 56.0, -2.0, -62.0])
    distal = knee + np.array([0.0, 2.0, 75.0])
    femur = bone(
        f"{side_name}_femur",
        [
            (ellipsoid(hip, (head_r, head_r, head_r)), 1.3),
            (frustum(hip, neck_base, 16.0, 14.0, taper=1.2, u=(0.0, 1.0, 0.0)), 2.2),
            (ellipsoid(trochanter, (17.0, 22.0, 30.0)), 1.2),
            (ellipsoid(hip + np.array([s * 36.0, -18.0, -72.0]), (10.0, 10.0, 12.0)), 1.0),
            (
                frustum(neck_base + np.array([0.0, 0.0, 10.0]), shaft_top, 22.0, 20.0, taper=0.72),
                2.5,
            ),
            (frustum(shaft_top, distal, 14.5, 15.0, taper=0.97), 4.5),
            *flare(
                distal, knee + np.array([0.0, -6.0, 24.0]), 14.07, 37.0, (1.03, 0.78), (4.5, 1.2)
            ),
            (ellipsoid(knee + np.array([-s * 17.0, -8.0, 19.0]), (25.0, 30.0, 17.0)), 1.2),
            (ellipsoid(knee + np.array([s * 17.0, -6.0, 19.0]), (25.0, 29.0, 17.0)), 1.2),
            (ellipsoid(knee + np.array([0.0, 12.0, 34.0]), (24.0, 12.0, 18.0)), 1.0),
        ],
    )
    # The intercondylar notch opens posteriorly and inferiorly between the condyles.
    femur = replace(
        femur, cutouts=[ellipsoid(knee + np.array([0.0, -22.0, 6.0]), (9.0, 22.0, 16.0))]
    )
    patella = bone(
        f"{side_name}_patella",
        [(ellipsoid(knee + np.array([s * 2.0, 46.0, 42.0]), (21.0, 10.0, 23.0)), 1.5)],
    )
    tibia = bone(
        f"{side_name}_tibia",
        [
            (ellipsoid(knee + np.array([0.0, -2.0, -17.0]), (39.0, 27.0, 13.0)), 1.2),
            *flare(
                knee + np.array([0.0, 4.0, -85.0]),
                knee + np.array([0.0, -2.0, -20.0]),
                15.5,
                37.0,
                (0.8, 0.72),
                (4.5, 1.3),
            ),
            (
                frustum(
                    knee + np.array([0.0, 4.0, -85.0]),
                    ankle + np.array([0.0, 2.0, 45.0]),
                    15.5,
                    12.4,
                    taper=0.9,
                ),
                4.5,
            ),
            *flare(
                ankle + np.array([0.0, 2.0, 45.0]),
                ankle + np.array([0.0, 0.0, 4.0]),
                13.95,
                24.0,
                (0.8, 0.85),
                (4.5, 1.3),
                steps=4,
            ),
            (ellipsoid(ankle + np.array([-s * 16.0, 2.0, -4.0]), (8.0, 12.0, 15.0)), 1.0),
        ],
    )
    fib_head = knee + np.array([s * 36.0, -16.0, -42.0])
    fib_low = ankle + np.array([s * 26.0, -10.0, 22.0])
    fibula = bone(
        f"{side_name}_fibula",
        [
            (ellipsoid(fib_head, (11.0, 11.0, 14.0)), 1.0),
            (frustum(fib_head - np.array([0.0, 0.0, 8.0]), fib_low, 7.0, 6.5, taper=0.95), 2.4),
            (ellipsoid(ankle + np.array([s * 27.0, -10.0, -10.0]), (8.5, 11.0, 20.0)), 1.0),
        ],
    )
    del lat
    return [femur, patella, tibia, fibula, *foot_bones(side_name, ankle)]


# Tarsals: (name, offset from ankle centre (lateral, anterior, up) mm, radii, tilt about x deg).
_TARSALS = (
    ("talus", (0.0, 8.0, -15.0), (18.0, 26.0, 14.0), -10.0),
    ("calcaneus", (4.0, -22.0, -50.0), (19.0, 40.0, 20.0), 20.0),
    ("navicular", (-10.0, 42.0, -30.0), (16.0, 8.0, 13.0), 0.0),
    ("cuboid", (18.0, 50.0, -44.0), (12.0, 14.0, 12.0), 0.0),
    ("medial_cuneiform", (-17.0, 63.0, -37.0), (8.0, 12.0, 13.0), 0.0),
    ("intermediate_cuneiform", (-5.0, 61.0, -34.0), (6.0, 10.0, 10.0), 0.0),
    ("lateral_cuneiform", (6.0, 60.0, -37.0), (6.5, 11.0, 11.0), 0.0),
)
# Rays 1..5: lateral offset at base and head, metatarsal length, shaft radius, phalanx lengths.
_TOES = (
    (1, -17.0, -22.0, 62.0, 6.5, (30.0, 0.0, 22.0)),
    (2, -5.0, -6.0, 74.0, 3.8, (24.0, 12.0, 9.0)),
    (3, 6.0, 5.0, 68.0, 3.6, (21.0, 10.0, 8.0)),
    (4, 16.0, 16.0, 65.0, 3.6, (19.0, 9.0, 8.0)),
    (5, 24.0, 29.0, 60.0, 3.8, (17.0, 8.0, 7.0)),
)


def foot_bones(side_name: str, ankle: np.ndarray) -> list[Structure]:
    """7 tarsals, 5 metatarsals and 14 toe phalanges; the foot points anteriorly (+y)."""
    s = SIDES[side_name]
    bones: list[Structure] = []
    for name, (lat, ant, up), radii, tilt in _TARSALS:
        centre = ankle + np.array([s * lat, ant, up])
        rot = rotation_about((1.0, 0.0, 0.0), np.deg2rad(tilt))
        bones.append(bone(f"{side_name}_{name}", [(ellipsoid(centre, radii, rot), 0.9)]))
    # Metatarsals run forward and down towards the ground at about 20 degrees.
    for ray, base_lat, head_lat, length, shaft, phalanges in _TOES:
        down = np.deg2rad(22.0 if ray == 1 else 18.0)
        base = ankle + np.array([s * base_lat, 76.0 if ray > 1 else 72.0, -38.0])
        direction = np.array([s * (head_lat - base_lat) / length, np.cos(down), -np.sin(down)])
        direction /= np.linalg.norm(direction)
        frame = Frame(
            base,
            direction,
            np.array([s, 0.0, 0.0]),
            np.cross(np.array([s, 0.0, 0.0]), direction) * s,
        )
        bones.append(
            _segment_bone(
                f"{side_name}_metatarsal_{ray}",
                frame,
                0.0,
                length,
                (shaft + 2.5, shaft, shaft + 2.0),
            )
        )
        toe = Frame(
            frame.point(length + 2.5),
            np.array([0.0, 1.0, -0.05]) / np.linalg.norm([0.0, 1.0, -0.05]),
            frame.lateral,
            frame.normal,
        )
        start = 0.0
        for phalanx, plen in zip(("proximal", "middle", "distal"), phalanges, strict=True):
            if plen == 0.0:
                continue
            r = shaft * (0.9 if phalanx == "proximal" else 0.75)
            bones.append(
                _segment_bone(
                    f"{side_name}_toe_{phalanx}_phalanx_{ray}",
                    toe,
                    start,
                    start + plen,
                    (r + 1.8, r, r + 1.2),
                )
            )
            start += plen + 2.0
    return bones
