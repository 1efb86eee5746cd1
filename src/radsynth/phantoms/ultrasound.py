"""B-mode ultrasound phantoms: a tissue scene imaged by a simple but physical pulse-echo model.

The pipeline follows the signal path of a scanner:

1. A 2-D tissue scene in the scan plane (mm), drawn from the rng with anatomical variation: an
   ordered list of structures, each a shape filled with a material of `materials.py`.
2. Scatterers on a fine beam grid (depth x beam line): fully developed speckle as a complex
   Gaussian field scaled by each material's `echo`, plus coherent specular reflectors at organ
   capsules, vessel walls and bone surfaces, weighted by the angle of incidence.
3. Pulse-echo point-spread function: a Gaussian-modulated pulse at the centre frequency (axial)
   times a Gaussian beam whose width grows away from the focal depth (lateral). The simulation
   runs on the demodulated (baseband) analytic signal: the carrier phase of each scatterer is
   absorbed into its complex Gaussian amplitude, so the magnitude is exactly the envelope that a
   Hilbert transform of the RF line would give.
4. Attenuation integrated along each beam line from `sound_attenuation` x frequency, so shadows
   behind bone and gas and enhancement behind fluid come out of the physics; time-gain
   compensation corrects the typical (median) loss of the scene, not the local one.
5. Log compression to the dynamic range (dB) and a gray map.
6. Scan conversion into the display: a curvilinear sector fan or a linear-array rectangle, black
   outside, depth increasing downwards; masks are evaluated in the same display geometry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft
from scipy import ndimage

from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.materials import material

US_ORGANS: tuple[str, ...] = ("liver", "kidney", "gallbladder", "thyroid", "fetus")

SPEED_OF_SOUND_MM_PER_US = 1.54
# Fine beam grid: samples per wavelength along depth (the envelope needs about 3, we keep 4).
SAMPLES_PER_WAVELENGTH = 4
# The scene is painted on a grid this many times coarser in depth (about one wavelength).
SCENE_DECIMATION = 4

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
BBox = tuple[float, float, float, float]  # x_min, x_max, y_min, y_max in mm


# --------------------------------------------------------------------------------------------
# 1. Shapes and scenes
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# 2. Probe and grids
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Probe:
    """Transducer geometry. Curvilinear: lines fan out from an apex `radius_mm` above the skin,
    `half_width` in radians. Linear: parallel lines, `half_width` in mm."""

    kind: str
    frequency_mhz: float
    depth_mm: float
    half_width: float
    radius_mm: float
    focus_mm: float

    @property
    def wavelength_mm(self) -> float:
        return SPEED_OF_SOUND_MM_PER_US / self.frequency_mhz

    def beam_sigma_mm(self, depth: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Lateral pulse-echo beam width (Gaussian sigma, mm) at each depth (mm)."""
        f_number = 4.0 if self.kind == "curvilinear" else 3.0  # effective, with apodisation
        focal = 1.2 * self.wavelength_mm * f_number / 2.355
        growth = (depth - self.focus_mm) / (0.3 * self.depth_mm)
        return focal * np.sqrt(1.0 + growth**2)

    def line_spacing_mm(
        self, depth: NDArray[np.floating[Any]], n_lines: int
    ) -> NDArray[np.float64]:
        """Distance between neighbouring beam lines (mm) at each depth (mm)."""
        step = 2.0 * self.half_width / n_lines
        depth_mm = np.asarray(depth, dtype=np.float64)
        if self.kind == "curvilinear":
            return (self.radius_mm + depth_mm) * step
        return np.full_like(depth_mm, step)

    def n_lines(self) -> int:
        """Enough lines to sample the focused beam (spacing 0.9 sigma at the focus)."""
        sigma = float(self.beam_sigma_mm(np.array([self.focus_mm]))[0])
        reach = self.radius_mm + self.focus_mm if self.kind == "curvilinear" else 1.0
        return int(np.ceil(2.0 * self.half_width * reach / (0.9 * sigma)))


def _make_probe(organ: str, rng: np.random.Generator, frequency_mhz: float | None) -> _Probe:
    if organ == "thyroid":
        freq = rng.uniform(10.0, 12.0) if frequency_mhz is None else frequency_mhz
        depth = rng.uniform(38.0, 45.0)
        return _Probe("linear", freq, depth, rng.uniform(22.0, 25.0), 0.0, 0.5 * depth)
    freq = rng.uniform(3.5, 5.0) if frequency_mhz is None else frequency_mhz
    limits = {"liver": 150.0, "kidney": 130.0, "gallbladder": 120.0, "fetus": 150.0}[organ]
    depth_mm = rng.uniform(limits, limits + (30.0 if organ == "fetus" else 20.0))
    half = np.radians(rng.uniform(30.0, 36.0))
    return _Probe("curvilinear", freq, depth_mm, half, rng.uniform(45.0, 60.0), 0.5 * depth_mm)


@dataclass
class _Grid:
    """Sample positions (mm) of a 2-D grid and a way to find the sub-block a box touches."""

    x: FloatArray
    y: FloatArray
    u: FloatArray
    window: Callable[[BBox | None], tuple[slice, slice]]


def _beam_grid(probe: _Probe, n_rows: int, n_lines: int, dz: float) -> _Grid:
    """Grid of (depth sample, beam line); row i lies at depth (i + 0.5) dz mm."""
    depth = ((np.arange(n_rows) + 0.5) * dz)[:, None]
    step = 2.0 * probe.half_width / n_lines
    lateral = -probe.half_width + (np.arange(n_lines) + 0.5) * step
    big_r = probe.radius_mm
    if probe.kind == "curvilinear":
        x = (big_r + depth) * np.sin(lateral)[None, :]
        y = (big_r + depth) * np.cos(lateral)[None, :] - big_r
    else:
        x = np.broadcast_to(lateral[None, :], (n_rows, n_lines))
        y = np.broadcast_to(depth, (n_rows, n_lines))
    u = np.broadcast_to(depth, (n_rows, n_lines))

    def window(bbox: BBox | None) -> tuple[slice, slice]:
        if bbox is None:
            return slice(0, n_rows), slice(0, n_lines)
        x0, x1, y0, y1 = bbox
        if probe.kind == "linear":
            d0, d1, l0, l1 = y0, y1, x0, x1
        else:
            ay = -big_r  # the apex
            near = np.hypot(max(x0, 0.0, -x1), max(y0 - ay, 0.0, ay - y1))
            corners = [(cx, cy - ay) for cx in (x0, x1) for cy in (y0, y1)]
            d0 = near - big_r
            d1 = max(np.hypot(cx, cy) for cx, cy in corners) - big_r
            if y0 <= ay:  # the box reaches above the apex: any angle
                l0, l1 = -np.pi, np.pi
            else:
                angles = [np.arctan2(cx, cy) for cx, cy in corners]
                l0, l1 = min(angles), max(angles)
        r0, r1 = int(np.floor(d0 / dz)) - 1, int(np.ceil(d1 / dz)) + 2
        c0 = int(np.floor((l0 + probe.half_width) / step)) - 1
        c1 = int(np.ceil((l1 + probe.half_width) / step)) + 2
        return slice(max(r0, 0), max(min(r1, n_rows), 0)), slice(
            max(c0, 0), max(min(c1, n_lines), 0)
        )

    as32 = np.float32
    return _Grid(x.astype(as32), y.astype(as32), u.astype(as32), window)


@dataclass(frozen=True)
class _Display:
    """Square display raster: pixel (row, col) has its centre at x0 + (col + 0.5) spacing,
    y0 + (row + 0.5) spacing (mm)."""

    size: int
    spacing_mm: float
    x0: float
    y0: float


def _display_layout(probe: _Probe, size: int) -> _Display:
    if probe.kind == "curvilinear":
        far = probe.radius_mm + probe.depth_mm
        width = 2.0 * far * np.sin(probe.half_width)
        top = probe.radius_mm * np.cos(probe.half_width) - probe.radius_mm
        height = probe.depth_mm - top
    else:
        width, top, height = 2.0 * probe.half_width, 0.0, probe.depth_mm
    spacing = 1.02 * max(width, height) / size
    return _Display(size, float(spacing), -0.5 * size * spacing, top - 0.01 * size * spacing)


def _display_grid(
    probe: _Probe, display: _Display
) -> tuple[_Grid, BoolArray, FloatArray, FloatArray]:
    """Display grid, the fan (imaged region), and per pixel the depth and lateral beam coordinate
    (mm for depth; radians or mm across the lines)."""
    n, s = display.size, display.spacing_mm
    x = np.broadcast_to((display.x0 + (np.arange(n) + 0.5) * s)[None, :], (n, n))
    y = np.broadcast_to((display.y0 + (np.arange(n) + 0.5) * s)[:, None], (n, n))
    if probe.kind == "curvilinear":
        depth = np.hypot(x, y + probe.radius_mm) - probe.radius_mm
        lateral = np.arctan2(x, y + probe.radius_mm)
    else:
        depth, lateral = y, x
    fan = (depth >= 0.0) & (depth < probe.depth_mm) & (np.abs(lateral) <= probe.half_width)
    fan &= (y + probe.radius_mm > 0.0) if probe.kind == "curvilinear" else True

    def window(bbox: BBox | None) -> tuple[slice, slice]:
        if bbox is None:
            return slice(0, n), slice(0, n)
        x0, x1, y0, y1 = bbox
        cols = (int((x0 - display.x0) / s) - 1, int((x1 - display.x0) / s) + 2)
        rows = (int((y0 - display.y0) / s) - 1, int((y1 - display.y0) / s) + 2)
        return (
            slice(min(max(rows[0], 0), n), min(max(rows[1], 0), n)),
            slice(min(max(cols[0], 0), n), min(max(cols[1], 0), n)),
        )

    f32 = np.float32
    grid = _Grid(x.astype(f32), y.astype(f32), np.maximum(depth, 0.0).astype(f32), window)
    return grid, fan, depth.astype(f32), lateral.astype(f32)


def _paint(
    scene: _Scene, grid: _Grid
) -> tuple[NDArray[np.int16], list[tuple[slice, slice, BoolArray]]]:
    """Label map (0 = background, k = k-th structure) and each structure's own shape block."""
    label = np.zeros(grid.x.shape, dtype=np.int16)
    blocks = []
    for k, structure in enumerate(scene.structures, start=1):
        rows, cols = grid.window(structure.shape.bbox)
        inside = structure.shape.inside(grid.x[rows, cols], grid.y[rows, cols], grid.u[rows, cols])
        label[rows, cols][inside] = k
        blocks.append((rows, cols, inside))
    return label, blocks


# --------------------------------------------------------------------------------------------
# 3. Pulse-echo physics on the beam grid
# --------------------------------------------------------------------------------------------

_GAS = frozenset({"air", "lung", "bowel_gas"})


@dataclass
class _BeamData:
    """Everything simulated along the beam lines, before log compression.

    envelope: detected, time-gain-compensated echo amplitude (fine rows x lines), liver at the
        focus has mean 0.886 (Rayleigh with unit power).
    label: structure index per coarse row (SCENE_DECIMATION fine rows each) and line.
    """

    probe: _Probe
    scene: _Scene
    envelope: FloatArray
    label: NDArray[np.int16]
    dz_mm: float
    n_lines: int


def _property(scene: _Scene, name: str) -> NDArray[np.float32]:
    """Per label (background first) a material property scaled by the structure settings."""
    mats = [material(scene.background)] + [material(s.material) for s in scene.structures]
    values = [getattr(m, name) for m in mats]
    if name in ("echo", "sound_attenuation"):
        key = "echo_scale" if name == "echo" else "attenuation_scale"
        scales = [1.0] + [getattr(s, key) for s in scene.structures]
        values = [v * k for v, k in zip(values, scales, strict=True)]
    return np.asarray(values, dtype=np.float32)


def _interfaces(
    scene: _Scene,
    label: NDArray[np.int16],
    blocks: Sequence[tuple[slice, slice, BoolArray]],
    probe: _Probe,
    dz: float,
    n_lines: int,
) -> tuple[FloatArray, FloatArray]:
    """Specular reflectivity at structure boundaries crossed by the beams, weighted by cos^2 of
    the angle of incidence, and the edge-shadow loss (dB) at grazing refracting boundaries."""
    specular = np.zeros(label.shape, dtype=np.float32)
    loss_db = np.zeros(label.shape, dtype=np.float32)
    for k, (structure, (rows, cols, inside)) in enumerate(
        zip(scene.structures, blocks, strict=True), start=1
    ):
        if (structure.wall <= 0.0 and not structure.refracting) or inside.shape[0] < 2:
            continue
        sub = label[rows, cols]
        edge = (inside[1:] != inside[:-1]) & ((sub[1:] == k) | (sub[:-1] == k))
        if not edge.any():
            continue
        depth = (np.arange(rows.start, rows.stop) + 0.5) * dz
        dx = probe.line_spacing_mm(depth, n_lines)
        sigma = (0.7 / dz, 0.7 / float(np.median(dx)))
        smooth = ndimage.gaussian_filter(inside.astype(np.float32), sigma, mode="nearest")
        g_axial = np.diff(smooth, axis=0) / dz
        g_lateral = np.gradient(smooth, axis=1)[1:] / dx[1:, None]
        ii, jj = np.nonzero(edge)
        ga, gl = g_axial[ii, jj], g_lateral[ii, jj]
        cos2 = np.where(ga**2 + gl**2 > 0, ga**2 / (ga**2 + gl**2 + 1e-12), 1.0)
        target = (rows.start + 1 + ii, cols.start + jj)
        specular[target] += structure.wall * cos2
        if structure.refracting:
            # Refraction bends the beam away at grazing incidence: thin edge shadows.
            loss_db[target] += 14.0 * np.clip(1.0 - np.sqrt(cos2) / 0.35, 0.0, 1.0)
    return specular, loss_db


def _attenuation_db(
    scene: _Scene, label: NDArray[np.int16], loss_db: FloatArray, probe: _Probe, dz: float
) -> FloatArray:
    """Two-way attenuation (dB) from the skin to the middle of each coarse sample."""
    alpha = _property(scene, "sound_attenuation")[label] * (probe.frequency_mhz * 0.1 * dz)
    per_row = 2.0 * alpha + loss_db
    return (np.cumsum(per_row, axis=0) - 0.5 * per_row).astype(np.float32)


def _reverberation(
    source: FloatArray, attenuation: FloatArray, gas: BoolArray, near_rows: int
) -> FloatArray:
    """Echoes bouncing between the probe face and strong reflectors reappear at two and three
    times their depth (near-field lines, ring-down below gas)."""
    src = np.where(gas, source, 0.0).astype(np.float32)
    src[:near_rows] = source[:near_rows]
    out = np.zeros_like(source)
    n = source.shape[0]
    for k, coef in ((2, 0.2), (3, 0.06), (4, 0.02)):
        m = (n + k - 1) // k
        out[::k] += coef * src[:m] * attenuation[:m] ** (k - 1)
    return out


def _time_gain_db(
    scene: _Scene, label: NDArray[np.int16], probe: _Probe, dz: float
) -> NDArray[np.float64]:
    """Time-gain compensation (dB per coarse row): it undoes most of the loss of the typical
    (median) soft tissue at each depth, so bone, gas and fluid still shadow or enhance."""
    rate = _property(scene, "sound_attenuation")[label].astype(np.float64)
    rate[rate > 3.0] = np.nan  # bone and gas are local, not what the sonographer compensates
    all_hard = np.isnan(rate).all(axis=1)
    rate[all_hard] = 0.5
    typical = np.nanmedian(rate, axis=1)
    typical = ndimage.gaussian_filter1d(typical, 4.0 / dz, mode="nearest")
    return 0.95 * np.cumsum(2.0 * typical * probe.frequency_mhz * 0.1 * dz)


def _mirror(
    field_: NDArray[np.complex64], label: NDArray[np.int16], scene: _Scene, atten_db: FloatArray
) -> None:
    """Mirror-image artefact: behind a gas reflector (lung behind the diaphragm) the scanner
    shows the tissue in front of it once more, reflected about the interface; in place."""
    ids = [k for k, s in enumerate(scene.structures, 1) if s.mirror]
    hit = np.isin(label, ids)
    lines = np.nonzero(hit.any(axis=0))[0]
    if lines.size == 0:
        return
    first = hit[:, lines].argmax(axis=0) * SCENE_DECIMATION
    rows = np.arange(field_.shape[0])[:, None]
    source = 2 * first[None, :] - rows
    behind = (rows >= first[None, :]) & (source >= 0)
    source = np.clip(source, 0, field_.shape[0] - 1)
    loss = np.repeat(atten_db[:, lines], SCENE_DECIMATION, axis=0)
    extra_db = 2.0 * (
        np.take_along_axis(loss, first[None, :], axis=0) - np.take_along_axis(loss, source, axis=0)
    )  # the way back and forth
    mirrored = np.take_along_axis(field_[:, lines], source, axis=0) * (
        0.5 * 10.0 ** (-np.maximum(extra_db, 0.0) / 20.0)
    ).astype(np.float32)
    field_[:, lines] = np.where(behind, mirrored, field_[:, lines])


def _lateral_psf(field_: NDArray[np.complex64], sigma_lines: NDArray[np.float64]) -> None:
    """Gaussian beam across the lines, its width depending on depth (row); in place."""
    n_rows, n_lines = field_.shape
    pad = int(np.ceil(3.0 * sigma_lines.max())) + 1
    length = sp_fft.next_fast_len(n_lines + 2 * pad)
    spectrum = sp_fft.fft(field_, n=length, axis=1, workers=1)
    freq = sp_fft.fftfreq(length).astype(np.float32)
    spectrum *= np.exp(-2.0 * np.pi**2 * (sigma_lines[:, None] * freq[None, :]) ** 2).astype(
        np.float32
    )
    field_[:] = sp_fft.ifft(spectrum, axis=1, workers=1)[:, :n_lines]


def _simulate(
    organ: str, rng: np.random.Generator, sex: str, age: int, frequency_mhz: float | None
) -> _BeamData:
    """Run the pulse-echo simulation along the beam lines (steps 1 to 4)."""
    probe = _make_probe(organ, rng, frequency_mhz)
    subject = _Subject(sex, age, probe.depth_mm, probe.radius_mm, probe.half_width)
    scene = _SCENES[organ](rng, subject)
    dz = probe.wavelength_mm / SAMPLES_PER_WAVELENGTH
    dz_scene = dz * SCENE_DECIMATION
    n_scene = int(np.ceil(probe.depth_mm / dz_scene))
    n_lines = probe.n_lines()
    grid = _beam_grid(probe, n_scene, n_lines, dz_scene)
    label, blocks = _paint(scene, grid)
    specular, loss_db = _interfaces(scene, label, blocks, probe, dz_scene, n_lines)
    atten_db = _attenuation_db(scene, label, loss_db, probe, dz_scene)
    atten = (10.0 ** (-atten_db / 20.0)).astype(np.float32)
    gas_ids = [k for k, s in enumerate(scene.structures, 1) if s.material in _GAS]
    gas = np.isin(label, gas_ids)
    specular = specular * atten
    specular += _reverberation(specular, atten, gas, int(0.2 * n_scene))

    # Fine grid: fully developed speckle as a complex Gaussian field scaled by the echo level.
    n_rows = n_scene * SCENE_DECIMATION
    depth = (np.arange(n_rows) + 0.5) * dz
    sigma_lat = probe.beam_sigma_mm(depth)
    sigma_focus = float(probe.beam_sigma_mm(np.array([probe.focus_mm]))[0])
    sigma_ax = 0.55 * probe.wavelength_mm  # 2.5-cycle pulse: FWHM of 1.3 wavelengths
    dx = probe.line_spacing_mm(depth, n_lines)
    # Scaling so that liver at the focus has unit echo power after the point-spread function.
    norm = np.sqrt(dz / dx * 2.0 * sigma_focus / sigma_ax).astype(np.float32)[:, None]
    noise = rng.standard_normal((4, n_rows, n_lines), dtype=np.float32)
    level = np.repeat(_property(scene, "echo")[label] * atten, SCENE_DECIMATION, axis=0)
    field_ = ((noise[0] + 1j * noise[1]) * (level * norm * np.float32(np.sqrt(0.5)))).astype(
        np.complex64
    )
    _mirror(field_, label, scene, atten_db)
    field_[SCENE_DECIMATION // 2 :: SCENE_DECIMATION] += specular
    # Electronic noise (fixed at the receiver, so raised by the gain) and near-field clutter.
    floor = 10.0 ** ((-80.0 if probe.kind == "curvilinear" else -108.0) / 20.0)
    clutter = 0.8 * np.exp(-depth / (0.03 * probe.depth_mm)) + floor
    field_ += (noise[2] + 1j * noise[3]) * (norm * clutter[:, None] * np.sqrt(0.5)).astype(
        np.float32
    )

    _lateral_psf(field_, sigma_lat / dx)
    sigma_rows = sigma_ax / dz
    peak = np.float32(np.sqrt(2.0 * np.pi) * sigma_rows)  # unit-peak axial pulse envelope
    envelope = (
        np.hypot(
            ndimage.gaussian_filter1d(field_.real, sigma_rows, axis=0, truncate=3.0),
            ndimage.gaussian_filter1d(field_.imag, sigma_rows, axis=0, truncate=3.0),
        )
        * peak
    )

    gain = np.repeat(_time_gain_db(scene, label, probe, dz_scene), SCENE_DECIMATION)
    gain = 10.0 ** (gain / 20.0)
    gain *= (sigma_lat / sigma_focus) ** 0.35  # partial focal-zone equalisation
    envelope *= gain[:, None].astype(np.float32)
    return _BeamData(probe, scene, envelope.astype(np.float32), label, dz, n_lines)


# --------------------------------------------------------------------------------------------
# 4. Log compression, scan conversion, masks
# --------------------------------------------------------------------------------------------


def _log_compress(envelope: FloatArray, dynamic_range_db: float, gain_db: float) -> FloatArray:
    """Map echo amplitude to gray: liver speckle mean near 0.5, `dynamic_range_db` to black."""
    db = 20.0 * np.log10(envelope + 1e-12) - 20.0 * np.log10(0.886) - gain_db
    gray = np.clip(0.47 + db / dynamic_range_db, 0.0, 1.0)
    return (gray**1.3).astype(np.float32)


def _scan_convert(
    beam: _BeamData,
    gray_envelope: Callable[[FloatArray], FloatArray],
    display: _Display,
    depth: FloatArray,
    lateral: FloatArray,
    fan: BoolArray,
) -> FloatArray:
    """Resample the lines into the display; envelope is averaged to the pixel size first."""
    probe = beam.probe
    block = max(1, int(display.spacing_mm / (2.0 * beam.dz_mm)))
    n_rows = beam.envelope.shape[0] // block * block
    coarse = beam.envelope[:n_rows].reshape(-1, block, beam.n_lines).mean(axis=1)
    gray = gray_envelope(coarse)
    step = 2.0 * probe.half_width / beam.n_lines
    rows = depth[fan] / (beam.dz_mm * block) - 0.5
    cols = (lateral[fan] + probe.half_width) / step - 0.5
    image = np.zeros((display.size, display.size), dtype=np.float32)
    image[fan] = ndimage.map_coordinates(gray, [rows, cols], order=1, mode="nearest")
    return image


def _check_arguments(
    organ: str, size: int, sex: str, age: int, frequency_mhz: float | None
) -> None:
    if organ not in US_ORGANS:
        raise ValueError(
            f"unknown ultrasound organ {organ!r}; choose one of {', '.join(US_ORGANS)}"
        )
    if int(size) != size or size < 32:
        raise ValueError(f"size must be an integer of at least 32 pixels, got {size!r}")
    if sex not in ("female", "male"):
        raise ValueError(f"sex must be 'female' or 'male', got {sex!r}")
    if not 0 <= age <= 120:
        raise ValueError(f"age must be between 0 and 120 years, got {age!r}")
    if organ == "fetus" and sex != "female":
        raise ValueError("an obstetric scan needs a female subject; pass sex='female' for 'fetus'")
    if organ == "fetus" and not 12 <= age <= 55:
        raise ValueError(f"an obstetric scan needs a subject aged 12 to 55 years, got {age!r}")
    if frequency_mhz is not None and not 1.0 <= frequency_mhz <= 20.0:
        raise ValueError(
            f"frequency_mhz must be between 1 and 20 MHz (or None for the probe default), "
            f"got {frequency_mhz!r}"
        )


def render_ultrasound(
    organ: str,
    rng: np.random.Generator,
    size: int = 256,
    *,
    sex: str = "female",
    age: int = 40,
    frequency_mhz: float | None = None,
) -> PhantomImage:
    """Render a B-mode ultrasound image of `organ` (one of US_ORGANS) as the scanner shows it.

    Thyroid uses a linear array (10-12 MHz, rectangular field); liver, kidney, gallbladder and
    fetus a curvilinear probe (3.5-5 MHz, sector fan). `frequency_mhz` overrides the centre
    frequency (MHz). The image is `size` x `size` pixels with square pixels (`pixel_spacing_mm`),
    black outside the imaged field; masks (display geometry, inside the field) name each visible
    structure, and "fan" is the imaged field. Same rng state, same image.
    """
    # 1. Check inputs
    _check_arguments(organ, size, sex, age, frequency_mhz)
    # 2. Simulate the echoes along the beam lines
    beam = _simulate(organ, rng, sex, age, frequency_mhz)
    probe = beam.probe
    dynamic_range = float(rng.uniform(50.0, 60.0))
    gain_db = float(rng.uniform(-2.0, 2.0))
    # 3. Display geometry and scan conversion
    display = _display_layout(probe, int(size))
    grid, fan, depth, lateral = _display_grid(probe, display)
    image = _scan_convert(
        beam, lambda env: _log_compress(env, dynamic_range, gain_db), display, depth, lateral, fan
    )
    # 4. Masks in display geometry
    label, _ = _paint(beam.scene, grid)
    masks: dict[str, BoolArray] = {"fan": fan.copy()}
    for k, structure in enumerate(beam.scene.structures, start=1):
        for name in structure.masks:
            masks[name] = masks.get(name, np.zeros_like(fan)) | ((label == k) & fan)
    masks = {name: mask for name, mask in masks.items() if mask.any()}
    meta: dict[str, Any] = {
        "modality": "us",
        "organ": organ,
        "probe": probe.kind,
        "frequency_mhz": round(probe.frequency_mhz, 2),
        "depth_mm": round(probe.depth_mm, 1),
        "focus_mm": round(probe.focus_mm, 1),
        "dynamic_range_db": round(dynamic_range, 1),
        "sex": sex,
        "age": age,
        **beam.scene.facts,
    }
    if probe.kind == "curvilinear":
        meta.update(
            sector_angle_deg=round(float(np.degrees(2 * probe.half_width)), 1),
            probe_radius_mm=round(probe.radius_mm, 1),
        )
    else:
        meta["aperture_mm"] = round(2.0 * probe.half_width, 1)
    return PhantomImage(image, masks, (display.spacing_mm, display.spacing_mm), meta)
