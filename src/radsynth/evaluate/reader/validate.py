"""Validate the anatomy checks on phantoms whose truth is known, from the phantoms' own masks
(the answer key) and through a reader (what a generated image would be scored with).

    python -m radsynth.evaluate.reader.validate --out anatomy_validation.json [--reader DIR]

Normal phantoms of every region and view must pass every check; variants with a bone removed,
duplicated or fused, the field moved off the region or the breasts removed must fail the check
made for them. The figures are the share of images on which each check gives the right answer.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.evaluate.anatomy import (
    EXPECTED_PRESENT,
    CheckResult,
    check_anatomy,
    truth_structure_map,
)
from radsynth.evaluate.reader.variant_cases import extra_ray, sixth_lumbar_below
from radsynth.phantoms.body import Body, draw_subject, make_body
from radsynth.phantoms.image import PhantomImage
from radsynth.phantoms.variants import Variant, render_body_variant

SIDED = frozenset({"shoulder", "hand", "wrist", "knee", "ankle"})
Expectation = Callable[[dict[str, CheckResult]], bool]


def _extra_digit(body: Body) -> Variant:
    return extra_ray(body, "left", 5, 4)


def _failed(name: str) -> Expectation:
    return lambda results: name in results and results[name].passed is False


def _value(name: str, value: Any) -> Expectation:
    return lambda results: name in results and results[name].value == value


# name -> (region, view, variant from body, expectation on the checks)
VARIANTS: dict[str, tuple[str, str, Callable[[Body], Variant], Expectation]] = {
    "no_fibula": (
        "knee",
        "ap",
        lambda b: Variant(remove=("left_fibula",)),
        _failed("fibula_present"),
    ),
    "no_patella": (
        "knee",
        "lateral",
        lambda b: Variant(remove=("left_patella",)),
        _failed("patella_present"),
    ),
    "missing_lunate": (
        "hand",
        "pa",
        lambda b: Variant(remove=("left_lunate",)),
        lambda r: _value("carpals_count", 7)(r) and r["fused_bones"].passed is True,
    ),
    "fused_lunate_triquetrum": (
        "wrist",
        "pa",
        lambda b: Variant(fuse=(("left_lunate", "left_triquetrum"),)),
        _value("fused_bones", ["carpals"]),
    ),
    "fused_capitate_hamate": (
        "hand",
        "pa",
        lambda b: Variant(fuse=(("left_capitate", "left_hamate"),)),
        _value("fused_bones", ["carpals"]),
    ),
    "extra_digit": ("hand", "pa", _extra_digit, _failed("extra_bones")),
    "sixth_lumbar": ("lumbar_spine", "ap", sixth_lumbar_below, _value("lumbar_vertebrae_count", 6)),
    "hand_off_field": (
        "hand",
        "pa",
        lambda b: Variant(field_shift=(0.3, 0.0)),
        _failed("in_field"),
    ),
    "knee_off_field": (
        "knee",
        "ap",
        lambda b: Variant(field_shift=(0.45, 0.0)),
        _failed("in_field"),
    ),
    "no_breasts": (
        "chest",
        "pa",
        lambda b: Variant(remove=("*_breast",)),
        _failed("breast_shadows"),
    ),
}


def _bodies(n: int, sex: str | None = None) -> list[Body]:
    bodies = []
    for seed in range(n):
        rng = np.random.default_rng([5000 + seed, 7])
        bodies.append(make_body(draw_subject(rng, sex=sex), rng))
    return bodies


def _sources(reader: Any) -> dict[str, Callable[[PhantomImage], Any]]:
    sources: dict[str, Callable[[PhantomImage], Any]] = {
        "truth": lambda image: truth_structure_map(image.masks)
    }
    if reader is not None:
        sources["reader"] = lambda image: reader.structures(image.image)[0]
    return sources


def validate(n_bodies: int, size: int, reader: Any = None) -> dict[str, Any]:
    """Share of right answers per check on normal phantoms and per variant, per source."""
    sources = _sources(reader)
    normal: dict[str, dict[str, list[bool]]] = {s: defaultdict(list) for s in sources}
    for index, body in enumerate(_bodies(n_bodies)):
        for region in EXPECTED_PRESENT:
            for view in ("pa" if region in ("hand", "chest") else "ap", "lateral"):
                side = ("left" if index % 2 else "right") if region in SIDED else None
                image = render_body_variant(body, region, view, side, Variant(), index, size)
                for source, read in sources.items():
                    checks = check_anatomy(read(image), region, view, body.subject.sex)
                    for name, result in checks.items():
                        if result.passed is not None:
                            normal[source][f"{region}/{view}/{name}"].append(bool(result.passed))
    changed: dict[str, dict[str, list[bool]]] = {s: defaultdict(list) for s in sources}
    for index, body in enumerate(_bodies(n_bodies, sex="female")):
        for name, (region, view, make, expect) in VARIANTS.items():
            side = "left" if region in SIDED else None
            image = render_body_variant(body, region, view, side, make(body), index, size)
            for source, read in sources.items():
                checks = check_anatomy(read(image), region, view, "female")
                changed[source][name].append(bool(expect(checks)))
    return {
        "n_bodies": n_bodies,
        "size": size,
        "normal_pass_rate": {s: _rates(normal[s]) for s in sources},
        "variant_detection_rate": {s: _rates(changed[s]) for s in sources},
    }


def _rates(found: dict[str, list[bool]]) -> dict[str, dict[str, float | int]]:
    return {k: {"rate": round(float(np.mean(v)), 3), "n": len(v)} for k, v in sorted(found.items())}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--bodies", type=int, default=4, help="subjects per region and variant")
    parser.add_argument("--size", type=int, default=160, help="image size (px)")
    parser.add_argument(
        "--reader", type=Path, default=None, help="reader folder (default: shipped)"
    )
    parser.add_argument("--truth-only", action="store_true", help="skip the reader")
    args = parser.parse_args(argv)
    reader = None
    if not args.truth_only:
        from radsynth.evaluate.reader.inference import load_reader

        reader = load_reader(args.reader)
    figures = validate(args.bodies, args.size, reader)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures["variant_detection_rate"], indent=1))


if __name__ == "__main__":
    main()
