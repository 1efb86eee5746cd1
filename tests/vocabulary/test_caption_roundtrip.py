"""Captions written from random valid labels parse back into the same labels."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.vocabulary import (
    CAPTION_STYLES,
    CT_WINDOWS,
    FINDINGS_BY_REGION,
    LATERALITIES,
    LIMB_SIDED_KINDS,
    MODALITIES,
    MRI_SEQUENCES,
    PAIRED_REGIONS,
    REGIONS_BY_MODALITY,
    SEXES,
    VIEWS_BY_MODALITY,
    Finding,
    Labels,
    make_caption,
    normalise_prompt,
    parse_prompt,
)
from radsynth.vocabulary.terms import qualifiers_for

N_LABELS = 500


def _choice(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _maybe(rng: np.random.Generator, value: str | int, p: float = 0.75) -> str | int | None:
    return value if rng.random() < p else None


def _random_qualifiers(rng: np.random.Generator, region: str, kind: str) -> tuple[str, ...]:
    options = qualifiers_for(region, kind)
    if not options or rng.random() < 0.4:
        return ()
    first = _choice(rng, options)
    if first == "displaced" and rng.random() < 0.5:
        return (first, "angulated")
    return (first,)


def _random_findings(rng: np.random.Generator, modality: str, region: str) -> tuple[Finding, ...]:
    places = FINDINGS_BY_REGION[(modality, region)]
    count = min(int(rng.integers(0, 3)), len(places))
    kinds = rng.choice(sorted(places), size=count, replace=False) if count else []
    findings = []
    for kind in kinds:
        sites = places[str(kind)]
        site = _choice(rng, sites) if sites and rng.random() < 0.7 else None
        qualifiers = _random_qualifiers(rng, region, str(kind))
        # A limb finding on a midline region may carry its own side ("left clavicle").
        sided = kind in LIMB_SIDED_KINDS and region not in PAIRED_REGIONS
        side = _choice(rng, LATERALITIES) if sided and rng.random() < 0.6 else None
        findings.append(Finding(str(kind), site, qualifiers, side))
    return tuple(findings)


def random_labels(rng: np.random.Generator) -> Labels:
    """A valid, fully specified-or-partly-None Labels drawn from the schema's combinations."""
    modality = _choice(rng, MODALITIES)
    region = _choice(rng, REGIONS_BY_MODALITY[modality])
    age = _maybe(rng, int(rng.integers(1, 96)))
    return Labels(
        modality=modality,
        region=region,
        view=_maybe(rng, _choice(rng, VIEWS_BY_MODALITY[modality])),
        laterality=_maybe(rng, _choice(rng, LATERALITIES)) if region in PAIRED_REGIONS else None,
        sex=_maybe(rng, _choice(rng, SEXES)),
        age=age if isinstance(age, int) else None,
        findings=_random_findings(rng, modality, region),
        sequence=_maybe(rng, _choice(rng, MRI_SEQUENCES)) if modality == "mri" else None,
        window=_maybe(rng, _choice(rng, CT_WINDOWS)) if modality == "ct" else None,
    )


def _labels_batch(seed: int) -> list[Labels]:
    rng = np.random.default_rng(seed)
    return [random_labels(rng) for _ in range(N_LABELS)]


def test_generator_covers_the_schema() -> None:
    batch = _labels_batch(0)
    assert {lab.modality for lab in batch} == set(MODALITIES)
    kinds = {f.kind for lab in batch for f in lab.findings}
    assert len(kinds) >= 10
    assert any(len(lab.findings) == 2 for lab in batch)
    assert any(f.site is not None and f.qualifiers for lab in batch for f in lab.findings)
    sided = [(lab.region, f) for lab in batch for f in lab.findings if f.side is not None]
    assert {region for region, _ in sided} >= {"chest", "pelvis", "full_body"}
    assert any(f.site is None for _, f in sided) and any(f.qualifiers for _, f in sided)


@pytest.mark.parametrize("style", ["sentence", "canonical", "terse"])
def test_full_styles_round_trip(style: str) -> None:
    rng = np.random.default_rng(1)
    for labels in _labels_batch(2):
        caption = make_caption(labels, rng, style)
        assert parse_prompt(caption) == labels, caption


def test_study_style_keeps_modality_and_region() -> None:
    rng = np.random.default_rng(3)
    for labels in _labels_batch(4):
        parsed = parse_prompt(make_caption(labels, rng, "study"))
        assert (parsed.modality, parsed.region) == (labels.modality, labels.region)


def test_random_style_round_trips_what_it_writes() -> None:
    rng = np.random.default_rng(5)
    seen = set()
    for labels in _labels_batch(6)[:100]:
        caption = make_caption(labels, rng)
        parsed = parse_prompt(caption)
        assert (parsed.modality, parsed.region) == (labels.modality, labels.region)
        seen.add("full" if parsed == labels else "study")
    assert seen == {"full", "study"}


def test_normalise_prompt_is_a_fixed_point() -> None:
    rng = np.random.default_rng(7)
    for labels in _labels_batch(8)[:100]:
        canonical = normalise_prompt(make_caption(labels, rng, "sentence"))
        assert normalise_prompt(canonical) == canonical
        assert canonical == make_caption(labels, rng, "canonical")


def test_every_style_is_exercised() -> None:
    assert set(CAPTION_STYLES) == {"study", "sentence", "terse", "canonical"}
