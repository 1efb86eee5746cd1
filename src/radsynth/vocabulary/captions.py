"""Write captions for `Labels` in several radiology styles.

Every word a caption uses comes from `radsynth.vocabulary.terms`, so the prompt parser reads each
caption back into the labels it was written from (the "study" style keeps only modality and
region, as the reference study's prompts did).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from radsynth.vocabulary.labels import Finding, Labels
from radsynth.vocabulary.terms import (
    QUALIFIER_NOUNS,
    site_side,
    terms_for,
    written_forms,
)

CAPTION_STYLES: tuple[str, ...] = ("study", "sentence", "terse", "canonical")
# How often make_caption(style=None) picks each style; "canonical" is for normalise_prompt.
STYLE_WEIGHTS: dict[str, float] = {"study": 0.2, "sentence": 0.5, "terse": 0.3}

Pick = Callable[[Sequence[str]], str]

# Modality names the reference study's template uses: "An X-ray of the knee".
_STUDY_MODALITY = {"xray": "X-ray", "ct": "CT", "mri": "MRI", "us": "ultrasound"}
# Finding nouns written without an article ("with consolidation", "with ECG leads").
_MASS_NOUNS = frozenset(
    {
        "consolidation",
        "pneumonia",
        "jewellery",
        "jewelry",
        "plate and screws",
        "plate osteosynthesis",
        "internal fixation",
        "ECG leads",
        "ECG electrodes",
        "monitoring leads",
    }
)
# Sites written with "in" after the noun ("nodule in the right upper lobe"); others take "of".
_IN_SITE_SUFFIXES = ("_lung", "_lobe", "_hemisphere", "_hemithorax")
_LETTERS_SAID_WITH_VOWEL = frozenset("AEFHILMNORSX")


def indefinite_article(phrase: str) -> str:
    """ "a" or "an" for `phrase` as a radiologist says it ("an X-ray", "a CT", "an 8-year-old")."""
    word = phrase.split()[0] if phrase.strip() else "a"
    digits = ""
    for char in word:
        if not char.isdigit():
            break
        digits += char
    if digits:
        return "an" if digits.startswith("8") or digits in ("11", "18") else "a"
    if word[0].isupper() and (len(word) == 1 or not word[1].islower()):
        return "an" if word[0] in _LETTERS_SAID_WITH_VOWEL else "a"
    return "an" if word[0].lower() in "aeiou" else "a"


def _with_article(phrase: str, noun: str) -> str:
    if noun in _MASS_NOUNS:
        return phrase
    return f"{indefinite_article(phrase)} {phrase}"


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _forms(field: str, value: str | None, modality: str | None = None) -> tuple[str, ...]:
    return () if value is None else written_forms(field, value, modality)


def _optional(pick: Pick, field: str, value: str | None, modality: str | None = None) -> str:
    forms = _forms(field, value, modality)
    return pick(forms) if forms else ""


def _region_forms(labels: Labels, before_noun: bool) -> tuple[str, ...]:
    assert labels.region is not None
    forms: list[str] = []
    for term in terms_for("region", labels.region, labels.modality):
        # Before a noun, a region with an adjective uses it: "abdominal", not "abdomen" X-ray.
        if before_noun and term.adjective:
            forms.append(term.adjective)
        else:
            forms.extend(term.written)
    return tuple(dict.fromkeys(forms))


def _image_phrase(labels: Labels, pick: Pick) -> str:
    """ "Lateral radiograph of the left knee" or "PA chest radiograph"."""
    view = _optional(pick, "view", labels.view)
    sequence = _optional(pick, "sequence", labels.sequence)
    modality = _optional(pick, "modality", labels.modality) or "image"
    side = _optional(pick, "laterality", labels.laterality)
    if labels.region is None:
        return _join(view, sequence, modality) + (f" of the {side} side" if side else "")
    if pick(("of", "before")) == "of":
        region = pick(_region_forms(labels, before_noun=False))
        return f"{_join(view, sequence, modality)} of the {_join(side, region)}"
    region = pick(_region_forms(labels, before_noun=True))
    return _join(view, sequence, side, region, modality)


def _age_phrase(age: int, pick: Pick) -> str:
    return pick((f"{age}-year-old", f"{age} year old", f"{age} yo"))


def _sex_nouns(sex: str, age: int | None) -> tuple[str, ...]:
    if age is not None and age < 18:
        return ("girl", "female") if sex == "female" else ("boy", "male")
    return written_forms("sex", sex) + (f"{sex} patient",)


def _subject_phrase(labels: Labels, pick: Pick) -> str:
    """ " of a 62-year-old woman", " in a man", " of a patient aged 40" or ""."""
    age, sex = labels.age, labels.sex
    if age is None and sex is None:
        return ""
    preposition = pick(("of", "in"))
    if sex is None:
        assert age is not None
        person = pick((f"{_age_phrase(age, pick)} patient", f"patient aged {age}"))
    elif age is None:
        person = pick(_sex_nouns(sex, None))
    else:
        noun = pick(_sex_nouns(sex, age))
        person = pick((f"{_age_phrase(age, pick)} {noun}", f"{noun} aged {age}"))
    return f" {preposition} {indefinite_article(person)} {person}"


def _merged(before: str, noun: str) -> str:
    """ "left lung" + "lung lesion" reads "left lung lesion", not "left lung lung lesion"."""
    last, *_ = before.split()[-1:] or [""]
    first, _, rest = noun.partition(" ")
    if rest and last == first:
        return f"{before} {rest}"
    return _join(before, noun)


def _site_phrases(finding: Finding, noun: str, adjectives: str, pick: Pick) -> str:
    """The finding's noun phrase with its site before ("patellar fracture") or after it."""
    site = finding.site
    if finding.side is not None:
        return _limb_side_phrases(finding, noun, adjectives, pick)
    if site is None:
        return _join(adjectives, noun)
    side = site_side(finding.kind, site)
    site_terms = terms_for("site", site)
    options: list[str] = []
    for term in site_terms:
        # A sided site written before the noun reads oddly ("left hemisphere haemorrhage")
        # unless the term has an adjective form ("left lung nodule").
        befores = (term.adjective,) if side else (term.adjective, *term.written)
        options += [_join(adjectives, _merged(before, noun)) for before in befores if before]
    if side is not None:
        options.append(_join(side, adjectives, noun))
    preposition = "in" if site.endswith(_IN_SITE_SUFFIXES) else "of"
    options += [
        f"{_join(adjectives, noun)} {preposition} the {written}"
        for term in site_terms
        for written in term.written
    ]
    if not options:  # a site the words already imply ("knee" for a knee prosthesis)
        return _join(adjectives, noun)
    return pick(tuple(dict.fromkeys(options)))


def _limb_side_phrases(finding: Finding, noun: str, adjectives: str, pick: Pick) -> str:
    """A finding with a side of its own (on a midline region): "fracture of the left femur",
    "left femoral fracture", "left-sided pacemaker"."""
    side = finding.side
    site_terms = terms_for("site", finding.site) if finding.site is not None else ()
    phrase = _join(adjectives, noun)
    options = [f"{phrase} of the {side} {w}" for t in site_terms for w in t.written]
    options += [
        _join(adjectives, side, _merged(t.adjective, noun)) for t in site_terms if t.adjective
    ]
    if not options:  # no site, or one the words already imply ("knee" for a knee prosthesis)
        options = [_join(adjectives, f"{side}-sided", noun), _join(adjectives, side, noun)]
    return pick(tuple(dict.fromkeys(options)))


def _finding_phrase(finding: Finding, pick: Pick) -> str:
    """ "a displaced patellar fracture", "right upper lobe consolidation"."""
    nouns = [q for q in finding.qualifiers if q in QUALIFIER_NOUNS]
    if nouns:
        noun = pick(written_forms("qualifier", nouns[0]))
    else:
        noun = pick(written_forms("finding", finding.kind))
    adjectives = _join(
        *(pick(written_forms("qualifier", q)) for q in finding.qualifiers if q not in nouns[:1])
    )
    return _with_article(_site_phrases(finding, noun, adjectives, pick), noun)


def _findings_phrase(findings: tuple[Finding, ...], pick: Pick) -> str:
    if not findings:
        return ""
    phrases = [_finding_phrase(f, pick) for f in findings]
    listed = phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"
    return pick((" with ", " showing ", ", with ", " demonstrating ")) + listed


def _window_phrase(window: str | None, pick: Pick) -> str:
    if window is None:
        return ""
    name = pick(written_forms("window", window))
    return pick((f" in {name}", f" ({name})", f", {name}"))


def _full_caption(labels: Labels, pick: Pick) -> str:
    text = (
        _image_phrase(labels, pick)
        + _window_phrase(labels.window, pick)
        + _subject_phrase(labels, pick)
        + _findings_phrase(labels.findings, pick)
    )
    return _capitalise(text)


def _first(options: Sequence[str]) -> str:
    return options[0]


def canonical_caption(labels: Labels) -> str:
    """The one deterministic English phrasing of `labels` (what normalise_prompt returns)."""
    return _full_caption(labels, _first)


def _study_caption(labels: Labels) -> str:
    modality = _STUDY_MODALITY[labels.modality] if labels.modality else "image"
    text = modality
    if labels.region is not None:
        text += f" of the {written_forms('region', labels.region, labels.modality)[0]}"
    return _capitalise(f"{indefinite_article(modality)} {text}")


def _terse_form(field: str, value: str | None, modality: str | None = None) -> str:
    if value is None:
        return ""
    term = terms_for(field, value, modality)[0]
    return term.terse or term.written[0]


def _terse_finding(finding: Finding) -> str:
    nouns = [q for q in finding.qualifiers if q in QUALIFIER_NOUNS]
    noun = _terse_form("qualifier", nouns[0]) if nouns else _terse_form("finding", finding.kind)
    adjectives = [_terse_form("qualifier", q) for q in finding.qualifiers if q not in nouns[:1]]
    if finding.side is not None:  # "L femur fx" on a whole body
        named = finding.site is not None and terms_for("site", finding.site)
        site = _terse_form("site", finding.site) if named else ""
        return _join(*adjectives, finding.side[0].upper(), site, noun)
    side = site_side(finding.kind, finding.site)
    if finding.site is None or (side is None and not terms_for("site", finding.site)):
        return _join(*adjectives, noun)
    if side is not None and not terms_for("site", finding.site):
        return _join(side[0].upper(), *adjectives, noun)
    site = _terse_form("site", finding.site)
    if side is not None or finding.site.endswith("_lobe"):
        return _join(site, *adjectives, noun)
    return _join(*adjectives, site, noun)


def _terse_caption(labels: Labels, pick: Pick) -> str:
    """ "Lat XR L knee, 62F, displaced patella fx"."""
    head = _join(
        _terse_form("view", labels.view),
        _terse_form("sequence", labels.sequence),
        _terse_form("modality", labels.modality),
        _terse_form("laterality", labels.laterality),
        _terse_form("region", labels.region, labels.modality),
        _terse_form("window", labels.window),
    )
    parts = [head or "image"]
    sex = _terse_form("sex", labels.sex)
    if labels.age is not None:
        age = labels.age
        forms: tuple[str, ...] = (f"{age}y", f"{age}yo")
        if sex:
            forms = (f"{age}{sex}", f"{age}y {sex}", f"{age}yo{sex}")
        parts.append(pick(forms))
    elif sex:
        parts.append(sex)
    parts += [_terse_finding(f) for f in labels.findings]
    return ", ".join(parts)


def make_caption(labels: Labels, rng: np.random.Generator, style: str | None = None) -> str:
    """Write a caption for `labels` in `style` (one of CAPTION_STYLES; None: a random one).

    The wording is drawn from `rng`, so the same generator state gives the same caption.
    """
    if style is None:
        names = list(STYLE_WEIGHTS)
        weights = np.array([STYLE_WEIGHTS[n] for n in names])
        style = names[int(rng.choice(len(names), p=weights / weights.sum()))]

    def pick(options: Sequence[str]) -> str:
        return options[int(rng.integers(len(options)))]

    if style == "study":
        return _study_caption(labels)
    if style == "sentence":
        return _full_caption(labels, pick)
    if style == "terse":
        return _terse_caption(labels, pick)
    if style == "canonical":
        return canonical_caption(labels)
    raise ValueError(f"unknown caption style {style!r}; use one of: {', '.join(CAPTION_STYLES)}")


__all__ = [
    "CAPTION_STYLES",
    "STYLE_WEIGHTS",
    "canonical_caption",
    "indefinite_article",
    "make_caption",
]
