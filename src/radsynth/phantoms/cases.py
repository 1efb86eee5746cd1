"""Phantom cases: image, caption, structured labels and masks, deterministically from a seed.

`make_case(seed)` draws everything it is not told (modality, region, view, side, subject,
findings) from the seed; fixing an argument fixes that label. The seed is split into
independent streams (choices, subject, findings, rendering, caption), so fixing one label does
not change how the others are drawn for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from radsynth.phantoms import ct, findings, mri, ultrasound, xray
from radsynth.phantoms.body import Body, Subject, draw_subject, make_body
from radsynth.phantoms.image import PhantomImage
from radsynth.vocabulary import (
    FINDINGS_BY_REGION,
    LIMB_SIDED_KINDS,
    MRI_SEQUENCES,
    PAIRED_REGIONS,
    REGIONS_BY_MODALITY,
    VIEWS_BY_MODALITY,
    Finding,
    Labels,
    make_caption,
)
from radsynth.vocabulary.terms import qualifiers_for

MODALITY_WEIGHTS = {"xray": 0.55, "ct": 0.15, "mri": 0.15, "us": 0.15}
FINDING_PROBABILITY = 0.35
MRI_VIEWS = {
    "head": ("axial", "sagittal"),
    "knee": ("sagittal", "coronal"),
    "spine": ("sagittal",),
    "abdomen": ("axial",),
}
PA_REGIONS = frozenset({"chest", "hand"})  # where a posteroanterior view is the usual frontal view
FETUS_AGE_RANGE = (18, 45)
MIN_SIZE, MAX_SIZE = 32, 4096  # image sizes in pixels


@dataclass
class Case:
    """One phantom case: what was imaged (labels), how it is described (caption), the image
    with its masks, and the seed that reproduces it bit for bit."""

    seed: int
    labels: Labels
    caption: str
    image: PhantomImage
    subject: Subject

    def record(self) -> dict[str, Any]:
        """Manifest fields that describe this case (file names are added by the writer)."""
        return {
            "seed": self.seed,
            "caption": self.caption,
            "labels": self.labels.to_dict(),
            "pixel_spacing_mm": list(self.image.pixel_spacing_mm),
            "subject": {
                "sex": self.subject.sex,
                "age": self.subject.age,
                "height_mm": self.subject.height_mm,
                "build": self.subject.build,
            },
            "render": self.image.meta,
        }


def _frontal_view(region: str, rng: np.random.Generator) -> str:
    if region in PA_REGIONS:
        return "pa" if rng.random() < 0.7 else "ap"
    return "ap"


def modalities_for(
    region: str | None,
    view: str | None,
    sequence: str | None = None,
    kinds: Sequence[str] = (),
) -> list[str]:
    """The modalities whose phantoms can draw a case with these labels (None: any): the region,
    the view (an MRI view per region), an MRI sequence, and every finding kind in the region."""
    fitting = []
    for modality, regions in REGIONS_BY_MODALITY.items():
        if region is not None and region not in regions:
            continue
        views = MRI_VIEWS.get(region or "", ()) if modality == "mri" and region else None
        if view is not None and view not in (views or VIEWS_BY_MODALITY[modality]):
            continue
        if sequence is not None and modality != "mri":
            continue
        if kinds and region is not None:
            shown = FINDINGS_BY_REGION.get((modality, region), {})
            if any(kind not in shown for kind in kinds):
                continue
        fitting.append(modality)
    return fitting


def _draw_modality(
    rng: np.random.Generator,
    region: str | None,
    view: str | None,
    sequence: str | None,
    kinds: Sequence[str],
) -> str:
    """A modality drawn by MODALITY_WEIGHTS. A draw that cannot show the asked region, view,
    sequence and finding kinds is drawn again among those that can (ignoring the kinds where no
    modality shows them all there); a first draw that fits, and so every case it made before,
    stays as it was."""
    modality = str(rng.choice(list(MODALITY_WEIGHTS), p=list(MODALITY_WEIGHTS.values())))
    fitting = modalities_for(region, view, sequence)
    if not fitting:
        asked = ", ".join(
            f"{name} {value!r}"
            for name, value in (("region", region), ("view", view), ("sequence", sequence))
            if value is not None
        )
        raise ValueError(f"no modality's phantoms draw the {asked}; see `radsynth vocabulary`")
    fitting = modalities_for(region, view, sequence, kinds) or fitting
    if modality in fitting:
        return modality
    weights = np.array([MODALITY_WEIGHTS[m] for m in fitting])
    return str(rng.choice(fitting, p=weights / weights.sum()))


def _choose_labels(
    rng: np.random.Generator,
    modality: str | None,
    region: str | None,
    view: str | None,
    laterality: str | None,
    sequence: str | None = None,
    kinds: Sequence[str] = (),
) -> tuple[str, str, str, str | None]:
    if modality is None:
        modality = _draw_modality(rng, region, view, sequence, kinds)
    if modality not in REGIONS_BY_MODALITY:
        raise ValueError(
            f"unknown modality {modality!r}; use one of: {', '.join(REGIONS_BY_MODALITY)}"
        )
    regions = REGIONS_BY_MODALITY[modality]
    if region is None:
        region = str(rng.choice(regions))
    elif region not in regions:
        raise ValueError(
            f"{modality} phantoms cover the regions {', '.join(regions)}; got {region!r}"
        )
    if view is None:
        if modality == "xray":
            view = "lateral" if rng.random() < 0.35 else _frontal_view(region, rng)
        elif modality == "mri":
            view = str(rng.choice(MRI_VIEWS[region]))
        else:
            view = "axial" if modality == "ct" else "b_mode"
    if region in PAIRED_REGIONS and modality != "us":
        laterality = laterality or str(rng.choice(["left", "right"]))
    elif laterality is not None and region not in PAIRED_REGIONS:
        raise ValueError(f"the {region} is a midline region: leave laterality unset")
    return modality, region, view, laterality


def _draw_findings(rng: np.random.Generator, modality: str, region: str) -> tuple[Finding, ...]:
    options = FINDINGS_BY_REGION.get((modality, region), {})
    if not options or rng.random() >= FINDING_PROBABILITY:
        return ()
    kind = str(rng.choice(sorted(options)))
    sites = options[kind]
    site = str(rng.choice(sites)) if sites else None
    qualifiers = qualifiers_for(region, kind)  # a necklace is not on a hand radiograph
    chosen = (str(rng.choice(qualifiers)),) if qualifiers and rng.random() < 0.7 else ()
    return (Finding(kind, site, chosen),)


def _fitted(finding: Finding, modality: str, region: str, rng: np.random.Generator) -> Finding:
    """A finding asked without a site takes one of the sites where the phantoms place its kind
    in the region (a fracture asked on an ankle radiograph: the distal fibula or tibia, not any
    bone of the body, which would mostly lie outside the field); jewellery without a kind
    becomes the kind that fits the region (necklace on a chest)."""
    sites = FINDINGS_BY_REGION.get((modality, region), {}).get(finding.kind, ())
    if finding.site is None and sites:
        finding = replace(finding, site=str(rng.choice(sites)))
    if finding.kind != "jewellery" or finding.qualifiers:
        return finding
    return replace(finding, qualifiers=(str(rng.choice(qualifiers_for(region, "jewellery"))),))


@lru_cache(maxsize=16)
def _shared_body(subject_seed: int, sex: str | None, age: int | None) -> tuple[Subject, Body]:
    rng = np.random.default_rng([subject_seed, 1])
    subject = draw_subject(rng, sex=sex, age=age)
    return subject, make_body(subject, rng)


def shared_subject(subject_seed: int) -> Subject:
    """The subject that the cases of `subject_seed` image (`make_case(subject_seed=...)`) where
    no case fixes sex or age. A case that fixes them (a fetal ultrasound of a man's subject
    seed) images another person: compare its `subject` with this to tell."""
    return _shared_body(subject_seed, None, None)[0]


def _can_carry(subject: Subject) -> bool:
    """A subject a fetal ultrasound can image: a woman of the fetal cases' ages."""
    low, high = FETUS_AGE_RANGE
    return subject.sex == "female" and low <= subject.age < high


def _subject_and_body(
    seed_stream: np.random.Generator, subject_seed: int | None, sex: str | None, age: int | None
) -> tuple[Subject, Body]:
    if subject_seed is not None:
        return _shared_body(subject_seed, sex, age)
    subject = draw_subject(seed_stream, sex=sex, age=age)
    return subject, make_body(subject, seed_stream)


def make_case_for_labels(seed: int, labels: Labels, size: int = 256) -> Case:
    """`make_case` with every label that `labels` fixes (a parsed prompt, a spec entry); the
    labels it leaves None are drawn from the seed."""
    return make_case(
        seed,
        modality=labels.modality,
        region=labels.region,
        view=labels.view,
        laterality=labels.laterality,
        sex=labels.sex,
        age=labels.age,
        findings_=labels.findings,
        sequence=labels.sequence,
        size=size,
    )


def make_case(
    seed: int,
    *,
    modality: str | None = None,
    region: str | None = None,
    view: str | None = None,
    laterality: str | None = None,
    sex: str | None = None,
    age: int | None = None,
    findings_: Sequence[Finding] | None = None,
    sequence: str | None = None,
    size: int = 256,
    caption_style: str | None = None,
    subject_seed: int | None = None,
) -> Case:
    """Build one case. `findings_=()` asks for none; None draws them (about a third of cases).
    `subject_seed` images a shared subject (the same body for every case that names it)."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"image size must be {MIN_SIZE}-{MAX_SIZE} pixels, got {size}")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    choose, subject_rng, finding_rng, render_rng, caption_rng = streams
    kinds = [f.kind for f in findings_ or ()]
    modality, region, view, laterality = _choose_labels(
        choose, modality, region, view, laterality, sequence, kinds
    )
    if modality == "us" and region == "fetus":
        if sex == "male":
            raise ValueError("a fetal ultrasound images a pregnant woman: sex must be female")
        drawn_age = int(choose.integers(*FETUS_AGE_RANGE))  # drawn either way: streams stay
        shared = shared_subject(subject_seed) if subject_seed is not None else None
        if age is None and shared is not None and _can_carry(shared):
            age = shared.age  # the subject of the other cases, not another woman
        sex = "female"
        age = age if age is not None else drawn_age
    chosen = (
        tuple(findings_) if findings_ is not None else _draw_findings(finding_rng, modality, region)
    )
    for finding in chosen:
        if finding.side is not None and laterality is not None:
            raise ValueError(
                f"the {finding.kind} on the {laterality} {region} takes the image's side: "
                "leave the finding's side unset"
            )
    subject, clean_body = _subject_and_body(subject_rng, subject_seed, sex, age)
    if modality == "mri":
        sequence = sequence or str(choose.choice(MRI_SEQUENCES))
    elif sequence is not None:
        raise ValueError("an MRI sequence only applies to modality 'mri'")
    render_seed = int(render_rng.integers(2**63))
    what = (modality, region, view, laterality, sequence)
    images_body = modality != "us"  # ultrasound is drawn without the body's structures
    # A finding placed outside the field would be named by the labels and the caption but not
    # shown (a long bone's fracture or tumour is placed by the region's joint, but a metacarpal
    # on a lateral wrist may still miss it): place it again, up to
    # PLACEMENT_ATTEMPTS times; a drawn finding still unseen is left out of the labels.
    for attempt in range(PLACEMENT_ATTEMPTS):
        rng = finding_rng if attempt == 0 else np.random.default_rng([seed, 5, attempt])
        body, names_of, placed_of = clean_body, [], []
        for finding in chosen:
            side = finding.side or laterality  # a midline region's limb finding: its own
            body, names, placed = findings.place_finding(
                body, _fitted(finding, modality, region, rng), rng, side=side, region=region
            )
            names_of.append(names)
            placed_of.append(placed)
        image = _render_showing(
            body, [n for names in names_of for n in names], what, render_seed, size, subject
        )
        shown = [not images_body or _shows(image, names) for names in names_of]
        if all(shown):
            break
    if findings_ is not None and not all(shown):
        image.meta["findings_not_shown"] = [
            f.kind for f, seen in zip(chosen, shown, strict=True) if not seen
        ]
    if findings_ is None and laterality is None:
        # A drawn limb finding on a midline region (a clavicle fracture on a chest, a
        # pacemaker) is labelled with the side it was drawn on; asked ones stay as asked.
        chosen = tuple(
            replace(f, side=placed.side) if f.kind in LIMB_SIDED_KINDS else f
            for f, placed in zip(chosen, placed_of, strict=True)
        )
    kept = [seen or findings_ is not None for seen in shown]
    chosen = tuple(f for f, keep in zip(chosen, kept, strict=True) if keep)
    finding_names = [n for names, keep in zip(names_of, kept, strict=True) if keep for n in names]
    window = image.meta.get("window") if modality == "ct" else None
    labels = Labels(
        modality=modality,
        region=region,
        view=view,
        laterality=laterality if modality != "us" else None,
        sex=subject.sex,
        age=subject.age,
        findings=chosen,
        sequence=sequence,
        window=window,
    )
    caption = make_caption(labels, caption_rng, caption_style)
    image.meta["finding_structures"] = finding_names
    return Case(seed, labels, caption, image, subject)


_SLICE_AXIS = {"axial": 2, "sagittal": 0, "coronal": 1}
PLACEMENT_ATTEMPTS = 6


def _shows(image: PhantomImage, names: list[str]) -> bool:
    """Whether the image shows a finding made of the structures `names` (its own
    "finding_*" structures; a finding without any counts as shown)."""
    own = [name for name in names if name.startswith("finding_")]
    return not own or any(name in image.masks and image.masks[name].any() for name in own)


# Parts of a finding that do not show it on their own in a slice.
_NOT_ALONE = frozenset({"finding_pacemaker_leads"})


def _render_showing(
    body: Body,
    finding_names: list[str],
    what: tuple[str, str, str, str | None, str | None],
    render_seed: int,
    size: int,
    subject: Subject,
) -> PhantomImage:
    """Render; for a slice (CT, MRI) that misses a requested finding, move the slice through
    the finding's centre, as a radiologist would scroll to it."""
    modality, region, view, laterality, sequence = what

    def render(offset: float) -> PhantomImage:
        rng = np.random.default_rng(render_seed)
        return _render(
            body, modality, region, view, laterality, sequence, rng, size, subject, offset
        )

    image = render(0.0)
    if modality not in ("ct", "mri") or not finding_names:
        return image
    # A pacemaker's leads run through the heart, so a chest slice crossed them but never the
    # generator (1-6 px of lead labelled "pacemaker"): the slice must show the generator.
    wanted = [name for name in finding_names if name not in _NOT_ALONE] or finding_names
    if any(name in image.masks for name in wanted):
        return image
    lows, highs = zip(*(body.structure(n).bounds() for n in wanted), strict=True)
    centre = (np.min(lows, axis=0) + np.max(highs, axis=0)) / 2.0 * body.scale
    axis = _SLICE_AXIS[view]
    distance = float(centre[axis] - image.meta["slice_center_mm"][axis])
    for offset in (distance, -distance):
        moved = render(offset)
        if any(name in moved.masks for name in wanted):
            return moved
    return image


def _render(
    body: Body,
    modality: str,
    region: str,
    view: str,
    laterality: str | None,
    sequence: str | None,
    rng: np.random.Generator,
    size: int,
    subject: Subject,
    offset: float = 0.0,
) -> PhantomImage:
    if modality == "xray":
        return xray.render_xray(body, region, view, laterality, rng, size)
    if modality == "ct":
        return ct.render_ct(body, region, rng, size, slice_offset_mm=offset, side=laterality)
    if modality == "mri":
        return mri.render_mri(
            body,
            region,
            rng,
            size,
            sequence=sequence or "t1",
            view=view,
            slice_offset_mm=offset,
            side=laterality,
        )
    return ultrasound.render_ultrasound(region, rng, size, sex=subject.sex, age=subject.age)
