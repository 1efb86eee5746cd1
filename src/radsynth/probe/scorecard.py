"""The probe's targets from its measurements: rates of anatomy checks and labels read off the
generated images (and off the phantom reference beside them), the AP-vs-lateral bias, Figure 3's
inpainting and the knee grown to a full body; and, beside the targets, how alike the images of
one prompt are, and what a finding's words change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from radsynth.evaluate.metrics.conditional import conditional_accuracy
from radsynth.evaluate.metrics.ssim import MSSSIMDiversity
from radsynth.probe.targets import Target, json_clean, lateral_within_ap, rate_target, target
from radsynth.vocabulary.labels import FINDING_SITES, Labels, side_named_by

if TYPE_CHECKING:
    from radsynth.probe.protocol import GeneratedImage, ProbeResult

# The study's five pathologies, as radsynth's finding kinds.
PATHOLOGY_KINDS = (
    "fracture",
    "bone_tumour",
    "intracranial_haemorrhage",
    "consolidation",
    "pleural_effusion",
)


def score_targets(
    result: ProbeResult, reference_images: list[GeneratedImage], has_reader: bool
) -> None:
    """Every target of the probe into `result.targets`, with `result.conditional` and
    `result.bias`; each image target carries the phantom reference's value in its details."""
    no_reader = "" if has_reader else "not measured: no reader available"
    targets, conditional, result.bias = image_targets(result.images, has_reader, no_reader)
    if conditional is not None:
        result.conditional = conditional
    if reference_images:
        reference, _, _ = image_targets(reference_images, has_reader, no_reader)
        for t, r in zip(targets, reference, strict=True):
            t.details["phantom_reference"] = {"value": r.value, "n": r.n, "met": r.met}
    targets += edit_targets(result, has_reader, no_reader)
    mem = result.memorization
    if "flagged" in mem:
        targets.append(
            rate_target(
                "memorization_flags",
                int(mem["flagged"]),
                int(mem["n"]),
                threshold_used=mem["threshold"],
            )
        )
    else:
        targets.append(target("memorization_flags", None, 0, str(mem.get("skipped", ""))))
    result.targets = targets


def image_targets(
    images: list[GeneratedImage], has_reader: bool, no_reader: str
) -> tuple[list[Target], dict[str, Any] | None, dict[str, Any]]:
    """The targets read off generated (or reference) images, with the conditional-accuracy
    and bias records behind them (conditional None without a reader)."""
    conditional: dict[str, Any] | None = None
    xrays = [g for g in images if g.checks]

    def check_rate(
        key: str, select: Callable[[GeneratedImage], bool], check: str, **details: Any
    ) -> Target:
        chosen = [g for g in xrays if select(g) and check in g.checks]
        passed = sum(bool(g.checks[check]["passed"]) for g in chosen)
        return rate_target(key, passed, len(chosen), no_reader, check=check, **details)

    targets = [
        check_rate("fibula_present", lambda g: g.asked.get("region") == "knee", "fibula_present"),
        check_rate(
            "carpals_eight",
            lambda g: g.asked.get("region") in ("hand", "wrist"),
            "carpals_count",
        ),
        check_rate(
            "lumbar_five",
            lambda g: g.asked.get("region") == "lumbar_spine",
            "lumbar_vertebrae_count",
        ),
    ]
    # Hands whose digits were read: a hand drawn without metacarpals or phalanges has no extra
    # digits either, and counted as a success (a noise model met this target).
    hands = [
        g
        for g in xrays
        if g.asked.get("region") == "hand"
        and "extra_bones" in g.checks
        and all(
            (g.checks.get(f"{group}_count") or {}).get("value", 0) > 0
            for group in ("metacarpals", "phalanges")
        )
    ]
    clean = sum(
        not ({"metacarpals", "phalanges"} & set(g.checks["extra_bones"]["value"])) for g in hands
    )
    targets.append(rate_target("no_extra_digits", clean, len(hands), no_reader))
    targets.append(check_rate("region_in_field", lambda g: True, "in_field"))

    if has_reader and images:
        cond = conditional_accuracy(
            [g.prompt for g in images], [g.read for g in images if g.read], PATHOLOGY_KINDS
        )
        conditional = json_clean(
            {
                k: ({f: p.to_dict() for f, p in v.items()} if isinstance(v, dict) else v)
                for k, v in cond.items()
                if not k.startswith("pooled")
            }
            | {
                k: (v.to_dict() if v is not None else None)
                for k, v in cond.items()
                if k.startswith("pooled")
            }
        )
        fields = cond["fields"]
        for key, name in (("modality_as_asked", "modality"), ("region_as_asked", "region")):
            p = fields.get(name)
            targets.append(rate_target(key, p.successes if p else 0, p.n if p else 0))
        for key, pooled in (
            ("finding_present_when_asked", cond["pooled_present_when_asked"]),
            ("finding_absent_when_not_asked", cond["pooled_absent_when_not_asked"]),
        ):
            targets.append(
                rate_target(key, pooled.successes if pooled else 0, pooled.n if pooled else 0)
            )
    else:
        for key in (
            "modality_as_asked",
            "region_as_asked",
            "finding_present_when_asked",
            "finding_absent_when_not_asked",
        ):
            targets.append(target(key, None, 0, no_reader or "no images"))

    bias_target, bias = ap_lateral_bias(images, xrays, no_reader)
    targets.append(bias_target)
    targets.append(
        check_rate(
            "breast_shadows_female",
            lambda g: g.asked.get("region") == "chest" and g.asked.get("sex") == "female",
            "breast_shadows",
        )
    )
    return targets, conditional, bias


def ap_lateral_bias(
    images: list[GeneratedImage], xrays: list[GeneratedImage], no_reader: str
) -> tuple[Target, dict[str, Any]]:
    """The AP-vs-lateral target (knees and lumbar spines passing every check) and the bias
    record (sex as asked vs seen, AP vs lateral)."""

    def passed(g: GeneratedImage) -> bool:
        return all(c["passed"] is not False for c in g.checks.values())

    pairs: dict[str, list[GeneratedImage]] = {"ap": [], "lateral": []}
    for g in xrays:
        if g.group == "anatomy" and g.asked.get("view") in pairs:
            pairs[g.asked["view"]].append(g)
    ap, lateral = pairs["ap"], pairs["lateral"]
    ap_passed, lateral_passed = sum(map(passed, ap)), sum(map(passed, lateral))
    sexes: dict[str, dict[str, int]] = {}
    for g in images:
        if g.asked.get("sex") and g.read is not None:
            entry = sexes.setdefault(g.asked["sex"], {"n": 0, "seen_as_asked": 0})
            entry["n"] += 1
            entry["seen_as_asked"] += int(g.read.get("sex") == g.asked["sex"])
    bias = {
        "sex_as_asked_vs_seen": sexes,
        "age": (
            "not measured: the reader has no age head, so the age asked for "
            "(35-year-old woman, 75-year-old man) cannot be compared with the age seen"
        ),
        "ap_vs_lateral": {
            "regions": ["knee", "lumbar_spine"],
            "ap_passed": ap_passed,
            "ap_n": len(ap),
            "lateral_passed": lateral_passed,
            "lateral_n": len(lateral),
            "rule": "an image passes when every anatomy check that applies passes",
        },
    }
    return lateral_within_ap(ap_passed, len(ap), lateral_passed, len(lateral), no_reader), bias


def inpaint_evidence(fig3: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The Figure 3 cases that are evidence for the structure-count targets, and how many were
    left out: a case whose erased square shows no structure in the truth (truth count 0) is
    left out, as a model that fills it with anything the reader sees nothing in, or a reader
    that sees nothing at all, would "restore" its count."""
    kept = [r for r in fig3 if r["model"].get("count_truth") != 0]
    return kept, len(fig3) - len(kept)


def edit_targets(result: ProbeResult, has_reader: bool, no_reader: str) -> list[Target]:
    """Figure 3's inpainting targets and the knee-to-full-body targets."""
    counted_by = "reader structure groups" if has_reader else "bright blobs"
    fig3, left_out = inpaint_evidence(result.figure3)
    model = sum(bool(r["model"].get("count_match")) for r in fig3)
    base = sum(bool(r["biharmonic"].get("count_match")) for r in fig3)
    n = len(fig3)
    notes = [] if has_reader else ["counted as bright blobs (no reader)"]
    if result.figure3:
        # A truth count of 0 matched by 0 is no evidence: a reader that sees nothing meets it.
        notes.append(
            "only cases whose erased square shows a structure in the truth count (truth "
            f"count 0 is matched by seeing nothing): {left_out} of {len(result.figure3)} "
            "left out"
        )
        if not n:
            notes.insert(0, "not measured: no case shows a structure in its erased square")
    note = "; ".join(notes)
    out = [
        rate_target(
            "inpaint_structure_count",
            model,
            n,
            note,
            counted_by=counted_by,
            biharmonic_rate=base / n if n else None,
            cases_left_out_truth_count_0=left_out,
        ),
        target(
            "inpaint_beats_biharmonic",
            (model - base) / n * 100.0 if n else None,
            n,
            note,
            model_rate=model / n if n else None,
            biharmonic_rate=base / n if n else None,
            cases_left_out_truth_count_0=left_out,
        ),
    ]
    bodies = [r for r in result.full_body if "generated" in r]
    errors = [r["ratio_error"] for r in bodies]
    worst = None if not errors or any(e is None for e in errors) else max(errors)
    note = no_reader if not has_reader else ""
    if bodies and worst is None:
        note = "femur or tibia not found in the grown image"
    out.append(
        target(
            "knee_full_body_ratio",
            worst,
            len(bodies),
            note,
            errors=errors,
            true_ratios=[r["truth"]["ratio"] for r in bodies],
        )
    )
    if bodies:
        ref_ratio = [r["reader_on_truth"]["ratio"] for r in bodies]
        ref_errors = [
            None if v is None or not r["truth"]["ratio"] else abs(v / r["truth"]["ratio"] - 1)
            for v, r in zip(ref_ratio, bodies, strict=True)
        ]
        known = [e for e in ref_errors if e is not None]
        ref_worst = max(known) if len(known) == len(ref_errors) else None
        out[-1].details["phantom_reference"] = {
            "value": ref_worst,
            "n": len(bodies),
            "met": ref_worst is not None and ref_worst <= out[-1].threshold,
        }
    fives = sum(r["generated"]["lumbar_count"] == 5 for r in bodies)
    out.append(
        rate_target(
            "knee_full_body_lumbar",
            fives,
            len(bodies),
            no_reader,
            counts=[r["generated"]["lumbar_count"] for r in bodies],
        )
    )
    if bodies:
        ref_fives = sum(r["reader_on_truth"]["lumbar_count"] == 5 for r in bodies)
        out[-1].details["phantom_reference"] = {
            "value": ref_fives / len(bodies),
            "n": len(bodies),
            "met": ref_fives == len(bodies),
        }
    return out


def prompt_diversity(
    images: list[GeneratedImage], phantoms: list[GeneratedImage]
) -> dict[str, Any]:
    """How alike the images of each prompt are: mean pairwise MS-SSIM (1 = identical) among the
    model's images of a prompt, against phantoms drawn with the same prompt's labels, which vary
    as the training data does (body size, position, sex, age). A model whose images of a prompt
    are more alike than its phantoms has lost some of that variety (mode collapse)."""
    measured: dict[str, dict[str, Any]] = {}
    for name, group in (("model", images), ("phantoms", phantoms)):
        metric = MSSSIMDiversity()
        for g in group:
            metric.update(g.image, g.prompt)
        measured[name] = metric.compute()
    model, reference = measured["model"]["per_prompt"], measured["phantoms"]["per_prompt"]
    rows: list[dict[str, Any]] = []
    listed: set[str] = set()
    for g in images:
        if g.prompt in model and g.prompt not in listed:
            listed.add(g.prompt)
            phantom = reference.get(g.prompt)
            rows.append(
                {
                    "group": g.group,
                    "title": g.title,
                    "prompt": g.prompt,
                    "n": model[g.prompt]["n"],
                    "model_ms_ssim": model[g.prompt]["mean_ms_ssim"],
                    "phantom_ms_ssim": phantom["mean_ms_ssim"] if phantom else None,
                }
            )
    compared = [r for r in rows if r["phantom_ms_ssim"] is not None]
    return json_clean(
        {
            "reported": "mean pairwise MS-SSIM among the images of one prompt (1 = identical); "
            "diversity = 1 - it",
            "model": {k: measured["model"][k] for k in ("mean_ms_ssim", "diversity", "pairs")},
            "phantoms": {
                k: measured["phantoms"][k] for k in ("mean_ms_ssim", "diversity", "pairs")
            },
            "prompts_more_alike_than_phantoms": sum(
                r["model_ms_ssim"] > r["phantom_ms_ssim"] for r in compared
            ),
            "prompts_compared": len(compared),
            "per_prompt": rows,
        }
    )


def other_side(labels: Labels) -> Labels | None:
    """`labels` with each finding moved to the other side of the body where its site names a
    side inside the image (left/right lung, lobe, hemithorax, hemisphere, hip), else None: the
    place a finding would take had the prompt asked for the other side; a limb finding with a
    side of its own on a midline region ("fracture of the left clavicle" on a chest) moves to
    the other limb. A limb's side on a paired region (the image's laterality) is not such a
    side: the other limb is not in the image."""
    moved, any_sided = [], False
    for finding in labels.findings:
        if finding.side is not None:
            other = "right" if finding.side == "left" else "left"
            moved.append(dataclasses.replace(finding, side=other))
            any_sided = True
            continue
        site = finding.site or ""
        side = side_named_by(site)
        if side is not None:
            rest = site.removeprefix(f"{side}_")
            other = "right" if side == "left" else "left"
            sites = FINDING_SITES.get(finding.kind, ())
            # A lobe with no twin on the other side (the right middle lobe) moves to that lung.
            for candidate in (f"{other}_{rest}", f"{other}_lung"):
                if candidate in sites:
                    moved.append(dataclasses.replace(finding, site=candidate))
                    any_sided = True
                    break
            else:
                moved.append(finding)
        else:
            moved.append(finding)
    return dataclasses.replace(labels, findings=tuple(moved)) if any_sided else None


def finding_effect_row(
    title: str,
    prompt: str,
    twin: str,
    shown: np.ndarray,
    plain: np.ndarray,
    place: np.ndarray,
    other_place: np.ndarray | None = None,
) -> dict[str, Any]:
    """What a finding's words change: `shown` (N, H, W) are the images of `prompt`, `plain` those
    of its `twin` without the finding on the same seeds, `place` (H, W) where phantoms of the
    prompt show the finding. Mean |shown - plain| inside and outside the place, their ratio (> 1:
    the change gathers where the finding belongs; about 1: the words move the whole image; a
    model that ignores them changes nothing), and the mean signed change inside.

    `other_place` (H, W), for a prompt that names the finding's side (see `other_side`): where
    the finding would be on the other side. The mean change there (outside `place`) and the
    ratio of the change inside the place to it (> 1: the change lands on the side asked for;
    about 1: both sides alike; < 1: the wrong side)."""
    shown, plain = np.asarray(shown, dtype=np.float64), np.asarray(plain, dtype=np.float64)
    if shown.shape != plain.shape or shown.shape[1:] != place.shape:
        raise ValueError(
            f"images {shown.shape} and {plain.shape} and place {place.shape} do not match"
        )
    if other_place is not None and other_place.shape != place.shape:
        raise ValueError(f"other_place {other_place.shape} and place {place.shape} differ")
    delta = np.abs(shown - plain)
    place = np.asarray(place, dtype=bool)
    inside = float(delta[:, place].mean()) if place.any() else None
    outside = float(delta[:, ~place].mean()) if (~place).any() else None
    ratio = inside / outside if inside is not None and outside else None
    signed = float((shown - plain)[:, place].mean()) if place.any() else None
    row = {
        "title": title,
        "prompt": prompt,
        "twin": twin,
        "n": int(shown.shape[0]),
        "place_share": float(place.mean()),
        "mean_change_inside": inside,
        "mean_change_outside": outside,
        "inside_to_outside": ratio,
        "signed_change_inside": signed,
        "other_side_share": None,
        "mean_change_other_side": None,
        "asked_to_other_side": None,
    }
    if other_place is not None:
        other = np.asarray(other_place, dtype=bool) & ~place
        there = float(delta[:, other].mean()) if other.any() else None
        row["other_side_share"] = float(other.mean())
        row["mean_change_other_side"] = there
        row["asked_to_other_side"] = inside / there if inside is not None and there else None
    return json_clean(row)


def place_panel(
    plain: np.ndarray, place: np.ndarray, other_place: np.ndarray | None = None
) -> np.ndarray:
    """The finding-effect figure's last panel: the twin's image `plain` (H, W) at half
    brightness, the finding's `place` lifted by 0.5 and, for a prompt that names a side, the
    other side's place (where it is not also `place`) by 0.25, so the side asked is the bright
    patch and its mirror the dim one; values in [0, 1]."""
    plain = np.asarray(plain, dtype=np.float32)
    place = np.asarray(place, dtype=bool)
    if plain.shape != place.shape:
        raise ValueError(f"image {plain.shape} and place {place.shape} differ")
    panel = 0.5 * plain + 0.5 * place.astype(np.float32)
    if other_place is not None:
        if other_place.shape != place.shape:
            raise ValueError(f"other_place {other_place.shape} and place {place.shape} differ")
        panel += 0.25 * (np.asarray(other_place, dtype=bool) & ~place).astype(np.float32)
    return np.clip(panel, 0.0, 1.0)


def summarise_finding_effect(rows: list[dict[str, Any]], places: int) -> dict[str, Any]:
    """The rows of `finding_effect_row` with their pooled means (each prompt weighted alike)."""
    inside = [r["mean_change_inside"] for r in rows if r["mean_change_inside"] is not None]
    outside = [r["mean_change_outside"] for r in rows if r["mean_change_outside"] is not None]
    pooled_in = float(np.mean(inside)) if inside else None
    pooled_out = float(np.mean(outside)) if outside else None
    # The side check pools the prompts that name a side, each weighted alike.
    sided = [
        r
        for r in rows
        if r.get("mean_change_other_side") is not None and r["mean_change_inside"] is not None
    ]
    sided_in = float(np.mean([r["mean_change_inside"] for r in sided])) if sided else None
    sided_other = float(np.mean([r["mean_change_other_side"] for r in sided])) if sided else None
    return json_clean(
        {
            "reported": "mean |image - twin's image| (same seed, twin = the prompt without its "
            "finding) inside and outside the finding's place in phantoms drawn for the prompt; "
            "for a prompt that names the finding's side, also at the place the finding would "
            "take on the other side (same phantoms, side swapped); intensities in [0, 1]",
            "places_from": f"{places} phantom(s) per prompt",
            "mean_change_inside": pooled_in,
            "mean_change_outside": pooled_out,
            "inside_to_outside": pooled_in / pooled_out if pooled_in and pooled_out else None,
            "sided": {
                "prompts": len(sided),
                "mean_change_inside": sided_in,
                "mean_change_other_side": sided_other,
                "asked_to_other_side": sided_in / sided_other if sided_in and sided_other else None,
            },
            "per_prompt": rows,
        }
    )
