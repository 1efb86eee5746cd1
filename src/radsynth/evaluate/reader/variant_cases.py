"""Reader training cases with anatomy changed on purpose, so the reader must look, not assume.

A reader trained only on normal phantoms learns priors: a lateral knee has a patella, a woman's
chest has breast shadows, a hand has eight carpals. `docs/reader.md` shows the shipped reader
reporting a removed patella and removed breasts. These cases put removed, fused and duplicated
bones, a missing breast pair and shifted fields into the training draw (`--variant-share`);
the targets come from the changed body's own masks (`radsynth.phantoms.variants`), so a removed
bone has no mask and no centre, an extra copy is a bone of its own.

The kinds mirror the validation variants of `radsynth.evaluate.reader.validate` but are drawn at
random (either side, any carpal, either end of the lumbar spine, a random field shift) on
subjects of the training seed stream, never on the validation subjects.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from radsynth.phantoms.anatomy_limbs import CARPAL_NAMES
from radsynth.phantoms.body import Body, draw_subject, make_body
from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.variants import Variant, render_body_variant, structure_centre
from radsynth.vocabulary.labels import PAIRED_REGIONS

# Neighbours that fuse in carpal coalition (lunotriquetral is the commonest).
CARPAL_PAIRS = (
    ("lunate", "triquetrum"),
    ("capitate", "hamate"),
    ("scaphoid", "lunate"),
    ("trapezium", "trapezoid"),
)

Rng = np.random.Generator
Maker = Callable[[Body, str, Rng], Variant]  # Variant from (body, side, rng)


def _missing_carpal(body: Body, side: str, rng: Rng) -> Variant:
    return Variant(remove=(f"{side}_{rng.choice(CARPAL_NAMES)}",))


def _fused_carpals(body: Body, side: str, rng: Rng) -> Variant:
    first, second = CARPAL_PAIRS[int(rng.integers(len(CARPAL_PAIRS)))]
    return Variant(fuse=((f"{side}_{first}", f"{side}_{second}"),))


def extra_ray(body: Body, side: str, ray: int, neighbour: int) -> Variant:
    """Ray `ray` (its metacarpal and phalanges) copied beside it, away from ray `neighbour`."""
    shift = structure_centre(body, f"{side}_metacarpal_{ray}") - structure_centre(
        body, f"{side}_metacarpal_{neighbour}"
    )
    return Variant(
        duplicate=(f"{side}_metacarpal_{ray}", f"{side}_*_phalanx_{ray}"), shift_mm=tuple(shift)
    )


def _extra_ray(body: Body, side: str, rng: Rng) -> Variant:
    return extra_ray(body, side, *((5, 4) if rng.random() < 0.5 else (1, 2)))


def sixth_lumbar_below(body: Body) -> Variant:
    """L5 copied one vertebral step further down (away from L4): a sixth lumbar vertebra."""
    step = structure_centre(body, "l5") - structure_centre(body, "l4")
    return Variant(duplicate=("l5",), shift_mm=tuple(step))


def _extra_lumbar(body: Body, side: str, rng: Rng) -> Variant:
    if rng.random() < 0.5:  # a sixth lumbar vertebra below L5
        return sixth_lumbar_below(body)
    step = structure_centre(body, "l1") - structure_centre(body, "l2")
    return Variant(duplicate=("l1",), shift_mm=tuple(step))


def _field_off(body: Body, side: str, rng: Rng) -> Variant:
    angle = rng.uniform(0, 2 * np.pi)
    amount = rng.uniform(0.3, 0.45)
    return Variant(field_shift=(amount * np.sin(angle), amount * np.cos(angle)))


# kind -> (regions, views, female subject only, variant maker)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool, Maker]] = {
    "missing_carpal": (("hand", "wrist"), ("pa",), False, _missing_carpal),
    "fused_carpals": (("hand", "wrist"), ("pa",), False, _fused_carpals),
    "extra_ray": (("hand",), ("pa",), False, _extra_ray),
    "extra_lumbar": (("lumbar_spine",), ("ap", "lateral"), False, _extra_lumbar),
    "no_fibula": (
        ("knee", "ankle"),
        ("ap", "lateral"),
        False,
        lambda b, s, r: Variant(remove=(f"{s}_fibula",)),
    ),  # fmt: skip
    "no_patella": (
        ("knee",),
        ("ap", "lateral"),
        False,
        lambda b, s, r: Variant(remove=(f"{s}_patella",)),
    ),  # fmt: skip
    "no_breasts": (
        ("chest",),
        ("pa", "ap"),
        True,
        lambda b, s, r: Variant(remove=("*_breast",)),
    ),  # fmt: skip
    "field_off": (("hand", "wrist", "knee", "ankle"), ("ap", "pa", "lateral"), False, _field_off),
}
_FRONTAL = {"hand": "pa", "wrist": "pa", "knee": "ap", "ankle": "ap"}


def variant_case(
    case_seed: int, size: int, kind: str | None = None
) -> tuple[PhantomImage, dict[str, object]]:
    """One variant radiograph and its labels (a `Labels.to_dict()`-like record, no findings),
    everything drawn from `case_seed` (the kind too, unless `kind` names one of KINDS)."""
    rng = np.random.default_rng([case_seed, 11])
    drawn = str(rng.choice(sorted(KINDS)))
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown variant kind {kind!r}; choose from {', '.join(sorted(KINDS))}")
    kind = kind or drawn
    regions, views, female, make = KINDS[kind]
    region = str(rng.choice(regions))
    view = str(rng.choice(views))
    if kind == "field_off" and view != "lateral":  # the region's own frontal view
        view = _FRONTAL[region]
    side = str(rng.choice(("left", "right")))
    subject = draw_subject(rng, sex="female" if female else None)
    body = make_body(subject, rng)
    variant = make(body, side, rng)
    laterality = side if region in PAIRED_REGIONS else None
    noise_seed = int(rng.integers(2**31))
    image = render_body_variant(body, region, view, laterality, variant, noise_seed, size)
    image.meta["variant_kind"] = kind
    labels: dict[str, object] = {
        "modality": "xray",
        "region": region,
        "view": view,
        "laterality": laterality,
        "sex": subject.sex,
        "findings": [],
    }
    return image, labels
