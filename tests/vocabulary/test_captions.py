"""make_caption: the study template, varied sentences, terse reports and canonical text."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from radsynth.vocabulary import CAPTION_STYLES, Finding, Labels, make_caption, parse_prompt
from radsynth.vocabulary.captions import STYLE_WEIGHTS, canonical_caption, indefinite_article

KNEE = Labels(
    modality="xray",
    region="knee",
    view="lateral",
    laterality="left",
    sex="female",
    age=62,
    findings=(Finding("fracture", "patella", ("displaced",)),),
)


@pytest.mark.parametrize(
    ("modality", "region", "expected"),
    [
        ("xray", "knee", "An X-ray of the knee"),
        ("xray", "chest", "An X-ray of the chest"),
        ("ct", "head", "A CT of the head"),
        ("mri", "knee", "An MRI of the knee"),
        ("us", "liver", "An ultrasound of the liver"),
        ("xray", "full_body", "An X-ray of the whole body"),
    ],
)
def test_study_template(modality: str, region: str, expected: str) -> None:
    labels = Labels(modality=modality, region=region, view=VIEW.get(modality), age=40)
    assert make_caption(labels, np.random.default_rng(0), "study") == expected


VIEW = {"xray": "ap", "ct": "axial", "mri": "sagittal", "us": "b_mode"}


def test_canonical_captions_of_the_reference_examples() -> None:
    assert canonical_caption(KNEE) == (
        "Lateral X-ray of the left knee of a 62-year-old woman with a displaced patellar fracture"
    )
    ct = Labels(
        modality="ct",
        region="chest",
        view="axial",
        sex="female",
        age=70,
        window="lung",
        findings=(Finding("lung_nodule", "right_upper_lobe", ("nodule",)),),
    )
    assert canonical_caption(ct) == (
        "Axial CT of the chest in lung window of a 70-year-old woman with a right upper lobe nodule"
    )
    mri = Labels(modality="mri", region="head", view="axial", sequence="t2", sex="male", age=35)
    assert canonical_caption(mri) == "Axial T2-weighted MRI of the head of a 35-year-old man"
    assert canonical_caption(Labels(modality="us", region="liver", view="b_mode")) == (
        "B-mode ultrasound of the liver"
    )
    assert canonical_caption(Labels()) == "Image"


def test_canonical_ignores_the_generator() -> None:
    rng = np.random.default_rng(1)
    first = make_caption(KNEE, rng, "canonical")
    assert all(make_caption(KNEE, rng, "canonical") == first for _ in range(5))


def test_sentence_wording_varies_but_is_reproducible() -> None:
    captions = [make_caption(KNEE, np.random.default_rng(seed), "sentence") for seed in range(40)]
    assert len(set(captions)) > 10
    again = [make_caption(KNEE, np.random.default_rng(seed), "sentence") for seed in range(40)]
    assert captions == again
    assert all(parse_prompt(c) == KNEE for c in captions)
    words = " ".join(captions)
    for synonym in ("radiograph", "X-ray", "patellar", "patella", "woman", "female"):
        assert synonym in words


def test_terse_uses_abbreviations() -> None:
    captions = {make_caption(KNEE, np.random.default_rng(seed), "terse") for seed in range(30)}
    assert "Lat XR L knee, 62F, displaced patella fx" in captions
    assert all(c.startswith("Lat XR L knee, 62") for c in captions)
    chest = Labels(
        modality="xray",
        region="chest",
        view="pa",
        sex="male",
        age=54,
        findings=(Finding("pacemaker"), Finding("consolidation", "right_lower_lobe")),
    )
    terse = make_caption(chest, np.random.default_rng(0), "terse")
    assert terse.startswith("PA XR chest, 54") and terse.endswith(", PPM, RLL consolidation")


def test_children_are_girls_and_boys() -> None:
    child = Labels(modality="xray", region="hand", sex="male", age=8)
    assert canonical_caption(child) == "X-ray of the hand of an 8-year-old boy"


def test_random_style_follows_the_weights() -> None:
    rng = np.random.default_rng(2)
    counts: Counter[str] = Counter()
    for _ in range(1500):
        caption = make_caption(KNEE, rng)
        if caption == "An X-ray of the knee":
            counts["study"] += 1
        elif caption.startswith("Lat XR"):
            counts["terse"] += 1
        else:
            counts["sentence"] += 1
    for style, weight in STYLE_WEIGHTS.items():
        assert abs(counts[style] / 1500 - weight) < 0.05, counts
    assert set(STYLE_WEIGHTS) | {"canonical"} == set(CAPTION_STYLES)


def test_unknown_style_is_rejected() -> None:
    with pytest.raises(ValueError, match="use one of: study, sentence, terse, canonical"):
        make_caption(KNEE, np.random.default_rng(0), "poem")


@pytest.mark.parametrize(
    ("phrase", "article"),
    [
        ("X-ray", "an"),
        ("CT", "a"),
        ("MRI", "an"),
        ("ultrasound", "an"),
        ("8-year-old", "an"),
        ("18-year-old", "an"),
        ("80 yo", "an"),
        ("11-year-old", "an"),
        ("62-year-old", "a"),
        ("patient", "a"),
        ("ECG", "an"),
        ("PA", "a"),
        ("RUL nodule", "an"),
        ("B-mode", "a"),
    ],
)
def test_indefinite_article(phrase: str, article: str) -> None:
    assert indefinite_article(phrase) == article


def test_a_site_ending_in_the_nouns_first_word_is_not_repeated() -> None:
    from radsynth.vocabulary import Finding, Labels, canonical_caption, parse_prompt

    labels = Labels(
        modality="xray", region="chest", view="pa", findings=(Finding("lung_nodule", "left_lung"),)
    )
    caption = canonical_caption(labels)
    assert "lung lung" not in caption and "left lung lesion" in caption
    assert parse_prompt(caption).findings == labels.findings


def test_a_side_without_a_region_reads_as_a_side() -> None:
    labels = parse_prompt("left clavicle fracture")
    caption = canonical_caption(labels)
    assert caption == "Image of the left side with a clavicular fracture"
    assert parse_prompt(caption) == labels
