"""One parametric human body per subject: sex, age, height and build drawn from a seed.

The skeleton is built once per sex at the reference height of 1750 mm and scaled to the
subject; the envelope (fat and muscle), organs and lung vessels vary per subject. Every image
of a subject (any region, view or modality) is taken of the same `Body`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from radsynth.phantoms import anatomy_axial, anatomy_limbs, anatomy_soft
from radsynth.phantoms.raycast import PackedScene, pack_scene, scale_scene
from radsynth.phantoms.solids import Structure
from radsynth.vocabulary.labels import SEXES

REFERENCE_HEIGHT_MM = 1750.0
ADULT_AGE_RANGE = (18, 90)


@dataclass(frozen=True)
class Subject:
    """Who is imaged: sex, age in years, standing height in mm, build from 0 (lean) to 1 (obese)."""

    sex: str
    age: int
    height_mm: float
    build: float

    def __post_init__(self) -> None:
        if self.sex not in SEXES:
            raise ValueError(f"sex must be one of {SEXES}, got {self.sex!r}")
        lo, hi = ADULT_AGE_RANGE
        if not lo <= self.age <= hi:
            raise ValueError(
                f"phantom subjects are adults: age must be {lo}-{hi} years, got {self.age}"
            )
        if not 1300.0 <= self.height_mm <= 2150.0:
            raise ValueError(f"height must be 1300-2150 mm, got {self.height_mm}")
        if not 0.0 <= self.build <= 1.0:
            raise ValueError(f"build must be between 0 and 1, got {self.build}")

    @property
    def scale(self) -> float:
        return self.height_mm / REFERENCE_HEIGHT_MM


def draw_subject(
    rng: np.random.Generator, sex: str | None = None, age: int | None = None
) -> Subject:
    """A random adult; `sex` and `age` fix those attributes when given. Every attribute is
    drawn in the same order either way, so fixing one leaves the others as they were."""
    drawn_sex = str(rng.choice(SEXES))
    drawn_age = int(rng.integers(ADULT_AGE_RANGE[0], ADULT_AGE_RANGE[1] + 1))
    height_z = float(rng.normal())
    build = float(rng.beta(2.2, 2.8))
    sex = sex if sex is not None else drawn_sex
    mean, sd = (1630.0, 65.0) if sex == "female" else (1760.0, 70.0)
    height = float(np.clip(mean + sd * height_z, 1450.0, 2050.0))
    return Subject(
        sex=sex,
        age=age if age is not None else drawn_age,
        height_mm=round(height, 1),
        build=round(build, 3),
    )


def _limb_landmarks(female: bool) -> dict[str, np.ndarray]:
    hip_x = 95.0 if female else 88.0
    shoulder_x = 165.0 if female else 178.0
    lm: dict[str, np.ndarray] = {"head_centre": np.array([0.0, 2.0, 1655.0])}
    for side, s in (("left", 1.0), ("right", -1.0)):
        lm[f"{side}_hip"] = np.array([s * hip_x, 0.0, 905.0])
        lm[f"{side}_knee"] = np.array([s * (hip_x + 4.0), 4.0, 490.0])
        lm[f"{side}_ankle"] = np.array([s * (hip_x - 2.0), 0.0, 86.0])
        lm[f"{side}_shoulder"] = np.array([s * shoulder_x, -10.0, 1432.0])
    lm["sternal_notch"] = np.array([0.0, 84.0, 1448.0])
    return lm


@lru_cache(maxsize=2)
def _skeleton(female: bool) -> tuple[tuple[Structure, ...], tuple[tuple[str, np.ndarray], ...]]:
    """All bones and the landmarks, at the reference height (cached: pure geometry)."""
    lm = _limb_landmarks(female)
    levels = anatomy_axial.spine_levels()
    by_name = {v.name: v for v in levels}
    bones: list[Structure] = anatomy_axial.spinal_canal_and_discs(levels)
    for side in ("left", "right"):
        bones += anatomy_limbs.knee_soft_tissues(side, lm[f"{side}_knee"])
    bones += [anatomy_axial.vertebra_bone(v) for v in levels]
    sacrum_top = by_name["l5"].center + np.array([0.0, -8.0, -24.0])
    hips = {side: lm[f"{side}_hip"] for side in ("left", "right")}
    bones += anatomy_axial.pelvis_bones(hips, sacrum_top, female)
    ribs, cartilages = anatomy_axial.rib_bones(
        by_name, anatomy_soft.chest_half_width(1300.0), female
    )
    bones += ribs + cartilages
    bones.append(anatomy_axial.sternum_bone(lm["sternal_notch"]))
    bones += anatomy_axial.skull_bones(lm["head_centre"])
    for side in ("left", "right"):
        bones += anatomy_limbs.shoulder_girdle(side, lm[f"{side}_shoulder"], lm["sternal_notch"])
        arm, arm_lm = anatomy_limbs.arm_bones(side, lm[f"{side}_shoulder"])
        bones += arm
        lm.update(arm_lm)
        bones += anatomy_limbs.leg_bones(
            side, lm[f"{side}_hip"], lm[f"{side}_knee"], lm[f"{side}_ankle"]
        )
    for v in levels:
        lm[f"{v.name}_centre"] = v.center
    lm["carina"] = np.array([0.0, 2.0, 1394.0])
    lm["heart_centre"] = np.array([12.0, 32.0, 1295.0])
    lm["liver_centre"] = np.array([-58.0, 12.0, 1128.0])
    lm["pelvis_centre"] = np.array([0.0, 0.0, 930.0])
    lm["lateral_ventricles"] = lm["head_centre"] + np.array([0.0, 4.0, 16.0])
    return tuple(bones), tuple(lm.items())


@dataclass
class Body:
    """A subject's body: structures and landmarks in reference coordinates (1750 mm tall),
    `scale` to the subject's height. Use `scene()` for imaging and `landmark()` for positions
    in the subject's own millimetres."""

    subject: Subject
    structures: list[Structure]
    reference_landmarks: dict[str, np.ndarray]
    mu_scale: dict[str, float] = field(default_factory=dict)
    shared_tail: int = 0  # trailing structures shared by all bodies of a sex (cached skeleton)

    @property
    def scale(self) -> float:
        return self.subject.scale

    def landmark(self, name: str) -> np.ndarray:
        """A named point (mm, subject coordinates)."""
        try:
            return self.reference_landmarks[name] * self.scale
        except KeyError:
            known = ", ".join(sorted(self.reference_landmarks))
            raise ValueError(f"unknown landmark {name!r}; known: {known}") from None

    def scene(
        self, exclude: frozenset[str] = frozenset(), categories: frozenset[str] | None = None
    ) -> PackedScene:
        """The packed, scaled scene, leaving out structures named in `exclude` and, when
        `categories` is given, every structure of another category."""
        key = (exclude, categories)
        cache: dict[tuple, PackedScene] = self.__dict__.setdefault("_scenes", {})
        if key not in cache:

            def wanted(s: Structure) -> bool:
                return s.name not in exclude and (categories is None or s.category in categories)

            kept = [s for s in self.structures if wanted(s)]
            shared = self.structures[len(self.structures) - self.shared_tail :]
            tail = sum(1 for s in shared if wanted(s)) if self.shared_tail else 0
            if not kept:  # an empty selection: a scene with no effect
                kept = [self.structures[0]]
                packed = pack_scene(kept, self.mu_scale)
                packed.group_weight[:] = 0.0
                cache[key] = scale_scene(packed, self.scale)
            else:
                cache[key] = scale_scene(pack_scene(kept, self.mu_scale, tail), self.scale)
        return cache[key]

    def categories(self) -> frozenset[str]:
        return frozenset(s.category for s in self.structures)

    def structure(self, name: str) -> Structure:
        for s in self.structures:
            if s.name == name:
                return s
        raise ValueError(f"the body has no structure {name!r}")

    def with_structures(self, structures: list[Structure]) -> Body:
        """A copy with another structure list (findings and devices use this)."""
        return replace(self, structures=structures, shared_tail=0)

    def structure_names(self) -> list[str]:
        return [s.name for s in self.structures]


def make_body(subject: Subject, rng: np.random.Generator) -> Body:
    """Build the body of `subject`; `rng` draws its individual variation (organs, vessels)."""
    female = subject.sex == "female"
    bones, landmark_items = _skeleton(female)
    lm = dict(landmark_items)
    fat_mm = 5.0 + 30.0 * subject.build + (4.0 if female else 0.0)
    bulk = 0.9 + 0.28 * subject.build
    breast = float(np.clip(rng.normal(0.95 + 0.35 * subject.build, 0.12), 0.6, 1.5))
    dome_shift = float(rng.normal(0.0, 10.0))
    heart_scale = float(np.clip(rng.normal(1.0 + 0.002 * (subject.age - 50), 0.05), 0.85, 1.2))
    hands = {
        side: anatomy_limbs.hand_envelope(side, lm[f"{side}_shoulder"], bulk)
        for side in ("left", "right")
    }
    structures = anatomy_soft.envelope(female, fat_mm, bulk, lm, breast, hands)
    structures += anatomy_soft.abdominal_organs(rng, dome_shift)
    structures += anatomy_soft.lungs_and_mediastinum(rng, dome_shift, heart_scale)
    structures += anatomy_soft.brain(lm["head_centre"])
    structures += list(bones)
    # Bone mineral density falls with age, faster in women after menopause.
    loss_per_year = 0.008 if female else 0.004
    density = float(np.clip(1.0 - loss_per_year * max(0, subject.age - 45), 0.65, 1.0))
    mu_scale = {"trabecular_bone": density, "cortical_bone": 0.5 + 0.5 * density}
    return Body(subject, structures, lm, mu_scale, shared_tail=len(bones))
