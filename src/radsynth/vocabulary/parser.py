"""Turn a free-text radiology prompt into structured `Labels`.

The parser reads words with the phrase table in `radsynth.vocabulary.terms` (longest phrase
first), then settles the fields: a region, view, MRI sequence or CT window that fits only one
modality implies it ("CXR" is a chest X-ray, "T2" an MRI); findings are grouped between
separators ("with", "and", commas) and take their site, side and qualifiers from their group;
"no"/"without" drop the findings they govern. Unknown words raise `UnknownTermError` with the
closest known terms; combinations radsynth does not support raise ValueError saying what is.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace

from radsynth.vocabulary.captions import canonical_caption, indefinite_article
from radsynth.vocabulary.labels import (
    ALL_REGIONS,
    CT_WINDOWS,
    FINDING_KINDS,
    FINDING_QUALIFIERS,
    FINDING_SITES,
    LIMB_SIDED_KINDS,
    MODALITIES,
    MRI_SEQUENCES,
    PAIRED_REGIONS,
    REGIONS_BY_MODALITY,
    VIEWS_BY_MODALITY,
    Finding,
    Labels,
)
from radsynth.vocabulary.terms import (
    ABSENT_WORDS,
    AGE_GROUPS,
    AGE_UNIT_WORDS,
    BILATERAL,
    CONTRAST_WORDS,
    DESCRIPTIVE_WORDS,
    EXPANDED_WORDS,
    FILLER_WORDS,
    FINDINGS_BY_REGION,
    FRONTAL_VIEW,
    GENERIC_KINDS,
    LEXICON,
    MAX_PHRASE_WORDS,
    MONTH_WORDS,
    NEGATION_ENDS,
    NEGATION_WORDS,
    NON_CONTRAST_WORDS,
    NORMAL_WORDS,
    NOT_MODELLED,
    POST_NEGATION_WORDS,
    QUALIFIER_KINDS,
    QUALIFIER_NOUNS,
    SEPARATOR_WORDS,
    SIDED_SITES,
    Term,
    describe,
    normalise_words,
    qualifiers_for,
    resolve_region,
    sided_site,
)

_COMPACT_AGE = re.compile(r"^(\d{1,3})(y|yo|yr|yrs)?([fm])?$")
_AGE_PREFIXES = frozenset({"age", "aged"})
_ARTICLES = frozenset({"a", "an", "with"})
_SUGGESTION_POOL: tuple[str, ...] = tuple(
    dict.fromkeys(" ".join(key) for key in LEXICON if not all(w.isdigit() for w in key))
)
_KNOWN_WORDS = frozenset(
    {w for key in LEXICON for w in key}
    | FILLER_WORDS
    | DESCRIPTIVE_WORDS
    | SEPARATOR_WORDS
    | NEGATION_WORDS
    | NORMAL_WORDS
)


class UnknownTermError(ValueError):
    """A prompt uses words radsynth's vocabulary does not know.

    ``words`` lists them as written; ``suggestions`` maps each to the closest known terms.
    """

    def __init__(self, prompt: str, words: list[str], suggestions: dict[str, list[str]]) -> None:
        self.prompt = prompt
        self.words = tuple(words)
        self.suggestions = suggestions
        super().__init__(self._message())

    def _message(self) -> str:
        quoted = ", ".join(repr(w) for w in self.words)
        noun = "term" if len(self.words) == 1 else "terms"
        hints = []
        explained: set[str] = set()
        for word in self.words:
            options = self.suggestions.get(word, [])
            target = "" if len(self.words) == 1 else f" for {word!r}"
            if word.isdigit():
                hints.append(f"write ages as '{word}-year-old'")
            elif word.lower() in NOT_MODELLED:
                hints.append(_not_modelled(word, again=NOT_MODELLED[word.lower()] in explained))
                explained.add(NOT_MODELLED[word.lower()])
            elif options:
                hints.append(f"did you mean {_or_list(options)}{target}?")
            else:
                hints.append(f"no radiology term is close to {word!r}")
        return f"unknown {noun} {quoted} in prompt {self.prompt!r}; " + "; ".join(hints)


def _not_modelled(word: str, again: bool = False) -> str:
    """What radsynth has instead of a radiology word it does not model ("FLAIR"); `again`: the
    list was given for an earlier word of the same field."""
    field_name = NOT_MODELLED[word.lower()]
    what = f"{indefinite_article(field_name)} {field_name} radsynth does not model"
    if again:
        return f"{word!r} is {what} either"
    if field_name == "MRI sequence":
        have = _names("sequence", MRI_SEQUENCES)
    elif field_name == "finding":
        have = _names("finding", FINDING_KINDS)
    elif field_name == "fracture site":
        have = _names("site", FINDING_SITES["fracture"])
    elif field_name == "region":
        have = ", ".join(sorted({describe("region", r) for r in ALL_REGIONS}))
    else:
        have = _names("modality", MODALITIES)
    return f"{word!r} is {what}; it has: {have}"


def suggest_terms(word: str, limit: int = 3) -> list[str]:
    """The known phrases closest in spelling to `word` (difflib), best first.

    Only phrases nearly as close as the best one are kept, so a plain typo gets one answer.
    """
    word = word.lower()
    matches = difflib.get_close_matches(word, _SUGGESTION_POOL, n=limit, cutoff=0.6)
    if not matches:
        return []
    best = difflib.SequenceMatcher(None, word, matches[0]).ratio()
    return [m for m in matches if difflib.SequenceMatcher(None, word, m).ratio() >= best - 0.1]


def _or_list(items: list[str]) -> str:
    quoted = [repr(item) for item in items]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


@dataclass
class _Mention:
    """One matched phrase: the term it names, its words and where it stands."""

    term: Term
    text: str
    segment: int
    negated: bool

    @property
    def field(self) -> str:
        return self.term.field

    @property
    def value(self) -> str:
        return self.term.value


@dataclass
class _Scan:
    mentions: list[_Mention] = field(default_factory=list)
    ages: list[tuple[int, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    normal: list[str] = field(default_factory=list)
    contrast: list[str] = field(default_factory=list)  # asks for contrast, which is not drawn
    age_groups: list[str] = field(default_factory=list)  # "child", "elderly"


def _lookup(words: list[str], start: int) -> tuple[Term, int] | None:
    """The longest phrase starting at `start` and its length; plurals in -s, -es, -ses
    ("prostheses") and -ies ("arthroplasties") are read as their singulars."""
    for length in range(min(MAX_PHRASE_WORDS, len(words) - start), 0, -1):
        key = tuple(words[start : start + length])
        last = key[-1]
        candidates = [key]
        if len(last) > 3 and last.endswith("s"):
            candidates += [key[:-1] + (last[:-1],), key[:-1] + (last[:-2],)]
            if last.endswith("ses"):
                candidates.append(key[:-1] + (last[:-3] + "sis",))
            if last.endswith("ies"):
                candidates.append(key[:-1] + (last[:-3] + "y",))
        for candidate in candidates:
            if candidate in LEXICON:
                return LEXICON[candidate], length
    return None


def _words(text: str) -> list[str]:
    """The normalised words of `text`, words that stand for several findings written out
    (`EXPANDED_WORDS`)."""
    words = [w for word in normalise_words(text) for w in EXPANDED_WORDS.get(word, (word,))]
    # The full stop of an abbreviated side or view ("lt. clavicle", "lat. view") is not the
    # end of a sentence: it kept the side from its finding.
    return [
        w
        for k, w in enumerate(words)
        if not (w == "." and k > 0 and words[k - 1] in _DOTTED_ABBREVIATIONS and k + 1 < len(words))
    ]


_DOTTED_ABBREVIATIONS = frozenset({"lt", "rt", "l", "r", "bil", "bilat", "lat"})


def term_of(phrase: str) -> Term | None:
    """The term a whole word or phrase names ("fx", "kneecaps", "hip fracture"), plurals read
    as their singulars; None if it names none."""
    words = _words(phrase)
    match = _lookup(words, 0) if words else None
    return match[0] if match is not None and match[1] == len(words) else None


def _read_age(words: list[str], start: int) -> tuple[int, int, str | None] | None:
    """(age in years, words used, sex letter or None) for an age at `start`, else None."""
    match = _COMPACT_AGE.match(words[start])
    if match is None:
        return None
    number, unit, sex = int(match.group(1)), match.group(2), match.group(3)
    end = start + 1
    while end < len(words) and words[end] in AGE_UNIT_WORDS:
        end += 1
    units = set(words[start + 1 : end])
    after = _lookup(words, end) if end < len(words) else None
    follows_sex = after is not None and after[0].field == "sex"
    after_prefix = start > 0 and words[start - 1] in _AGE_PREFIXES
    if not (unit or sex or units or follows_sex or after_prefix):
        return None
    years = number // 12 if units & MONTH_WORDS else number
    return years, end - start, sex


def _scan(text: str) -> _Scan:
    """Match phrases, ages, filler and separators; collect unknown words."""
    words = _words(text)
    scan = _Scan()
    segment, negated, i = 0, False, 0
    while i < len(words):
        word = words[i]
        age = _read_age(words, i) if word[0].isdigit() else None
        if age is not None:
            years, used, sex = age
            scan.ages.append((years, " ".join(words[i : i + used])))
            if sex is not None:
                scan.mentions.append(_Mention(LEXICON[(sex,)], words[i], segment, False))
            i += used
            continue
        if words[i : i + 3] in (["left", "and", "right"], ["right", "and", "left"]):
            # "left and right pleural effusions": both sides, one finding word
            both = LEXICON[(BILATERAL,)]
            scan.mentions.append(_Mention(both, " ".join(words[i : i + 3]), segment, negated))
            i += 3
            continue
        match = _lookup(words, i)
        if match is not None:
            term, used = match
            scan.mentions.append(_Mention(term, " ".join(words[i : i + used]), segment, negated))
            i += used
            continue
        next_word = words[i + 1] if i + 1 < len(words) else ""
        if (word == "not" and next_word in POST_NEGATION_WORDS) or word in ABSENT_WORDS:
            # "fracture is not seen", "effusion absent": a negation of the words before it.
            for mention in scan.mentions:
                if mention.segment == segment:
                    mention.negated = True
            segment += 1
            negated = False
            i += 2 if word == "not" else 1
            continue
        if word in SEPARATOR_WORDS or word in NEGATION_WORDS:
            segment += 1
            # "no fracture or effusion" negates both; "no fracture and a nodule" only one;
            # "no consolidation, effusion or nodule" all three (a list closed by "or").
            ends = (
                word in NEGATION_ENDS and not (word == "," and _closes_list(words, i + 1))
            ) or next_word in _ARTICLES
            negated = (negated and not ends) or word in NEGATION_WORDS
        elif word in NORMAL_WORDS:
            scan.normal.append(word)
        elif word in AGE_GROUPS:
            scan.age_groups.append(word)
        elif word in CONTRAST_WORDS:
            if i == 0 or words[i - 1] not in NON_CONTRAST_WORDS | CONTRAST_WORDS:
                scan.contrast.append(word)
        elif word in NON_CONTRAST_WORDS - NEGATION_WORDS and (
            word != "non" or (i + 1 < len(words) and words[i + 1] in CONTRAST_WORDS)
        ):
            pass  # "unenhanced", the "non" of "non-contrast": what radsynth draws
        elif word not in FILLER_WORDS and word not in DESCRIPTIVE_WORDS:
            scan.unknown.append(word)
        i += 1
    return scan


def _closes_list(words: list[str], start: int) -> bool:
    """True when an "or", "nor" or "and" follows before the clause ends: the comma at `start`
    - 1 is one of a list's ("no consolidation, effusion or nodule"), not the end of the
    negation ("no effusion, right lower lobe consolidation")."""
    for word in words[start:]:
        if word in ("or", "nor", "and"):
            return True
        if word in NEGATION_ENDS and word != ",":
            return False
    return False


def _unsupported(prompt: str, detail: str) -> ValueError:
    return ValueError(f"unsupported combination in prompt {prompt!r}: {detail}")


def _names(field_name: str, values: tuple[str, ...] | set[str]) -> str:
    return ", ".join(describe(field_name, v) for v in values) or "(none)"


_PLURAL = {"modality": "modalities", "sex": "sexes", "side": "sides", "age": "ages"}


def _set_once(fields: dict[str, tuple[str, str]], name: str, value: str, text: str) -> None:
    previous = fields.get(name)
    if previous is not None and previous[0] != value:
        plural = _PLURAL.get(name, f"{name}s")
        raise ValueError(
            f"the prompt names two different {plural}, {previous[1]!r} and {text!r}; keep one"
        )
    fields.setdefault(name, (value, text))


def _options(name: str, modality: str) -> tuple[str, ...]:
    if name == "region":
        return REGIONS_BY_MODALITY[modality]
    if name == "view":
        return VIEWS_BY_MODALITY[modality]
    if name == "sequence":
        return MRI_SEQUENCES if modality == "mri" else ()
    return CT_WINDOWS if modality == "ct" else ()


def _fitting_modalities(mention: _Mention) -> set[str]:
    term = mention.term
    if mention.field == "modality":
        return {term.value}
    if mention.field == "region":
        allowed = term.modalities or MODALITIES
        return {m for m in allowed if resolve_region(m, term.value) is not None}
    if mention.field == "view":
        if term.value == FRONTAL_VIEW:
            return {"xray"}
        return {m for m in MODALITIES if term.value in VIEWS_BY_MODALITY[m]}
    return {"mri"} if mention.field == "sequence" else {"ct"}


def _resolve_modalities(mentions: list[_Mention], prompt: str) -> set[str]:
    """The modalities every modality-bearing word fits (one when the prompt settles it)."""
    constraints = [
        (m, _fitting_modalities(m))
        for m in mentions
        if m.field in ("modality", "region", "view", "sequence", "window")
    ]
    candidates = set(MODALITIES)
    for _, fits in constraints:
        candidates &= fits
    if candidates:
        return candidates
    explicit = [m for m, _ in constraints if m.field == "modality"]
    if explicit and len({m.value for m in explicit}) == 1:
        modality = explicit[0].value
        name = describe("modality", modality)
        for mention, fits in constraints:
            if modality in fits:
                continue
            options = _options(mention.field, modality)
            if options:
                detail = f"{mention.text!r} does not fit {name}; {name} {mention.field}s are: "
                raise _unsupported(prompt, detail + _names(mention.field, options))
            owners = _names("modality", fits)
            detail = f"{mention.text!r} is a {mention.field} for {owners}, not for {name}"
            raise _unsupported(prompt, detail + "; remove it or change the modality")
    listed = "; ".join(f"{m.text!r} fits {_names('modality', fits)}" for m, fits in constraints)
    raise _unsupported(prompt, f"{listed}; no one modality fits them all, drop or change one")


def _resolve_region(mentions: list[_Mention], modality: str | None) -> str | None:
    regions: dict[str, tuple[str, str]] = {}
    for mention in mentions:
        if mention.field != "region":
            continue
        value = mention.value if modality is None else resolve_region(modality, mention.value)
        assert value is not None  # _resolve_modalities kept only fitting modalities
        _set_once(regions, "region", value, mention.text)
    return regions["region"][0] if regions else None


@dataclass
class _Draft:
    """A finding being assembled from the mentions of one segment."""

    kinds: set[str]
    texts: list[str]
    qualifiers: list[str] = field(default_factory=list)
    site: str | None = None
    side: str | None = None
    negated: bool = False
    named: bool = False  # a noun names the finding (not only an adjective such as "displaced")


def _mention_kinds(mention: _Mention) -> set[str] | None:
    if mention.field == "finding":
        return set(GENERIC_KINDS.get(mention.value, (mention.value,)))
    if mention.field == "qualifier":
        return {QUALIFIER_KINDS[mention.value]}
    return None


def _segment_draft(mentions: list[_Mention], previous: _Draft | None) -> _Draft | None:
    """Combine one segment's finding words into a draft finding (None if it has none)."""
    kind_mentions = [m for m in mentions if _mention_kinds(m) is not None]
    sites = [m for m in mentions if m.field == "site"]
    if not kind_mentions and not sites:
        return None
    if not kind_mentions:
        if previous is None:
            regions = ", ".join(describe("region", r) for r in REGIONS_BY_MODALITY["xray"])
            raise ValueError(
                f"{sites[0].text!r} says where a finding is but not what it is; "
                "name the finding too, e.g. 'fracture' or 'nodule' (it is not an imaged "
                f"region: the X-ray regions are {regions})"
            )
        draft = _Draft(set(previous.kinds), [m.text for m in sites], named=True)
        draft.negated = all(m.negated for m in sites)
    else:
        kinds: set[str] = set.intersection(*(_mention_kinds(m) or set() for m in kind_mentions))
        if not kinds:
            listed = " and ".join(repr(m.text) for m in kind_mentions)
            raise ValueError(
                f"{listed} name different findings; separate findings with 'and' or a comma"
            )
        draft = _Draft(kinds, [m.text for m in kind_mentions])
        draft.negated = any(m.negated for m in kind_mentions)
        draft.named = any(m.field == "finding" or m.value in QUALIFIER_NOUNS for m in kind_mentions)
        draft.qualifiers = [m.value for m in kind_mentions if m.field == "qualifier"]
    for mention in sites:
        if draft.site is not None and draft.site != mention.value:
            raise ValueError(
                f"one finding has two sites, {draft.texts[-1]!r} and {mention.text!r}; "
                "separate two findings with 'and'"
            )
        draft.site = mention.value
        draft.texts.append(mention.text)
    return draft


def _places(modalities: set[str], region: str) -> list[dict[str, tuple[str, ...]]]:
    """The FINDINGS_BY_REGION entries of `region` in each candidate modality."""
    places = []
    for modality in modalities:
        resolved = resolve_region(modality, region)
        if resolved is not None:
            places.append(FINDINGS_BY_REGION[(modality, resolved)])
    return places


def _allowed_kinds(modalities: set[str], region: str | None) -> set[str] | None:
    if region is None:
        return None
    return {kind for place in _places(modalities, region) for kind in place}


def _settle_kind(draft: _Draft, modalities: set[str], region: str | None, has_side: bool) -> str:
    kinds = set(draft.kinds)
    if len(kinds) > 1 and draft.site is not None:
        kinds = {k for k in kinds if draft.site in FINDING_SITES[k]} or kinds
    if len(kinds) > 1 and has_side:
        kinds = {k for k in kinds if k in SIDED_SITES} or kinds
    allowed = _allowed_kinds(modalities, region)
    if len(kinds) > 1 and allowed is not None and region is not None:
        if not kinds & allowed:
            supported = ", ".join(sorted(describe("finding", k) for k in allowed)) or "(none)"
            raise ValueError(
                f"{draft.texts[0]!r} names no finding available in the "
                f"{describe('region', region)}; findings there: {supported}"
            )
        kinds &= allowed
    if len(kinds) > 1:
        options = " or ".join(repr(describe("finding", k)) for k in sorted(kinds))
        raise ValueError(f"{draft.texts[0]!r} is ambiguous here; say {options}")
    return kinds.pop()


def _collect_drafts(mentions: list[_Mention]) -> list[tuple[_Draft, list[_Mention]]]:
    """Drafts per segment with the segment's side words; a draft without kinds carries side
    words of a segment that names no finding. Adjective-only drafts join the finding next to
    them ("displaced and angulated fracture")."""
    segments: dict[int, list[_Mention]] = {}
    for mention in mentions:
        segments.setdefault(mention.segment, []).append(mention)
    result: list[tuple[_Draft, list[_Mention]]] = []
    pending: tuple[_Draft, list[_Mention]] | None = None
    previous: _Draft | None = None
    for segment in sorted(segments):
        group = segments[segment]
        sides = [m for m in group if m.field == "laterality"]
        draft = _segment_draft(group, previous)
        if draft is None:
            if sides:
                result.append((_Draft(set(), []), sides))
            continue
        if pending is not None:
            earlier, earlier_sides = pending
            pending = None
            if draft.kinds & earlier.kinds:
                draft.kinds &= earlier.kinds
                draft.qualifiers = earlier.qualifiers + draft.qualifiers
                draft.texts = earlier.texts + draft.texts
                sides = earlier_sides + sides
            else:
                _flush(result, earlier, earlier_sides, previous)
        if not draft.named and draft.site is None:
            pending = (draft, sides)
            continue
        result.append((draft, sides))
        previous = draft
    if pending is not None:
        _flush(result, *pending, previous)
    return result


def _flush(
    result: list[tuple[_Draft, list[_Mention]]],
    draft: _Draft,
    sides: list[_Mention],
    previous: _Draft | None,
) -> None:
    """Add an adjective-only draft: to the finding before it if that fits ("broken patella,
    displaced"), else as a finding of its own ("displaced" alone is a displaced fracture)."""
    if previous is not None and previous.kinds & draft.kinds and not draft.negated:
        previous.kinds &= draft.kinds
        previous.qualifiers += draft.qualifiers
        previous.texts += draft.texts
        result.append((_Draft(set(), []), sides))
    else:
        result.append((draft, sides))


def _finish(draft: _Draft, kind: str) -> Finding:
    site = draft.site
    if site is not None and site not in FINDING_SITES[kind]:
        raise ValueError(
            f"{draft.texts[-1]!r} is not a place for a {describe('finding', kind)}; "
            f"sites for it: {_names('site', FINDING_SITES[kind])}"
        )
    side = None
    if draft.side is not None and kind in LIMB_SIDED_KINDS:
        side = draft.side  # "fracture of the left femur" on a midline region
    elif draft.side is not None:
        if site is None:
            site = sided_site(kind, draft.side)
        elif not site.startswith(draft.side):
            raise ValueError(
                f"{draft.side!r} contradicts {site!r} in finding {' '.join(draft.texts)!r}"
            )
    qualifiers = tuple(dict.fromkeys(draft.qualifiers))
    for qualifier in qualifiers:
        if qualifier not in FINDING_QUALIFIERS[kind]:
            raise ValueError(f"{qualifier!r} does not describe a {describe('finding', kind)}")
    return Finding(kind, site, qualifiers, side)


def _build_findings(
    mentions: list[_Mention], modalities: set[str], region: str | None
) -> tuple[list[Finding], list[_Mention]]:
    """Findings in prompt order, and the side words that belong to the image instead (on a
    midline region, a limb finding's side words belong to the finding: "chest radiograph with
    a fracture of the left clavicle")."""
    findings: list[Finding] = []
    image_sides: list[_Mention] = []
    midline = region is not None and region not in PAIRED_REGIONS
    for draft, sides in _collect_drafts(mentions):
        if not draft.kinds:
            image_sides += sides
            continue
        kind = _settle_kind(draft, modalities, region, has_side=bool(sides))
        if any(m.value == BILATERAL for m in sides):
            findings += _bilateral(draft, kind, sides, region)
            continue
        if (kind in SIDED_SITES or (midline and kind in LIMB_SIDED_KINDS)) and sides:
            values = {m.value for m in sides}
            if len(values) > 1:
                raise ValueError(f"finding {' '.join(draft.texts)!r} is both left and right")
            draft.side = values.pop()
        else:
            image_sides += sides
        if not draft.negated:
            findings.append(_finish(draft, kind))
    return findings, image_sides


def _bilateral(
    draft: _Draft, kind: str, sides: list[_Mention], region: str | None
) -> list[Finding]:
    """A left and a right finding for "bilateral pleural effusions" or, on a midline region,
    "fractures of both femora"; a clear error where a finding cannot be on both sides."""
    text = " ".join(dict.fromkeys([*(m.text for m in sides), *draft.texts]))
    others = sorted({m.value for m in sides} - {BILATERAL})
    if others:
        raise ValueError(f"finding {text!r} is both bilateral and {others[0]}")
    name = describe("finding", kind)
    if kind not in SIDED_SITES:  # a limb finding: both sides only on a midline region
        if kind not in LIMB_SIDED_KINDS:
            raise ValueError(f"{text!r}: the finding {name!r} has no side")
        if region in PAIRED_REGIONS:
            where = describe("region", region)
            raise ValueError(
                f"{text!r} asks for both sides, but an image of the {where} shows one side: "
                f"ask for the left or the right {where}, or for a whole-body radiograph"
            )
        if region is None:
            raise ValueError(
                f"{text!r}: name the image for a bilateral {name} (a {name} on both sides "
                "needs a midline region such as the chest, the pelvis or the whole body)"
            )
    if draft.negated:
        return []
    return [_finish(replace(draft, side=side), kind) for side in ("left", "right")]


def _check_fit(findings: list[Finding], modalities: set[str], region: str, prompt: str) -> None:
    places = _places(modalities, region)
    where = describe("region", region)
    for finding in findings:
        name = describe("finding", finding.kind)
        fits = [p[finding.kind] for p in places if finding.kind in p]
        if not fits:
            supported = sorted({describe("finding", k) for p in places for k in p})
            detail = f"a {name} is not available in the {where}; findings there: "
            raise _unsupported(prompt, detail + (", ".join(supported) or "(none)"))
        sites = {s for f in fits for s in f}
        if finding.site is not None and finding.site not in sites:
            site = describe("site", finding.site)
            detail = f"a {name} of the {site} is not available in the {where}; sites there: "
            raise _unsupported(prompt, detail + _names("site", tuple(sorted(sites))))
        allowed = qualifiers_for(region, finding.kind)
        for qualifier in finding.qualifiers:
            if qualifier not in allowed:
                detail = f"{qualifier!r} {name} does not fit the {where}; use: "
                raise _unsupported(prompt, detail + (", ".join(allowed) or "(none)"))


def _resolve_view(fields: dict[str, tuple[str, str]], region: str | None) -> str | None:
    if "view" not in fields:
        return None
    view = fields["view"][0]
    if view == FRONTAL_VIEW:
        return "pa" if region == "chest" else "ap"
    return view


def _laterality(sides: list[_Mention], region: str | None, prompt: str) -> str | None:
    """The image's side; "bilateral" images ("both knees") give none, as an unsided prompt."""
    fields: dict[str, tuple[str, str]] = {}
    for mention in sides:
        if mention.value == BILATERAL:
            continue
        _set_once(fields, "side", mention.value, mention.text)
    if not fields:
        return None
    side, text = fields["side"]
    if region is not None and region not in PAIRED_REGIONS:
        paired = ", ".join(sorted(describe("region", r) for r in PAIRED_REGIONS))
        raise _unsupported(
            prompt,
            f"{text!r} gives a side to the {describe('region', region)}, which is midline; "
            f"only these regions take a side: {paired} (a finding carries its own side: "
            "'left pleural effusion', 'fracture of the left clavicle')"
            + (
                "; radsynth shows a hip on the pelvis radiograph: 'AP pelvis X-ray with a "
                f"{side} femoral neck fracture' or 'with a {side} hip prosthesis'"
                if region == "pelvis" and re.search(r"\bhips?\b", prompt, re.IGNORECASE)
                else ""
            ),
        )
    return side


def _assemble(scan: _Scan, prompt: str) -> Labels:
    fields: dict[str, tuple[str, str]] = {}
    for mention in scan.mentions:
        if mention.field in ("modality", "view", "sex", "sequence", "window"):
            _set_once(fields, mention.field, mention.value, mention.text)
    for years, text in scan.ages:
        _set_once(fields, "age", str(years), text)
        for group in scan.age_groups:
            low, high = AGE_GROUPS[group]
            if not low <= years <= high:
                raise ValueError(
                    f"prompt {prompt!r}: {text!r} is no {group} ({low}-{high} years); keep one"
                )
    modalities = _resolve_modalities(scan.mentions, prompt)
    modality = next(iter(modalities)) if len(modalities) == 1 else None
    region = _resolve_region(scan.mentions, modality)
    finding_mentions = [_expand(m) for m in scan.mentions]
    findings, sides = _build_findings(
        [m for group in finding_mentions for m in group], modalities, region
    )
    if scan.normal and findings:
        raise ValueError(
            f"prompt {prompt!r} says {scan.normal[0]!r} but also names findings; remove one"
        )
    if region is not None:
        _check_fit(findings, modalities, region, prompt)
    age = fields.get("age")
    return Labels(
        modality=modality,
        region=region,
        view=_resolve_view(fields, region),
        laterality=_laterality(sides, region, prompt),
        sex=fields["sex"][0] if "sex" in fields else None,
        age=int(age[0]) if age else None,
        findings=tuple(findings),
        sequence=fields["sequence"][0] if "sequence" in fields else None,
        window=fields["window"][0] if "window" in fields else None,
    )


def _expand(mention: _Mention) -> list[_Mention]:
    """The finding-related mentions one phrase stands for ("hip fracture": fracture + site)."""
    if mention.field not in ("finding", "qualifier", "site", "laterality"):
        return []
    extra = [
        _Mention(Term(name, value), mention.text, mention.segment, mention.negated)
        for name, value in mention.term.implies
    ]
    return [mention, *extra]


def parse_prompt_lenient(text: str) -> tuple[Labels, list[str]]:
    """Parse `text` into Labels, returning the unknown words instead of raising on them.

    Combinations radsynth does not support still raise ValueError.
    """
    scan = _scan(text)
    ageless = scan.age_groups if not scan.ages else []
    return _assemble(scan, text), _original_words(text, scan.unknown + scan.contrast + ageless)


def _original_words(text: str, words: list[str]) -> list[str]:
    """The unknown words as the user typed them (case kept where it can be found)."""
    originals = []
    for word in words:
        match = re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", text, re.I)
        originals.append(match.group(0) if match else word)
    return originals


def _age_example(group: str) -> str:
    low, high = AGE_GROUPS[group]
    if high <= 1:
        return "6-month-old"
    if high < 18:
        return f"{min(max(8, low), high)}-year-old"
    return "75-year-old" if low >= 65 else "40-year-old"


def parse_prompt(text: str) -> Labels:
    """Parse a radiology prompt into Labels; fields the text does not give stay None.

    Raises UnknownTermError (a ValueError) naming unknown words with the closest known terms,
    and ValueError for combinations radsynth does not support ("MRI of the ankle").
    """
    scan = _scan(text)
    if scan.unknown:
        unknown = _original_words(text, scan.unknown)
        raise UnknownTermError(text, unknown, {w: suggest_terms(w) for w in unknown})
    if scan.age_groups and not scan.ages:
        group = scan.age_groups[0]
        raise ValueError(
            f"{group!r} in prompt {text!r} gives no age; write one, e.g. '{_age_example(group)}'"
        )
    if scan.contrast:
        word = _original_words(text, scan.contrast[:1])[0]
        raise _unsupported(
            text,
            f"{word!r}: radsynth's CT and MRI are unenhanced (no contrast agent is drawn); "
            "leave it out or say 'non-contrast'",
        )
    return _assemble(scan, text)


def normalise_prompt(text: str) -> str:
    """The canonical phrasing of a prompt: synonyms and abbreviations give the same string."""
    return canonical_caption(parse_prompt(text))
