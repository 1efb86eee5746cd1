"""`radsynth vocabulary`: what a prompt can ask for, and how radsynth reads a prompt."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from radsynth.vocabulary import (
    CT_WINDOWS,
    FINDINGS_BY_REGION,
    LIMB_SIDED_KINDS,
    MODALITIES,
    MRI_SEQUENCES,
    PAIRED_REGIONS,
    REGIONS_BY_MODALITY,
    VIEWS_BY_MODALITY,
    canonical_caption,
    parse_prompt,
    qualifiers_for,
)
from radsynth.vocabulary.parser import term_of
from radsynth.vocabulary.terms import (
    DESCRIPTIVE_WORDS,
    FILLER_WORDS,
    NEGATION_WORDS,
    NORMAL_WORDS,
    TERMS,
    describe,
    normalise_words,
)


def with_vocabulary_hint(message: str) -> str:
    """`message`, pointing to this command when it is the vocabulary's refusal of a prompt
    (its errors name the prompt)."""
    if "in prompt" not in message:
        return message
    return f"{message} (radsynth vocabulary lists what a prompt can ask for)"


def _names(field: str, values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(describe(field, v) for v in values) or "none"


def _as_value(field: str, given: str | None) -> str | None:
    """`given` as the vocabulary's value of `field` when it is a phrase a prompt reads as one
    ("CT" is 'ct', "lumbar spine" 'lumbar_spine', "hip" 'pelvis'), else unchanged."""
    if given is None:
        return None
    term = term_of(given)
    return term.value if term is not None and term.field == field else given


def overview_lines(modality: str | None = None, region: str | None = None) -> list[str]:
    """The regions, views and findings (with sites and qualifiers) a prompt can ask for, per
    modality, or of one modality or region."""
    modality = _as_value("modality", modality)
    region = _as_value("region", region)
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; use one of: {', '.join(MODALITIES)}")
    lines: list[str] = []
    for name in (modality,) if modality else MODALITIES:
        regions = [r for r in REGIONS_BY_MODALITY[name] if region in (None, r)]
        if not regions:
            continue
        lines.append(
            f"{describe('modality', name)}: views {_names('view', VIEWS_BY_MODALITY[name])}"
        )
        if name == "mri":
            lines.append(f"  sequences: {_names('sequence', MRI_SEQUENCES)}")
        if name == "ct":
            lines.append(f"  windows: {_names('window', CT_WINDOWS)}")
        for place in regions:
            findings = FINDINGS_BY_REGION.get((name, place), {})
            lines.append(f"  {describe('region', place)}" + ("" if findings else ": no findings"))
            for kind, sites in findings.items():
                parts = [describe("finding", kind)]
                if sites:
                    parts.append(f"sites: {_names('site', sites)}")
                qualifiers = qualifiers_for(place, kind)
                if qualifiers:
                    parts.append(f"qualifiers: {_names('qualifier', qualifiers)}")
                lines.append("    " + "; ".join(parts))
    if not lines:
        imaging = [m for m, regions in REGIONS_BY_MODALITY.items() if region in regions]
        if modality is not None and imaging:
            raise ValueError(
                f"{modality} does not image the region {region!r}; "
                f"{', '.join(imaging)} {'does' if len(imaging) == 1 else 'do'}"
            )
        raise ValueError(f"no modality images the region {region!r}")
    limb_kinds = ", ".join(describe("finding", k) for k in sorted(LIMB_SIDED_KINDS))
    paired = _names("region", sorted(PAIRED_REGIONS))
    lines += [
        f"Sides: 'left'/'right' names the image of a paired region ({paired});",
        f"  on a midline one these findings take their own side: {limb_kinds};",
        "  'bilateral' or 'both' asks for a finding on each side.",
    ]
    return lines


# Words a prompt accepts that are no term of their own, and what they do.
_WORDS_THAT_SET_NOTHING = (
    (DESCRIPTIVE_WORDS, "is accepted in prompts and sets nothing (a describing word: "
     "radsynth does not draw it)"),
    (FILLER_WORDS, "is accepted in prompts and sets nothing (a word of grammar or of the image)"),
    (NORMAL_WORDS, "says the image shows no finding"),
    (NEGATION_WORDS, "negates the findings after it (up to a separator such as 'with' or ';')"),
)  # fmt: skip


def word_lines(word: str) -> list[str]:
    """What radsynth reads `word` (a word or phrase) as, and every phrase for the same value."""
    term = term_of(word) or term_of(word.rstrip("."))  # "lt." is 'lt'
    if term is None:
        plain = " ".join(normalise_words(word.rstrip(".")))
        for words, meaning in _WORDS_THAT_SET_NOTHING:
            if plain and all(w in words for w in plain.split()):
                return [f"{word!r} {meaning}"]
        raise ValueError(
            f"{word!r} is not a radsynth term; --prompt {word!r} says why, with suggestions"
        )
    # Every term for the same value (a value may have one term per modality), in table order.
    same = [t for t in TERMS if (t.field, t.value) == (term.field, term.value)]
    phrases = list(dict.fromkeys(p for t in same for p in t.phrases))
    lines = [f"{word!r} is the {term.field} {term.value!r} ({describe(term.field, term.value)})"]
    written = [p for t in same for p in t.written]
    if written:
        lines.append("  written in captions: " + ", ".join(written))
    lines.append("  read from: " + ", ".join(phrases))
    if term.implies:
        lines.append("  also sets: " + ", ".join(f"{f} {v!r}" for f, v in term.implies))
    return lines


def vocabulary(
    words: Annotated[
        str | None,
        typer.Option("--words", help="Show what radsynth reads this word as, and its other words."),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(help="Show how radsynth reads this prompt: its labels and canonical caption."),
    ] = None,
    modality: Annotated[
        str | None, typer.Option(help="Only this modality: xray, ct, mri or us.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="Only this region, e.g. chest.")] = None,
) -> None:
    """What a prompt can ask for (modalities, regions, views, findings with their sites and
    qualifiers); with --prompt, how radsynth reads a prompt; with --words, what radsynth reads a
    word as and the other words for it."""
    try:
        asked = [name for name, value in (("--words", words), ("--prompt", prompt)) if value]
        listing = [n for n, v in (("--modality", modality), ("--region", region)) if v]
        if len(asked) > 1 or (asked and listing):
            raise ValueError(
                f"{' and '.join(asked + listing)} do different things: --words and --prompt "
                "read a word or a prompt, --modality and --region narrow the list of what a "
                "prompt can ask for; give one"
            )
        if words is not None:
            for line in word_lines(words):
                typer.echo(line)
            return
        if prompt is not None:
            labels = parse_prompt(prompt)
            typer.echo(f"reads as: {canonical_caption(labels)}")
            typer.echo(json.dumps(labels.to_dict(), indent=2))
            return
        for line in overview_lines(modality, region):
            typer.echo(line)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


def register(app: typer.Typer) -> None:
    """Add the `vocabulary` command to `app`."""
    app.command("vocabulary")(vocabulary)
