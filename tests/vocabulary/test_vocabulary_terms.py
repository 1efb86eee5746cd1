"""The vocabulary table: complete, unambiguous and consistent with the label schema."""

from __future__ import annotations

import pytest

from radsynth.vocabulary import (
    ALL_REGIONS,
    FINDING_QUALIFIERS,
    FINDING_SITES,
    FINDINGS_BY_REGION,
    REGIONS_BY_MODALITY,
    parse_prompt,
)
from radsynth.vocabulary.terms import (
    DESCRIPTIVE_WORDS,
    FILLER_WORDS,
    GENERIC_KINDS,
    LEXICON,
    QUALIFIER_KINDS,
    SIDED_SITES,
    TERMS,
    Term,
    _build_lexicon,
    missing_terms,
    normalise_words,
    qualifiers_for,
    resolve_region,
    sided_site,
    site_side,
    written_forms,
)


def test_every_label_value_has_words() -> None:
    assert missing_terms() == {}
    for region in ALL_REGIONS:
        assert written_forms("region", region)
    for kind, qualifiers in FINDING_QUALIFIERS.items():
        for qualifier in qualifiers:
            assert QUALIFIER_KINDS[qualifier] == kind
            assert written_forms("qualifier", qualifier)


def test_every_site_can_be_written() -> None:
    for kind, sites in FINDING_SITES.items():
        for site in sites:
            named = any(t.field == "site" and t.value == site for t in TERMS)
            # Sides give the remaining sites; "knee" is implied by the finding itself.
            assert named or site_side(kind, site) is not None or site == "knee", (kind, site)


def test_term_values_belong_to_the_schema() -> None:
    all_sites = {s for sites in FINDING_SITES.values() for s in sites}
    for term in TERMS:
        if term.field == "region":
            assert term.value in ALL_REGIONS
        elif term.field == "finding":
            assert term.value in FINDING_SITES or term.value in GENERIC_KINDS
        elif term.field == "qualifier":
            assert term.value in QUALIFIER_KINDS
        elif term.field == "site":
            assert term.value in all_sites


def test_phrases_name_one_term_and_filler_stays_apart() -> None:
    single_words = {key[0] for key in LEXICON if len(key) == 1}
    assert not single_words & FILLER_WORDS
    assert not single_words & DESCRIPTIVE_WORDS
    conflict = (Term("region", "knee", ("knee",)), Term("region", "ankle", ("knee",)))
    with pytest.raises(ValueError, match="give it to one term only"):
        _build_lexicon(conflict)


def test_every_written_phrase_parses_to_its_own_term() -> None:
    for term in TERMS:
        for phrase in term.phrases:
            assert LEXICON[tuple(normalise_words(phrase))] == term, phrase


def test_normalise_words() -> None:
    assert normalise_words("62-year-old X-Ray, Colles' fx") == [
        "62",
        "year",
        "old",
        "x",
        "ray",
        ",",
        "colles",
        "fx",
    ]
    assert normalise_words("62 y/o") == ["62", "yo"]


def test_findings_by_region_covers_every_region_and_fits_the_schema() -> None:
    expected = {(m, r) for m, regions in REGIONS_BY_MODALITY.items() for r in regions}
    assert set(FINDINGS_BY_REGION) == expected
    for (_, region), kinds in FINDINGS_BY_REGION.items():
        for kind, sites in kinds.items():
            assert set(sites) <= set(FINDING_SITES[kind]), (region, kind)
            assert set(qualifiers_for(region, kind)) <= set(FINDING_QUALIFIERS[kind])
    assert "intracranial_haemorrhage" in FINDINGS_BY_REGION[("ct", "head")]
    assert "patella" in FINDINGS_BY_REGION[("xray", "knee")]["fracture"]
    assert "femoral_neck" in FINDINGS_BY_REGION[("xray", "pelvis")]["fracture"]
    assert qualifiers_for("hand", "jewellery") == ("ring", "bracelet")


def test_region_resolution_and_sides() -> None:
    assert resolve_region("mri", "lumbar_spine") == "spine"
    assert resolve_region("xray", "lumbar_spine") == "lumbar_spine"
    assert resolve_region("ct", "liver") is None
    for kind in SIDED_SITES:
        for side in ("left", "right"):
            site = sided_site(kind, side)
            assert site in FINDING_SITES[kind]
            assert site_side(kind, site) == side
    assert sided_site("fracture", "left") is None


def test_every_written_modality_and_view_phrase_parses() -> None:
    regions = {"xray": "knee", "ct": "head", "mri": "knee", "us": "liver"}
    for term in TERMS:
        if term.field == "modality":
            for phrase in term.written:
                prompt = f"{phrase} of the {regions[term.value]}"
                assert parse_prompt(prompt).modality == term.value, prompt
        if term.field == "view" and term.written:
            for phrase in term.written:
                assert parse_prompt(f"{phrase} image").view == term.value, phrase
