"""scripts/make_builtin_data.py: the finding cases added to the built-in model's data."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from radsynth.io.manifest import iter_manifest
from radsynth.probe.scorecard import PATHOLOGY_KINDS
from radsynth.vocabulary import FINDINGS_BY_REGION, parse_prompt

SCRIPTS = Path(__file__).parents[2] / "scripts"


def load_script() -> dict:
    """The names of scripts/make_builtin_data.py."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        return vars(importlib.import_module("make_builtin_data"))
    finally:
        sys.path.remove(str(SCRIPTS))


def test_finding_cases_show_one_finding_their_region_allows(tmp_path: Path) -> None:
    script = load_script()
    out = tmp_path / "data"
    script["write_part"](out / "findings", "findings", 6, 20_000_000, 64, 1)
    records = list(iter_manifest(out / "findings" / "manifest.jsonl"))
    assert 1 <= len(records) <= 6  # a case whose phantom cannot show its finding is left out
    kinds = set()
    for record in records:
        labels = record["labels"]
        (finding,) = labels["findings"]
        kinds.add(finding["kind"])
        assert finding["kind"] in FINDINGS_BY_REGION[(labels["modality"], labels["region"])]
        # The caption names the finding, so the model learns the words for it.
        assert parse_prompt(record["caption"]).findings[0].kind == finding["kind"]
        assert (out / "findings" / record["image"]).is_file()
    assert len(kinds) > 1  # drawn over the vocabulary's places, not one kind
    # Running again writes nothing new; merge() lists the part with its paths.
    script["write_part"](out / "findings", "findings", 6, 20_000_000, 64, 1)
    assert len(list(iter_manifest(out / "findings" / "manifest.jsonl"))) == len(records)
    assert script["merge"](out) == len(records)
    first = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert first["image"].startswith("findings/") and first["id"].startswith("findings-")


def test_study_finding_cases_show_the_studys_five_pathologies(tmp_path: Path) -> None:
    script = load_script()
    out = tmp_path / "data"
    script["write_part"](out / "study_findings", "study_findings", 10, 30_000_000, 64, 1)
    records = list(iter_manifest(out / "study_findings" / "manifest.jsonl"))
    assert 1 <= len(records) <= 10
    kinds = set()
    for record in records:
        (finding,) = record["labels"]["findings"]
        kinds.add(finding["kind"])
        assert parse_prompt(record["caption"]).findings[0].kind == finding["kind"]
        assert record["id"].startswith("study-finding-")
    assert kinds <= set(PATHOLOGY_KINDS) and len(kinds) > 1
    # Each kind is drawn evenly, whatever its number of places (fracture has 11, effusion 2).
    rng = np.random.default_rng(0)
    drawn = Counter(script["study_place"](rng) for _ in range(5000))
    per_kind = Counter()
    for (modality, region, kind), count in drawn.items():
        assert kind in FINDINGS_BY_REGION[(modality, region)]
        per_kind[kind] += count
    assert set(per_kind) == set(PATHOLOGY_KINDS)
    assert all(abs(count / 5000 - 0.2) < 0.02 for count in per_kind.values())
    assert ("xray", "chest", "pleural_effusion") in drawn and ("xray", "wrist", "fracture") in drawn
    assert script["merge"](out) == len(records)
    first = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert first["image"].startswith("study_findings/")


def test_place_finding_cases_show_the_places_named(tmp_path: Path) -> None:
    """--place-findings: each case shows one finding of a --places entry, at the entry's site
    where it names one; entries are checked against the vocabulary."""
    script = load_script()
    places = script["finding_places"]("wrist:fracture:distal radius, knee:bone tumor")
    assert places == (
        ("xray", "wrist", "fracture", "distal_radius"),
        ("xray", "knee", "bone_tumour", None),
    )
    # Sites in the words of prompts too, as regions and kinds are.
    assert script["finding_places"](
        "knee:bone tumour:thigh bone,ankle:fracture:lateral malleolus,wrist:fracture:distal_radius"
    ) == (
        ("xray", "knee", "bone_tumour", "femur"),
        ("xray", "ankle", "fracture", "distal_fibula"),
        ("xray", "wrist", "fracture", "distal_radius"),
    )
    out = tmp_path / "data"
    script["write_part"](
        out / "place_findings", "place_findings", 8, 50_000_000, 64, 1, places=places
    )
    records = list(iter_manifest(out / "place_findings" / "manifest.jsonl"))
    assert 4 <= len(records) <= 8  # a finding the field cannot show is left out
    seen = set()
    for record in records:
        labels = record["labels"]
        (finding,) = labels["findings"]
        seen.add((labels["region"], finding["kind"]))
        assert (labels["modality"], labels["region"], finding["kind"]) in {p[:3] for p in places}
        if labels["region"] == "wrist":
            assert finding["site"] == "distal_radius"
        assert finding["site"] in FINDINGS_BY_REGION[("xray", labels["region"])][finding["kind"]]
        parsed = parse_prompt(record["caption"])
        assert parsed.findings[0].kind == finding["kind"] and parsed.region == labels["region"]
        assert record["id"].startswith("place-finding-")
    assert seen == {("wrist", "fracture"), ("knee", "bone_tumour")}
    assert script["merge"](out) == len(records)
    assert json.loads((out / "manifest.jsonl").read_text().splitlines()[0])["image"].startswith(
        "place_findings/"
    )
    for bad, message in [
        ("wrist:bone_tumour", "bone_tumour is not placed in xray wrist; use: fracture"),
        ("knee:bone_tumour:radius", "unknown site radius; use: femur, tibia, fibula"),
        ("wrist", r"not \[MODALITY/\]REGION:KIND"),
        (" , ", "none given"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            script["finding_places"](bad)
    with pytest.raises(ValueError, match="needs its places"):
        script["write_part"](tmp_path / "p", "place_findings", 1, 0, 64, 1)


def test_focus_cases_are_x_rays_of_the_named_regions_drawn_by_weight(tmp_path: Path) -> None:
    script = load_script()
    out = tmp_path / "data"
    regions = script["focus_regions"]("lumbar_spine:lateral, lumbar_spine,knee")
    assert regions == (
        ("xray", "lumbar_spine", "lateral"),
        ("xray", "lumbar_spine", None),
        ("xray", "knee", None),
    )
    script["write_part"](out / "focus", "focus", 12, 40_000_000, 64, 1, regions=regions)
    records = list(iter_manifest(out / "focus" / "manifest.jsonl"))
    assert len(records) == 12
    drawn = Counter(record["labels"]["region"] for record in records)
    assert set(drawn) == {"lumbar_spine", "knee"}
    # An entry with a view fixes it: every case drawn from it is that view.
    fixed = [r for r in records if script["focus_region"](r["seed"], regions)[2] == "lateral"]
    assert fixed and all(r["labels"]["view"] == "lateral" for r in fixed)
    assert all(record["labels"]["modality"] == "xray" for record in records)
    assert all(parse_prompt(r["caption"]).region == r["labels"]["region"] for r in records)
    # A region named twice is drawn twice as often (over many seeds: the draw alone).
    many = Counter(script["focus_region"](seed, regions)[1] for seed in range(3000))
    assert abs(many["lumbar_spine"] / 3000 - 2 / 3) < 0.03
    lateral = sum(
        script["focus_region"](s, regions) == ("xray", "lumbar_spine", "lateral")
        for s in range(3000)
    )
    assert abs(lateral / 3000 - 1 / 3) < 0.03
    assert script["merge"](out) == 12
    assert json.loads((out / "manifest.jsonl").read_text().splitlines()[0])["id"].startswith(
        "focus-focus-"
    )


def test_focus_cases_of_other_modalities(tmp_path: Path) -> None:
    script = load_script()
    out = tmp_path / "data"
    regions = script["focus_regions"]("us/liver, ct/head,hand:pa")
    assert regions == (("us", "liver", None), ("ct", "head", None), ("xray", "hand", "pa"))
    script["write_part"](out / "focus", "focus", 9, 41_000_000, 64, 1, regions=regions)
    records = list(iter_manifest(out / "focus" / "manifest.jsonl"))
    assert len(records) == 9
    for record in records:
        modality, region, view = script["focus_region"](record["seed"], regions)
        assert (record["labels"]["modality"], record["labels"]["region"]) == (modality, region)
        assert view is None or record["labels"]["view"] == view
        parsed = parse_prompt(record["caption"])
        assert (parsed.modality, parsed.region) == (modality, region)
    assert {r["labels"]["modality"] for r in records} == {"us", "ct", "xray"}


def test_focus_entries_may_use_the_words_of_prompts() -> None:
    script = load_script()
    written = "ultrasound/liver, MRI/knee, CT scan/skull, l-spine:lat, x-ray/hand:PA, lumbar"
    assert script["focus_regions"](written) == (
        ("us", "liver", None),
        ("mri", "knee", None),
        ("ct", "head", None),
        ("xray", "lumbar_spine", "lateral"),
        ("xray", "hand", "pa"),
        ("xray", "lumbar_spine", None),
    )


def test_focus_regions_reject_unknown_or_empty_lists(tmp_path: Path) -> None:
    script = load_script()
    with pytest.raises(argparse.ArgumentTypeError, match="lumbr.*use: head"):
        script["focus_regions"]("lumbr,knee")
    with pytest.raises(argparse.ArgumentTypeError, match="none given"):
        script["focus_regions"](" , ")
    with pytest.raises(argparse.ArgumentTypeError, match="view.*oblique; use: ap, pa, lateral"):
        script["focus_regions"]("lumbar_spine:oblique")
    with pytest.raises(argparse.ArgumentTypeError, match="modality pet; use: xray, ct, mri, us"):
        script["focus_regions"]("pet/head")
    with pytest.raises(argparse.ArgumentTypeError, match="us region.*hand; use: liver"):
        script["focus_regions"]("us/hand")
    with pytest.raises(argparse.ArgumentTypeError, match="X-ray entries only"):
        script["focus_regions"]("ct/head:lateral")
    with pytest.raises(ValueError, match="needs its regions"):
        script["write_part"](tmp_path / "focus", "focus", 1, 0, 64, 1)
    assert not (tmp_path / "focus").exists()  # refused before anything is written


def run_parts(out: Path, seed: int, *parts: str) -> subprocess.CompletedProcess[bytes]:
    """make_builtin_data.py writing only `parts` (--regional 0 --crops 0) at 64 px into `out`."""
    script = [sys.executable, str(SCRIPTS / "make_builtin_data.py"), "--workers", "1"]
    only = ["--regional", "0", "--crops", "0", "--size", "64", "--seed", str(seed)]
    return subprocess.run([*script, "--out", str(out), *only, *parts], capture_output=True)


def test_a_set_of_focus_cases_alone_for_a_held_out_check(tmp_path: Path) -> None:
    """--regional 0 --crops 0 writes only the parts asked (a small held-out set); all parts at 0
    is refused before anything is written."""
    out = tmp_path / "held-out"
    result = run_parts(out, 31, "--focus", "2", "--focus-regions", "lumbar_spine:ap")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["focus", "manifest.jsonl"]
    records = list(iter_manifest(out / "manifest.jsonl"))
    assert len(records) == 2 and all(r["id"].startswith("focus-") for r in records)
    assert {(r["labels"]["region"], r["labels"]["view"]) for r in records} == {
        ("lumbar_spine", "ap")
    }
    empty = run_parts(tmp_path / "none", 31)
    assert empty.returncode == 2 and b"nothing to write" in empty.stderr
    assert not (tmp_path / "none").exists()


def test_wide_crops_are_a_part_of_their_own(tmp_path: Path) -> None:
    out = tmp_path / "wide"
    result = run_parts(out, 41, "--wide-crops", "3", "--wide-zoom", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "wide_crops"]
    records = list(iter_manifest(out / "manifest.jsonl"))
    assert [r["id"] for r in records] == [f"wide_crops-wide-crop-{i:06d}" for i in range(3)]
    for record in records:
        assert (out / record["image"]).is_file()
        assert parse_prompt(record["caption"]).region is None
        # --wide-zoom reaches make_body_crop (whose zoom's effect on the spacing test_crops.py
        # asserts): the window is 3 regional fields wide.
        assert record["render"]["zoom"] == 3.0
