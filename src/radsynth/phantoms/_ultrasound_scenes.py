"""Tissue scenes of the ultrasound phantoms (step 1 of `radsynth.phantoms.ultrasound`): the
scan plane in mm as an ordered list of shapes filled with materials, drawn from the rng with
anatomical variation, per organ (liver, kidney, gallbladder, thyroid, fetus).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
BBox = tuple[float, float, float, float]  # x_min, x_max, y_min, y_max in mm


@dataclass(frozen=True)
class _Shape:
    """A region of the scan plane: `inside(x, y, u)` with x lateral, y depth below the probe
    centre and u depth along the beam below the skin (all mm); `bbox` bounds it (None: anywhere)."""

    inside: Callable[[FloatArray, FloatArray, FloatArray], BoolArray]
    bbox: BBox | None


def _ellipse(cx: float, cy: float, a: float, b: float, angle_deg: float = 0.0) -> _Shape:
    """Filled ellipse with semi-axes a (along `angle_deg` from the x axis) and b (mm)."""
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))

    def inside(x: FloatArray, y: FloatArray, u: FloatArray) -> BoolArray:
        dx, dy = x - cx, y - cy
        return ((dx * c + dy * s) / a) ** 2 + ((dy * c - dx * s) / b) ** 2 < 1.0

    r = max(a, b) + 1.0
    return _Shape(inside, (cx - r, cx + r, cy - r, cy + r))


def _tube(p0: tuple[float, float], p1: tuple[float, float], r0: float, r1: float) -> _Shape:
    """Tapered tube (vessel in long axis) from p0 (radius r0) to p1 (radius r1), mm."""
    (x0, y0), (x1, y1) = p0, p1
    ex, ey = x1 - x0, y1 - y0
    length2 = max(ex * ex + ey * ey, 1e-6)

    def inside(x: FloatArray, y: FloatArray, u: FloatArray) -> BoolArray:
        t = np.clip(((x - x0) * ex + (y - y0) * ey) / length2, 0.0, 1.0)
        dist2 = (x - x0 - t * ex) ** 2 + (y - y0 - t * ey) ** 2
        return dist2 < (r0 + (r1 - r0) * t) ** 2

    r = max(r0, r1) + 1.0
    return _Shape(inside, (min(x0, x1) - r, max(x0, x1) + r, min(y0, y1) - r, max(y0, y1) + r))


def _layer(u0: float, u1: float) -> _Shape:
    """Tissue layer parallel to the skin between depths u0 and u1 along the beam (mm)."""
    return _Shape(lambda x, y, u: (u >= u0) & (u < u1), None)


def _beyond_arc(cx: float, cy: float, radius: float, y_min: float) -> _Shape:
    """Everything farther than `radius` from (cx, cy) and deeper than y_min (mm)."""

    def inside(x: FloatArray, y: FloatArray, u: FloatArray) -> BoolArray:
        return ((x - cx) ** 2 + (y - cy) ** 2 >= radius**2) & (y > y_min)

    return _Shape(inside, None)


def _union(*shapes: _Shape) -> _Shape:
    def inside(x: FloatArray, y: FloatArray, u: FloatArray) -> BoolArray:
        out = shapes[0].inside(x, y, u)
        for shape in shapes[1:]:
            out = out | shape.inside(x, y, u)
        return out

    boxes = [s.bbox for s in shapes]
    if any(b is None for b in boxes):
        return _Shape(inside, None)
    xs0, xs1, ys0, ys1 = zip(*[b for b in boxes if b is not None], strict=True)
    return _Shape(inside, (min(xs0), max(xs1), min(ys0), max(ys1)))


def _minus(shape: _Shape, hole: _Shape) -> _Shape:
    return _Shape(lambda x, y, u: shape.inside(x, y, u) & ~hole.inside(x, y, u), shape.bbox)


def _both(shape: _Shape, other: _Shape) -> _Shape:
    return _Shape(lambda x, y, u: shape.inside(x, y, u) & other.inside(x, y, u), shape.bbox)


def _deeper_than(y0: float) -> _Shape:
    """Half plane below the depth y0 (mm)."""
    return _Shape(lambda x, y, u: y > y0, None)


def _shell(cx: float, cy: float, a: float, b: float, thickness: float, angle: float) -> _Shape:
    """Elliptical shell of the given wall thickness (mm), e.g. a skull or a uterine wall."""
    inner = _ellipse(cx, cy, a - thickness, b - thickness, angle)
    return _minus(_ellipse(cx, cy, a, b, angle), inner)


@dataclass(frozen=True)
class _Structure:
    """One painted structure. Later structures cover earlier ones.

    masks: the named masks this structure's visible region belongs to.
    wall: specular reflectivity of its boundary, in units of the liver speckle level at focus.
    echo_scale: multiplies the material's backscatter (e.g. hypoechoic medullary pyramids).
    attenuation_scale: multiplies the material's attenuation (e.g. the watery fetal brain).
    refracting: curved fluid or bone boundary that casts thin edge shadows at grazing incidence.
    mirror: gas behind a strong reflector (lung behind the diaphragm) shows a mirror image.
    """

    material: str
    shape: _Shape
    masks: tuple[str, ...] = ()
    wall: float = 0.0
    echo_scale: float = 1.0
    attenuation_scale: float = 1.0
    refracting: bool = False
    mirror: bool = False


@dataclass
class _Scene:
    background: str
    structures: list[_Structure] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, material_name: str, shape: _Shape, *masks: str, **kwargs: Any) -> None:
        self.structures.append(_Structure(material_name, shape, masks, **kwargs))


def _septum(radius: float, lateral: float, u0: float, length: float, tilt: float) -> _Shape:
    """Thin connective-tissue septum roughly parallel to the skin (mm; `radius` of the probe,
    0 for a linear array), `tilt` in mm of depth per mm across."""

    def inside(x: FloatArray, y: FloatArray, u: FloatArray) -> BoolArray:
        across = (radius + u0) * np.arctan2(x, y + radius) if radius > 0 else x
        offset = across - lateral
        return (np.abs(offset) < 0.5 * length) & (np.abs(u - u0 - tilt * offset) < 0.25)

    return _Shape(inside, None)


def _body_wall(scene: _Scene, rng: np.random.Generator, subject: _Subject) -> float:
    """Skin, subcutaneous fat with septa and abdominal muscle; returns the depth of the
    peritoneum below the skin (mm)."""
    skin = rng.uniform(1.5, 2.5)
    fat = rng.uniform(8.0, 20.0) if subject.sex == "female" else rng.uniform(5.0, 15.0)
    fat += float(np.clip(subject.age - 30, 0, 40)) * 0.1
    muscle = rng.uniform(6.0, 11.0) * (1.0 - 0.004 * float(np.clip(subject.age - 40, 0, 50)))
    # Subcutaneous fat is hypoechoic with echogenic septa, unlike echogenic perirenal fat.
    scene.add("skin", _layer(0.0, skin), wall=3.0)
    scene.add("fat", _layer(skin, skin + fat), echo_scale=0.45, wall=0.8)
    for _ in range(int(rng.integers(4, 9))):
        septum = _septum(
            subject.radius,
            rng.uniform(-70.0, 70.0),
            skin + rng.uniform(0.15, 0.85) * fat,
            rng.uniform(8.0, 30.0),
            rng.uniform(-0.25, 0.25),
        )
        scene.add("fat", septum, echo_scale=2.0, wall=1.0)
    scene.add("muscle", _layer(skin + fat, skin + fat + muscle), wall=4.0)
    return skin + fat + muscle


def _vessel(scene: _Scene, shape: _Shape, sheath: _Shape | None, *masks: str) -> None:
    """Anechoic vessel lumen; portal veins carry an echogenic fibro-fatty sheath."""
    if sheath is not None:
        scene.add("fat", sheath, *masks, echo_scale=2.2)
    scene.add("blood", shape, *masks, wall=2.0 if sheath is not None else 0.5)


def _liver_vessels(scene: _Scene, rng: np.random.Generator, centre: tuple[float, float]) -> None:
    """Hepatic veins converging on the inferior vena cava, portal branches with bright walls."""
    cx, cy = centre
    for k in range(3):
        angle = np.radians(-155.0 + 65.0 * k + rng.uniform(-10.0, 10.0))
        length = rng.uniform(35.0, 60.0)
        bend = np.radians(rng.uniform(-15.0, 15.0))
        mid = (cx + 0.5 * length * np.cos(angle), cy + 0.5 * length * np.sin(angle))
        end = (
            mid[0] + 0.5 * length * np.cos(angle + bend),
            mid[1] + 0.5 * length * np.sin(angle + bend),
        )
        r0 = rng.uniform(4.5, 6.5)
        shape = _union(_tube((cx, cy), mid, r0, 0.7 * r0), _tube(mid, end, 0.7 * r0, 1.5))
        _vessel(scene, shape, None, "hepatic_vessels")
    _vessel(
        scene,
        _ellipse(cx, cy, rng.uniform(9.0, 12.0), rng.uniform(6.0, 8.0), rng.uniform(-20.0, 20.0)),
        None,
        "hepatic_vessels",
        "inferior_vena_cava",
    )
    for _ in range(int(rng.integers(3, 7))):
        px, py = cx + rng.uniform(-60.0, 60.0), cy + rng.uniform(-75.0, -20.0)
        r, angle = rng.uniform(1.8, 4.0), rng.uniform(0.0, 180.0)
        if rng.random() < 0.5:  # a branch cut along its axis
            t = rng.uniform(6.0, 14.0)
            dx, dy = t * np.cos(np.radians(angle)), t * np.sin(np.radians(angle))
            lumen = _tube((px - dx, py - dy), (px + dx, py + dy), r, 0.8 * r)
            sheath = _tube((px - dx, py - dy), (px + dx, py + dy), r + 1.3, 0.8 * r + 1.3)
        else:
            lumen = _ellipse(px, py, r, 0.8 * r, angle)
            sheath = _ellipse(px, py, r + 1.3, 0.8 * r + 1.3, angle)
        _vessel(scene, lumen, sheath, "hepatic_vessels", "portal_veins")


def _liver_scene(rng: np.random.Generator, subject: _Subject) -> _Scene:
    scene = _Scene("bowel")
    depth = subject.depth
    wall = _body_wall(scene, rng, subject)
    # The liver dome: the diaphragm is the deep arc of a large circle, lung (gas) beyond it.
    radius = rng.uniform(0.62, 0.72) * depth
    cx, cy = rng.uniform(-20.0, 20.0), depth - radius - rng.uniform(8.0, 22.0)
    liver = _minus(_ellipse(cx, cy, radius, radius), _layer(0.0, wall))
    scene.add("liver", liver, "liver", wall=3.0, echo_scale=1.0 + 0.005 * max(subject.age - 40, 0))
    ivc = (cx + rng.uniform(-15.0, 15.0), cy + radius - rng.uniform(12.0, 20.0))
    _liver_vessels(scene, rng, ivc)
    if rng.random() < 0.5:
        side = rng.choice([-1.0, 1.0])
        kx, ky = cx + side * radius * 0.5, cy + radius * 0.72
        scene.add("kidney", _ellipse(kx, ky, 30.0, 18.0, side * 35.0), "kidney", wall=4.0)
        scene.add(
            "renal_sinus",
            _ellipse(kx, ky, 17.0, 6.0, side * 35.0),
            "kidney",
            "renal_sinus",
            echo_scale=1.4,
        )
    thick = 3.5
    dome = _minus(
        _ellipse(cx, cy, radius + thick, radius + thick), _ellipse(cx, cy, radius, radius)
    )
    # The diaphragm shows as one bright band: muscle backed by the lung's total reflection.
    scene.add("muscle", _minus(dome, _layer(0.0, wall)), "diaphragm", echo_scale=4.0)
    scene.add(
        "lung", _beyond_arc(cx, cy, radius + thick, cy + 0.2 * radius), wall=10.0, mirror=True
    )
    return scene


def _kidney(
    scene: _Scene,
    rng: np.random.Generator,
    centre: tuple[float, float],
    size: tuple[float, float],
    angle: float,
    age: int,
) -> None:
    """Kidney in long axis: cortex, medullary pyramids, echogenic sinus fat, perirenal fat."""
    kx, ky = centre
    a, b = size
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))

    def at(t: float, n: float) -> tuple[float, float]:  # along the long axis, across it (mm)
        return kx + t * c - n * s, ky + t * s + n * c

    scene.add("fat", _ellipse(kx, ky, a + 6.0, b + 6.0, angle), "perirenal_fat", wall=2.0)
    cortex_echo = 1.0 + 0.005 * max(age - 50, 0)  # the cortex brightens with age
    scene.add(
        "kidney",
        _ellipse(kx, ky, a, b, angle),
        "kidney",
        "renal_cortex",
        wall=6.0,
        echo_scale=cortex_echo,
    )
    for side in (-1.0, 1.0):
        n_pyramids = int(rng.integers(3, 5))
        for k in range(n_pyramids):
            # A cone from its papilla at the sinus to its base under the cortex.
            t = (k + 0.5) / n_pyramids * 1.3 * a - 0.65 * a + rng.uniform(-3.0, 3.0)
            apex = at(0.8 * t, side * 0.18 * b)
            base = at(1.1 * t, side * b * (0.62 - 0.3 * (t / a) ** 2))
            scene.add(
                "kidney",
                _tube(apex, base, 1.5, rng.uniform(0.2, 0.26) * b),
                "kidney",
                "renal_pyramids",
                echo_scale=0.3,
            )
    lobes = [_ellipse(kx, ky, 0.62 * a, 0.22 * b, angle)]
    for _ in range(5):
        t = rng.uniform(-0.5, 0.5) * a
        lobes.append(
            _ellipse(
                *at(t, rng.uniform(-0.15, 0.15) * b),
                rng.uniform(5.0, 10.0),
                rng.uniform(3.0, 6.0),
                angle + rng.uniform(-35, 35),
            )
        )
    scene.add("renal_sinus", _union(*lobes), "kidney", "renal_sinus", wall=1.0, echo_scale=1.5)


def _kidney_scene(rng: np.random.Generator, subject: _Subject) -> _Scene:
    scene = _Scene("muscle")
    depth = subject.depth
    wall = _body_wall(scene, rng, subject)
    side = "right" if rng.random() < 0.7 else "left"
    organ = "liver" if side == "right" else "spleen"
    scale = 1.06 if subject.sex == "male" else 1.0
    a = rng.uniform(46.0, 54.0) * scale  # half the bipolar length (mm)
    b = rng.uniform(20.0, 25.0) * scale
    ky = wall + rng.uniform(0.25, 0.33) * depth + b
    kx = rng.uniform(-10.0, 10.0)
    angle = rng.uniform(-18.0, 18.0)
    # Liver (or spleen) drapes over the kidney, its lower edge tapering up at the sides.
    lower = ky + rng.uniform(0.0, 0.4) * b
    covering = _minus(
        _ellipse(kx + rng.uniform(-20.0, 20.0), wall, 1.3 * depth, lower - wall), _layer(0.0, wall)
    )
    scene.add(organ, covering, organ, wall=2.0)
    _kidney(scene, rng, (kx, ky), (a, b), angle, subject.age)
    scene.facts["side"] = side
    return scene


def _gallbladder_scene(rng: np.random.Generator, subject: _Subject) -> _Scene:
    scene = _Scene("liver")
    depth = subject.depth
    wall = _body_wall(scene, rng, subject)
    scene.add("liver", _minus(_layer(wall, 2.0 * depth), _layer(0.0, wall)), "liver", wall=3.0)
    angle = rng.uniform(-25.0, 25.0)
    length, width = rng.uniform(28.0, 38.0), rng.uniform(11.0, 16.0)
    gx, gy = rng.uniform(-15.0, 15.0), wall + rng.uniform(15.0, 28.0) + width
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    neck = (gx - 0.9 * length * c, gy - 0.9 * length * s)
    for _ in range(int(rng.integers(2, 5))):
        px, py = rng.uniform(-70.0, 70.0), gy + rng.uniform(-10.0, 60.0)
        if abs(px - gx) > length + 15.0:
            r = rng.uniform(2.0, 4.0)
            _vessel(
                scene,
                _ellipse(px, py, r, r),
                _ellipse(px, py, r + 1.3, r + 1.3),
                "hepatic_vessels",
                "portal_veins",
            )
    body = _union(
        _ellipse(gx, gy, length, width, angle),
        _ellipse(neck[0], neck[1], 0.45 * length, 0.5 * width, angle - 20.0),
    )
    scene.add(
        "muscle",
        _union(
            _ellipse(gx, gy, length + 1.5, width + 1.5, angle),
            _ellipse(neck[0], neck[1], 0.45 * length + 1.5, 0.5 * width + 1.5, angle - 20.0),
        ),
        "gallbladder_wall",
        echo_scale=2.0,
    )
    scene.add("fluid", body, "gallbladder", wall=6.0, refracting=True)
    scene.facts["gallbladder_length_mm"] = round(float(2.0 * length * 1.2), 1)
    return scene


def _thyroid_scene(rng: np.random.Generator, subject: _Subject) -> _Scene:
    """Transverse view of the neck; the patient's right is on the image left."""
    scene = _Scene("muscle")
    skin, fat = rng.uniform(1.0, 1.6), rng.uniform(1.5, 3.5)
    scene.add("skin", _layer(0.0, skin), wall=3.0)
    scene.add("fat", _layer(skin, skin + fat), echo_scale=0.45, wall=2.0)
    top = skin + fat
    scale = (1.08 if subject.sex == "male" else 1.0) * (1.0 - 0.002 * max(subject.age - 50, 0))
    rt = rng.uniform(7.0, 8.5) * scale  # tracheal radius
    ty = top + rng.uniform(6.0, 8.0) + rt
    la, lb = rng.uniform(7.0, 8.5) * scale, rng.uniform(7.0, 9.0) * scale
    edge = subject.half_width
    for sign, name in ((-1.0, "right"), (1.0, "left")):
        lx, ly = sign * (rt + 0.75 * la), ty + 1.0
        scene.add(
            "muscle",
            _ellipse(sign * 9.0, top + 2.8, 10.5, 2.2, sign * 14.0),
            "strap_muscles",
            wall=3.0,
        )
        scene.add(
            "muscle",
            _ellipse(sign * (edge - 2.0), top + 5.0, 9.0, 3.8, sign * -18.0),
            "sternocleidomastoid",
            wall=3.0,
        )
        scene.add(
            "muscle",
            _ellipse(sign * (rt + 6.0), ty + rt + 5.0, 8.0, 3.5),
            "longus_colli",
            wall=2.0,
            echo_scale=0.9,
        )
        scene.add(
            "thyroid",
            _ellipse(lx, ly, la, lb, sign * rng.uniform(10.0, 25.0)),
            f"thyroid_{name}_lobe",
            wall=2.5,
        )
        rc = rng.uniform(2.8, 3.5)
        carotid_x = sign * min(abs(lx) + 0.8 * la + rc, edge - rc - 1.5)
        scene.add(
            "blood",
            _ellipse(carotid_x, ly + 0.5 * lb, rc, rc),
            f"{name}_common_carotid",
            wall=8.0,
            refracting=True,
        )
        jx, jy = carotid_x + sign * rng.uniform(5.5, 7.0), ly + 0.2 * lb
        scene.add(
            "blood",
            _ellipse(jx, jy, rng.uniform(3.5, 5.0), rng.uniform(2.0, 3.5), sign * 20.0),
            f"{name}_internal_jugular_vein",
            wall=2.0,
        )
    isthmus = _minus(_ellipse(0.0, ty - 1.0, rt + 5.5, rt + 3.0), _ellipse(0.0, ty, rt, rt))
    scene.add("thyroid", _minus(isthmus, _deeper_than(ty - 0.4 * rt)), "isthmus", wall=2.5)
    ex, ey = rt + 2.5, ty + rt - 1.5  # oesophagus behind the left lobe, beside the trachea
    scene.add("muscle", _ellipse(ex, ey, 6.5, 4.0, 10.0), "oesophagus", wall=2.0, echo_scale=0.8)
    scene.add("fat", _ellipse(ex, ey, 3.5, 1.0, 10.0), "oesophagus", echo_scale=2.0)
    scene.add("cartilage", _ellipse(0.0, ty, rt, rt), "trachea", wall=2.0)
    scene.add("air", _ellipse(0.0, ty + 0.4, rt - 1.6, rt - 2.0), "trachea", wall=14.0)
    bone_y = ty + rt + 10.0
    scene.add(
        "cortical_bone",
        _minus(_ellipse(0.0, bone_y + 10.0, 16.0, 12.0), _layer(0.0, bone_y)),
        "vertebra",
        wall=8.0,
    )
    return scene


def _fetal_head(scene: _Scene, centre: tuple[float, float], bpd: float, angle: float) -> None:
    """Axial head at the biparietal plane: skull, brain, thalami, midline echo (falx), mm."""
    hx, hy = centre
    a, b = 0.5 * bpd / 0.8, 0.5 * bpd  # cephalic index 0.8
    # The fetal brain is watery and the skull only partly ossified: both attenuate less.
    scene.add(
        "grey_matter",
        _ellipse(hx, hy, a, b, angle),
        "fetal_head",
        echo_scale=0.9,
        attenuation_scale=0.5,
    )
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    for sign in (-1.0, 1.0):
        centre_t = (hx + sign * 0.12 * b * s, hy - sign * 0.12 * b * c)
        scene.add(
            "grey_matter",
            _ellipse(*centre_t, 0.2 * a, 0.1 * b, angle),
            "fetal_head",
            echo_scale=0.35,
            wall=1.0,
        )
    end0 = (hx - 0.85 * a * c, hy - 0.85 * a * s)
    end1 = (hx + 0.85 * a * c, hy + 0.85 * a * s)
    scene.add("white_matter", _tube(end0, end1, 0.6, 0.6), "fetal_head", wall=4.0, echo_scale=2.0)
    scene.add(
        "trabecular_bone",
        _shell(hx, hy, a, b, 1.6, angle),
        "fetal_head",
        "fetal_skull",
        wall=10.0,
        refracting=True,
        attenuation_scale=0.6,
    )


def _fetal_trunk(
    scene: _Scene,
    rng: np.random.Generator,
    centre: tuple[float, float],
    length: float,
    width: float,
    angle: float,
) -> None:
    """Fetal trunk in long axis with the stomach and the spine's ossification centres (mm)."""
    bx, by = centre
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    scene.add(
        "liver", _ellipse(bx, by, length, width, angle), "fetal_body", wall=3.0, echo_scale=0.8
    )
    back = 1.0 if c >= 0 else -1.0  # spine down, the usual imaging position
    sx, sy = bx + 0.15 * length * c + back * 0.35 * width * s, by + 0.15 * length * s
    scene.add(
        "fluid",
        _ellipse(sx, sy - back * 0.35 * width * c, 0.22 * width, 0.16 * width, angle),
        "fetal_body",
        "fetal_stomach",
        wall=1.0,
    )
    n_vertebrae = int(rng.integers(9, 12))
    for k in range(n_vertebrae):
        t = (k / (n_vertebrae - 1) - 0.5) * 1.6 * length
        bend = 0.25 * width * (t / length) ** 2
        nx = back * (0.72 * width - bend)
        r = rng.uniform(1.1, 1.5)
        scene.add(
            "cortical_bone",
            _ellipse(bx + t * c - nx * s, by + t * s + nx * c, r, r),
            "fetal_body",
            "fetal_spine",
            wall=6.0,
        )


def _fetus_scene(rng: np.random.Generator, subject: _Subject) -> _Scene:
    scene = _Scene("muscle")
    depth = subject.depth
    top = _body_wall(scene, rng, subject)
    myometrium = rng.uniform(6.0, 10.0)
    ub = 0.5 * (rng.uniform(0.72, 0.85) * depth - top + myometrium)
    ua, ux, uy = rng.uniform(1.1, 1.4) * depth, rng.uniform(-15.0, 15.0), top + ub
    cavity = _ellipse(ux, uy, ua - myometrium, ub - myometrium)
    scene.add("muscle", _ellipse(ux, uy, ua, ub), "uterine_wall", wall=4.0, echo_scale=1.1)
    scene.add("fluid", cavity, "amniotic_fluid", wall=3.0)
    anterior = rng.random() < 0.5
    thickness = rng.uniform(20.0, 30.0)
    placenta_y = top + myometrium if anterior else uy + ub - myometrium
    placenta = _ellipse(
        ux + rng.uniform(-40.0, 40.0), placenta_y, rng.uniform(55.0, 75.0), thickness
    )
    # Placental tissue is acoustically close to spleen: homogeneous, slightly echogenic.
    scene.add("spleen", _both(placenta, cavity), "placenta", wall=2.0, echo_scale=1.15)
    weeks = rng.uniform(18.0, 30.0)
    bpd = 2.6 * weeks - 5.0
    head_a = 0.5 * bpd / 0.8
    direction = rng.choice([-1.0, 1.0])
    hx = -direction * rng.uniform(0.12, 0.22) * depth
    free = (
        top + myometrium + (thickness if anterior else 0.0),
        uy + ub - myometrium - (0.0 if anterior else thickness),
    )
    hy = float(
        np.clip(
            0.5 * sum(free) + rng.uniform(-10.0, 10.0),
            free[0] + head_a * 0.9,
            free[1] - head_a * 0.6,
        )
    )
    head_angle = rng.uniform(-25.0, 25.0)
    body_angle = head_angle + rng.uniform(-20.0, 20.0)
    body_len = 0.95 * head_a
    reach = head_a + 0.75 * body_len
    body = (
        hx + direction * reach * np.cos(np.radians(body_angle)),
        hy + direction * reach * np.sin(np.radians(body_angle)),
    )
    _fetal_trunk(scene, rng, body, body_len, 0.42 * bpd, body_angle)
    _fetal_head(scene, (hx, hy), bpd, head_angle)
    scene.facts.update(
        gestational_age_weeks=round(float(weeks), 1), biparietal_diameter_mm=round(float(bpd), 1)
    )
    return scene


@dataclass(frozen=True)
class _Subject:
    """Who is scanned, and the field the scene must fill (mm)."""

    sex: str
    age: int
    depth: float  # imaged depth
    radius: float  # curvilinear probe radius; 0 for a linear array
    half_width: float  # linear array half aperture; sector half angle (rad) for a curvilinear


_SCENES: dict[str, Callable[[np.random.Generator, _Subject], _Scene]] = {
    "liver": _liver_scene,
    "kidney": _kidney_scene,
    "gallbladder": _gallbladder_scene,
    "thyroid": _thyroid_scene,
    "fetus": _fetus_scene,
}
