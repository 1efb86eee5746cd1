"""Write the training folder of the built-in model: regional phantoms of every modality plus
off-centre crops of full-body X-ray planes, with one manifest over both; optionally cases that
each show one finding.

    python scripts/make_builtin_data.py --out runs/builtin-data --regional 6000 --crops 2000
    python scripts/make_builtin_data.py --out runs/builtin-data --findings 3000   # add findings
    python scripts/make_builtin_data.py --out runs/builtin-data --study-findings 4000
    python scripts/make_builtin_data.py --out runs/builtin-data --focus 1600 \
        --focus-regions lumbar_spine,lumbar_spine,knee,hand,wrist

`--findings N` adds N regional cases, each with one finding drawn evenly over every (modality,
region, finding kind) that radsynth's vocabulary allows, so that each kind is seen hundreds of
times: in the regional phantoms about one case in nine has a finding, and a kind such as a
pleural effusion comes up about once in 300 cases. A finding the phantom cannot show in its
field is not captioned: that case is left out. Their captions always name the finding (the
sentence and terse styles; the study's template names none).

`--study-findings N` adds N more such cases in `study_findings/`, for the study's five
pathologies only (fracture, bone tumour, intracranial haemorrhage, consolidation, pleural
effusion): the kind is drawn evenly over the five, then the place evenly over that kind's places.
Drawn over all 47 places, an X-ray chest consolidation is 1 finding case in 47; here, 1 in 10.

`--place-findings N` adds N more in `place_findings/`, each with one finding of a place drawn
evenly over `--places` (`wrist:fracture:distal_radius,knee:bone_tumour:femur`; each entry
[MODALITY/]REGION:KIND[:SITE], a site left out drawn among the place's): among the study
findings a fracture of the distal radius on a wrist radiograph is about 1 case in 120, too few
for a fine-tune to learn to draw it.

`--focus N` adds N regional cases in `focus/` whose region is drawn evenly over
`--focus-regions` (a region named twice is drawn twice as often); an entry REGION:VIEW
(`lumbar_spine:lateral`) fixes the X-ray view too, and MODALITY/REGION (`us/liver`, `ct/head`)
another modality than X-ray; each part may be written as in a prompt (`ultrasound/liver`,
`l-spine:lat`). Side, sex, findings, caption style and any view not
fixed are drawn as for any case. It gives a fine-tune more of what the probe finds
weakest: among the regional phantoms a lateral lumbar spine is rare (12 of 1,000 cases in each
of the regional parts drawn with --seed 700000 and --seed 800000).

`--wide-crops N` adds N crops in `wide_crops/` at `--wide-zoom` (default 2) times a regional
field's width: the spacing of a regional radiograph given at half the model's size, as the
probe gives its knee before growing it to a whole body. The plain crops see a body only at
regional spacing, where a whole leg or trunk never fits one window.

The folder gets `regional/` (written by `radsynth phantoms`), `crops/` and a `manifest.jsonl`
whose image paths point into both, which is what `radsynth train --data` reads. Deterministic in
--seed; an interrupted run is finished by running the same command again. Case i has seed
--seed + i (crop i: --seed + 10,000,000 + i), so a fresh data set needs a seed far from the last
one's, not the next integer (--seed 1 repeats all but one case of --seed 0).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from radsynth.cli.phantoms_command import write_case
from radsynth.io.manifest import ManifestWriter, iter_manifest
from radsynth.phantoms.cases import make_case
from radsynth.phantoms.crops import make_body_crop
from radsynth.probe.scorecard import PATHOLOGY_KINDS
from radsynth.vocabulary import FINDINGS_BY_REGION, REGIONS_BY_MODALITY, Finding, qualifiers_for
from radsynth.vocabulary.terms import LEXICON, normalise_words, resolve_region

CROP_SEED_OFFSET = 10_000_000  # crop seeds never coincide with regional case seeds
FINDING_SEED_OFFSET = 20_000_000  # nor do the finding cases' seeds
STUDY_FINDING_SEED_OFFSET = 30_000_000
FOCUS_SEED_OFFSET = 40_000_000
FINDING_PLACES = sorted(
    (modality, region, kind)
    for (modality, region), kinds in FINDINGS_BY_REGION.items()
    for kind in kinds
)
# The study's five pathologies (the probe's PATHOLOGY_KINDS), each with its places.
STUDY_PLACES_BY_KIND = {
    kind: [place for place in FINDING_PLACES if place[2] == kind] for kind in PATHOLOGY_KINDS
}
PLACE_FINDING_SEED_OFFSET = 50_000_000
WIDE_CROP_SEED_OFFSET = 60_000_000
WIDE_ZOOM = 2.0  # wide crops' default width in regional fields: the probe's knee at half size
PARTS = (
    "regional",
    "crops",
    "findings",
    "study_findings",
    "focus",
    "place_findings",
    "wide_crops",
)


def _crop(args: tuple[Path, int, int, int]) -> dict:
    out, index, seed, size = args
    case = make_body_crop(seed, size=size)
    return write_case(out, f"crop-{index:06d}", case)


def _wide_crop(args: tuple[Path, int, int, int], zoom: float) -> dict:
    out, index, seed, size = args
    case = make_body_crop(seed, size=size, zoom=zoom)
    return write_case(out, f"wide-crop-{index:06d}", case)


def _finding_case(args: tuple[Path, int, int, int]) -> dict | None:
    """Regional case `index` with one finding drawn evenly over the vocabulary's places, or None
    when its phantom cannot show it."""
    out, index, seed, size = args
    rng = np.random.default_rng([seed, 7])
    place = FINDING_PLACES[int(rng.integers(len(FINDING_PLACES)))]
    return _write_finding_case(out, f"finding-{index:06d}", seed, size, place, rng)


def _study_finding_case(args: tuple[Path, int, int, int]) -> dict | None:
    """Like `_finding_case`, for one of the study's five pathologies: the kind drawn evenly,
    then its place."""
    out, index, seed, size = args
    rng = np.random.default_rng([seed, 11])
    place = study_place(rng)
    return _write_finding_case(out, f"study-finding-{index:06d}", seed, size, place, rng)


PlaceEntry = tuple[str, str, str, str | None]  # (modality, region, kind, site or None)


def _place_finding_case(
    args: tuple[Path, int, int, int], places: tuple[PlaceEntry, ...]
) -> dict | None:
    """Case `index` with one finding of a place drawn evenly over `places` (its site too, where
    the entry names none), or None when its phantom cannot show it."""
    out, index, seed, size = args
    rng = np.random.default_rng([seed, 17])
    modality, region, kind, site = places[int(rng.integers(len(places)))]
    case_id = f"place-finding-{index:06d}"
    return _write_finding_case(out, case_id, seed, size, (modality, region, kind), rng, site)


def finding_places(text: str) -> tuple[PlaceEntry, ...]:
    """The comma-separated entries of --places, each [MODALITY/]REGION:KIND[:SITE], in the words
    of prompts or as the vocabulary names them (`wrist:fracture:distal radius`, `knee:bone
    tumor:thigh bone`, `ankle:fracture:lateral malleolus`, `ct/head:intracranial haemorrhage`),
    checked against the findings radsynth's vocabulary places there."""
    entries = []
    for raw in (e.strip() for e in text.split(",")):
        if not raw:
            continue
        modality_words, _, rest = raw.rpartition("/")
        parts = rest.split(":")
        if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
            raise argparse.ArgumentTypeError(
                f"place {raw!r} is not [MODALITY/]REGION:KIND[:SITE] (wrist:fracture:distal_radius)"
            )
        modality, region, _ = _focus_entry(
            f"{modality_words}/{parts[0]}" if modality_words else parts[0]
        )
        kind = _vocabulary_value("finding", parts[1].strip()).replace(" ", "_")
        kinds = FINDINGS_BY_REGION.get((modality, region))
        if kinds is None:
            raise argparse.ArgumentTypeError(
                f"place {raw!r}: no findings are placed in {modality} {region}"
            )
        if kind not in kinds:
            raise argparse.ArgumentTypeError(
                f"place {raw!r}: {kind} is not placed in {modality} {region}; "
                f"use: {', '.join(kinds)}"
            )
        site = (
            _vocabulary_value("site", parts[2].strip().replace("_", " ")).replace(" ", "_")
            if len(parts) == 3
            else None
        )
        if site is not None and site not in kinds[kind]:
            sites = ", ".join(kinds[kind]) or "none (this finding takes no site)"
            raise argparse.ArgumentTypeError(f"place {raw!r}: unknown site {site}; use: {sites}")
        entries.append((modality, region, kind, site))
    if not entries:
        raise argparse.ArgumentTypeError("no place named (none given)")
    return tuple(entries)


XRAY_VIEWS = ("ap", "pa", "lateral")


FocusEntry = tuple[str, str, str | None]  # (modality, region, view or None)


def focus_region(seed: int, regions: tuple[FocusEntry, ...]) -> FocusEntry:
    """The (modality, region, view) of the focus case with `seed`: drawn evenly over `regions`;
    a view of None is drawn as for any case."""
    return regions[int(np.random.default_rng([seed, 13]).integers(len(regions)))]


def _focus_case(args: tuple[Path, int, int, int], regions: tuple[FocusEntry, ...]) -> dict:
    """Regional case `index` of a modality, region (and view) drawn evenly over `regions`."""
    out, index, seed, size = args
    modality, region, view = focus_region(seed, regions)
    case = make_case(seed, modality=modality, region=region, view=view, size=size)
    return write_case(out, f"focus-{index:06d}", case)


def _vocabulary_value(field: str, words: str) -> str:
    """The value of label `field` that `words` name in radsynth's vocabulary ("ultrasound" is
    "us", "l-spine" "lumbar_spine"); `words` as given where they name none."""
    term = LEXICON.get(tuple(normalise_words(words)))
    return term.value if term is not None and term.field == field else words


def _focus_entry(entry: str) -> FocusEntry:
    """One [MODALITY/]REGION[:VIEW] entry in radsynth's vocabulary, unchecked: "knee" is
    ("xray", "knee", None), "ultrasound/liver" ("us", "liver", None)."""
    modality_words, _, rest = entry.rpartition("/")
    region_words, _, view_words = rest.partition(":")
    modality = _vocabulary_value("modality", modality_words.strip() or "xray")
    region = _vocabulary_value("region", region_words.strip())
    if modality in REGIONS_BY_MODALITY:
        region = resolve_region(modality, region) or region
    view = _vocabulary_value("view", view_words.strip()) if view_words.strip() else None
    return modality, region, view


def focus_regions(text: str) -> tuple[FocusEntry, ...]:
    """The comma-separated entries of --focus-regions, each [MODALITY/]REGION[:VIEW]
    (`lumbar_spine:lateral`, `us/liver`, `ct/head`; the modality defaults to xray, a view is
    an X-ray's only; synonyms as in prompts: `ultrasound/liver`, `l-spine:lat`), checked
    against the phantoms' modalities, regions and X-ray views."""
    regions = tuple(_focus_entry(e) for e in text.split(",") if e.strip())
    if not regions:
        raise argparse.ArgumentTypeError("no focus region named (none given)")
    unknown_modalities = sorted({m for m, _, _ in regions if m not in REGIONS_BY_MODALITY})
    if unknown_modalities:
        raise argparse.ArgumentTypeError(
            f"unknown modality {', '.join(unknown_modalities)}; "
            f"use: {', '.join(REGIONS_BY_MODALITY)}"
        )
    for modality in sorted({m for m, _, _ in regions}):
        known = REGIONS_BY_MODALITY[modality]
        unknown = sorted({r for m, r, _ in regions if m == modality and r not in known})
        if unknown:
            label = "X-ray" if modality == "xray" else modality
            raise argparse.ArgumentTypeError(
                f"unknown {label} region(s) {', '.join(unknown)}; use: {', '.join(known)}"
            )
    if any(m != "xray" and v is not None for m, _, v in regions):
        raise argparse.ArgumentTypeError("a view can be fixed for X-ray entries only")
    bad_views = sorted({v for _, _, v in regions if v is not None and v not in XRAY_VIEWS})
    if bad_views:
        raise argparse.ArgumentTypeError(
            f"unknown X-ray view(s) {', '.join(bad_views)}; use: {', '.join(XRAY_VIEWS)}"
        )
    return regions


def study_place(rng: np.random.Generator) -> tuple[str, str, str]:
    """(modality, region, kind): a kind of the study's five, evenly, then one of its places."""
    places = STUDY_PLACES_BY_KIND[PATHOLOGY_KINDS[int(rng.integers(len(PATHOLOGY_KINDS)))]]
    return places[int(rng.integers(len(places)))]


def _write_finding_case(
    out: Path,
    case_id: str,
    seed: int,
    size: int,
    place: tuple[str, str, str],
    rng: np.random.Generator,
    site: str | None = None,
) -> dict | None:
    """Write the case of `place` (its finding at `site`, or at a site drawn among the place's)."""
    modality, region, kind = place
    sites = FINDINGS_BY_REGION[(modality, region)][kind]
    if site is None:
        site = str(rng.choice(sites)) if sites else None
    qualifiers = qualifiers_for(region, kind)
    chosen = (str(rng.choice(qualifiers)),) if qualifiers and rng.random() < 0.7 else ()
    finding = Finding(kind, site, chosen)
    # A style that names the finding (the study's template names none).
    style = str(rng.choice(["sentence", "sentence", "terse"]))
    case = make_case(
        seed,
        modality=modality,
        region=region,
        findings_=(finding,),
        size=size,
        caption_style=style,
    )
    if case.image.meta.get("findings_not_shown"):
        return None
    return write_case(out, case_id, case)


def write_part(
    out: Path,
    name: str,
    count: int,
    first_seed: int,
    size: int,
    workers: int,
    regions: tuple[FocusEntry, ...] = (),
    places: tuple[PlaceEntry, ...] = (),
    zoom: float = WIDE_ZOOM,
) -> None:
    """`count` cases of a part ("crops": `_crop`, "findings": `_finding_case`,
    "study_findings": `_study_finding_case`, "focus": `_focus_case` over `regions`,
    "place_findings": `_place_finding_case` over `places`, "wide_crops": `_wide_crop` at
    `zoom`), resumable."""
    make: Callable[[tuple[Path, int, int, int]], dict | None]
    if name == "focus":
        if not regions:
            raise ValueError("a focus part needs its regions")
        make, prefix = partial(_focus_case, regions=regions), "focus"
    elif name == "place_findings":
        if not places:
            raise ValueError("a place_findings part needs its places")
        make, prefix = partial(_place_finding_case, places=places), "place-finding"
    elif name == "wide_crops":
        make, prefix = partial(_wide_crop, zoom=zoom), "wide-crop"
    else:
        make, prefix = {
            "crops": (_crop, "crop"),
            "findings": (_finding_case, "finding"),
            "study_findings": (_study_finding_case, "study-finding"),
        }[name]
    for sub in ("images", "display", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    columns = (TextColumn(name), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    # ManifestWriter drops a line cut short by a kill and knows which cases are done.
    with ManifestWriter(out) as manifest:
        todo = [
            (out, i, first_seed + i, size)
            for i in range(count)
            if f"{prefix}-{i:06d}" not in manifest.done_ids
        ]
        with (
            Progress(*columns, TimeRemainingColumn()) as progress,
            # One worker runs in this process: no fork (a forked copy of a process that runs
            # threads, such as a test runner's, can hang).
            multiprocessing.Pool(workers) if workers > 1 else nullcontext() as pool,
        ):
            task = progress.add_task(name, total=count, completed=count - len(todo))
            records = pool.imap(make, todo, chunksize=4) if pool is not None else map(make, todo)
            for record in records:
                if record is not None:
                    manifest.append(record)
                progress.advance(task)


def merge(out: Path) -> int:
    """One manifest over the parts of `PARTS` that are present, with paths relative to `out`."""
    rows = []
    for part in PARTS:
        if not (out / part / "manifest.jsonl").exists():
            continue
        for record in iter_manifest(out / part / "manifest.jsonl"):
            for key in ("image", "image_8bit", "masks"):
                if key in record:
                    record[key] = f"{part}/{record[key]}"
            record["id"] = f"{part}-{record['id']}"
            rows.append(json.dumps(record, sort_keys=True))
    (out / "manifest.jsonl").write_text("".join(r + "\n" for r in rows))
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/builtin-data"))
    parser.add_argument("--regional", type=int, default=6000)
    parser.add_argument("--crops", type=int, default=2000)
    parser.add_argument("--findings", type=int, default=0, help="cases with one finding each")
    parser.add_argument(
        "--study-findings",
        type=int,
        default=0,
        help="more cases with one finding each, of the study's five pathologies only",
    )
    parser.add_argument(
        "--focus", type=int, default=0, help="more cases of the --focus-regions only"
    )
    parser.add_argument(
        "--focus-regions",
        type=focus_regions,
        default=focus_regions("lumbar_spine,knee,hand,wrist"),
        help="comma-separated regions of the --focus cases, drawn evenly (a region named "
        "twice, twice as often), each [MODALITY/]REGION[:VIEW]: X-ray unless a modality is "
        "named (us/liver, ct/head), a view fixed for X-rays only (lumbar_spine:lateral); "
        "default lumbar_spine,knee,hand,wrist",
    )
    parser.add_argument(
        "--place-findings",
        type=int,
        default=0,
        help="more cases with one finding each, of the --places only",
    )
    parser.add_argument(
        "--places",
        type=finding_places,
        default=None,
        help="comma-separated places of the --place-findings cases, drawn evenly, each "
        "[MODALITY/]REGION:KIND[:SITE] (wrist:fracture:distal_radius, knee:bone_tumour:femur; "
        "X-ray unless a modality is named; a site left out is drawn among the place's)",
    )
    parser.add_argument(
        "--wide-crops",
        type=int,
        default=0,
        help="more crops of full-body planes, each --wide-zoom regional fields wide (the "
        "spacing of a regional radiograph given at 1/zoom of --size and outpainted)",
    )
    parser.add_argument("--wide-zoom", type=float, default=WIDE_ZOOM)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the first case; case i uses seed + i, so data sets whose seeds differ by "
        "less than --regional (or --crops) share cases: use e.g. 100000 for a second set",
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # The parts after `regional`, in the order they are written: (name, count, seed offset,
    # the part's own options).
    parts: list[tuple[str, int, int, dict[str, Any]]] = [
        ("crops", args.crops, CROP_SEED_OFFSET, {}),
        ("findings", args.findings, FINDING_SEED_OFFSET, {}),
        ("study_findings", args.study_findings, STUDY_FINDING_SEED_OFFSET, {}),
        ("focus", args.focus, FOCUS_SEED_OFFSET, {"regions": args.focus_regions}),
        ("place_findings", args.place_findings, PLACE_FINDING_SEED_OFFSET, {"places": args.places}),
        ("wide_crops", args.wide_crops, WIDE_CROP_SEED_OFFSET, {"zoom": args.wide_zoom}),
    ]
    if not any((args.regional, *(count for _, count, _, _ in parts))):
        parser.error("every part has 0 cases: nothing to write")
    if args.place_findings and args.places is None:
        parser.error("--place-findings needs --places")
    # Each part is optional: 0 cases writes none (a small held-out set of focus cases).
    if args.regional:
        regional = args.out / "regional"
        command = [
            sys.executable, "-m", "radsynth", "phantoms", "--out", str(regional),
            "--n", str(args.regional), "--size", str(args.size), "--seed", str(args.seed),
            "--workers", str(args.workers),
        ]  # fmt: skip
        if (regional / "manifest.jsonl").exists():
            command.append("--resume")
        subprocess.run(command, check=True)
    for name, count, offset, options in parts:
        if count:
            seed = args.seed + offset
            write_part(args.out / name, name, count, seed, args.size, args.workers, **options)
    print(f"{merge(args.out)} records in {args.out / 'manifest.jsonl'}")


if __name__ == "__main__":
    main()
