"""The reader's finding stage: its training cases, a real tiny training run through the
command line, the stage inside `Reader.predict`, and the shipped stage on the probe's
pathology phantoms."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.evaluate.reader import load_reader
from radsynth.evaluate.reader.findings import (
    EXTREMITY_REGIONS,
    MIN_AREA,
    PLANS,
    SIZE,
    STAGE_KINDS,
    FindingStage,
    _lesions,
    auroc,
    build_finding_cases,
    case_plan,
    finding_config,
    kinds_it_reads,
    render_finding_case,
    soften,
    training_example,
)
from radsynth.evaluate.reader.groups import FINDINGS
from radsynth.evaluate.reader.inference import (
    CARPAL_STAGE,
    FINDING_STAGE,
    WEIGHTS_DIR,
    Reader,
    finding_stage_folders,
)
from radsynth.evaluate.reader.model import ReaderNet
from radsynth.phantoms.cases import make_case, make_case_for_labels
from radsynth.vocabulary import parse_prompt


def test_auroc_counts_ordered_pairs_and_ties_half() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    assert auroc(scores, np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auroc(np.array([0.2, 0.2]), np.array([1, 0])) == pytest.approx(0.5)
    assert auroc(scores, np.zeros(4)) is None
    rng = np.random.default_rng(0)
    random_scores, truth = rng.random(50), rng.random(50) < 0.3
    pairs = [(p > q) + 0.5 * (p == q) for p in random_scores[truth] for q in random_scores[~truth]]
    assert auroc(random_scores, truth) == pytest.approx(np.mean(pairs))


def test_the_stage_reads_the_kinds_it_reads_better_than_the_reader() -> None:
    def scores(sensitivity: float | None, specificity: float | None) -> dict:
        return {"sensitivity": sensitivity, "specificity": specificity, "auroc": None}

    figures = {
        "fracture": {"with_stage": scores(0.9, 0.95), "reader_alone": scores(0.1, 1.0)},
        "bone_tumour": {"with_stage": scores(0.1, 0.9), "reader_alone": scores(0.2, 0.95)},
        "lung_nodule": {"with_stage": scores(None, 1.0), "reader_alone": scores(None, 1.0)},
        "consolidation": {"with_stage": scores(0.5, 0.5), "reader_alone": scores(0.0, 1.0)},
    }
    assert kinds_it_reads(figures) == ["fracture"]  # consolidation: J 0 against 0
    with pytest.raises(ValueError, match="cannot read \\['pacemaker'\\]"):
        FindingStage(ReaderNet(finding_config((8, 16), size=32)), ["pacemaker"])


def test_cases_show_the_planned_finding_and_no_other() -> None:
    wanted: dict[str, int | None] = {"with_finding": None, "without": None}
    for index in range(60):
        mix = case_plan(0, "train", index).mix
        if mix in wanted and wanted[mix] is None:
            wanted[mix] = index
        if all(v is not None for v in wanted.values()):
            break
    for mix, found in wanted.items():
        assert found is not None
        index = found
        planned = case_plan(0, "train", index)
        kind, region = planned.kind, planned.region
        assert kind in STAGE_KINDS and region is not None
        assert (planned.finding is not None) == (mix == "with_finding")
        case = render_finding_case(0, "train", index)
        data = {key: value[None] for key, value in case.items()}
        areas = _lesions(data, 0).reshape(len(STAGE_KINDS), -1).sum(1)
        np.testing.assert_array_equal(case["shown"], areas >= MIN_AREA)
        k = STAGE_KINDS.index(kind)
        others = np.delete(case["shown"], k)
        assert not others.any()  # a planned case shows its kind or nothing of the stage's
        if mix == "without":
            assert case["shown"][k] == 0
        picture, lesions, shown = training_example(data, 0, None)
        assert picture.shape == (1, SIZE, SIZE) and lesions.shape == (len(STAGE_KINDS), SIZE, SIZE)
        np.testing.assert_array_equal(shown.numpy(), case["shown"])
        assert bool(lesions[k].any()) == bool(case["shown"][k])


def test_augmented_examples_mirror_the_image_and_its_lesions_together() -> None:
    index = next(i for i in range(80) if render_finding_case(0, "train", i)["shown"].any())
    data = {key: value[None] for key, value in render_finding_case(0, "train", index).items()}
    plain_image, plain_lesions, _ = training_example(data, 0, None)
    k = int(np.argmax(data["shown"][0]))
    columns = torch.nonzero(plain_lesions[k])[:, 1].float().mean()
    for seed in range(8):
        _, lesions, shown = training_example(data, 0, np.random.default_rng(seed))
        np.testing.assert_array_equal(shown.numpy(), data["shown"][0])
        moved = torch.nonzero(lesions[k])[:, 1].float().mean()
        # The lesion is where it was or mirrored about the image's middle column.
        assert min(abs(moved - columns), abs(moved - (SIZE - 1 - columns))) < 2.0


def _tiny_stage(tmp_path: Path, name: str = "stage", *options: str) -> tuple[Path, str]:
    """A 2-step tiny stage trained through the command line into TMP/NAME, and its output."""
    out = tmp_path / name
    result = CliRunner().invoke(
        app,
        ["train-finding-reader", "--out", str(out), "--n", "4", "--heldout", "6"]
        + ["--steps", "2", "--batch-size", "2", "--checkpoint-every", "1", "--tiny", *options],
    )
    assert result.exit_code == 0, result.output
    assert "finding stage and held-out figures written" in result.output
    return out, result.output


def test_train_finding_reader_command_trains_saves_scores_and_resumes(tmp_path: Path) -> None:
    out, _ = _tiny_stage(tmp_path)
    assert {"config.json", "reader.safetensors", "heldout.json"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "heldout.json").read_text())
    assert record["train"]["steps"] == 2
    held = record["heldout"]
    assert held["n"] == 6
    with np.load(out / "cases-heldout.npz") as data:
        shown = data["shown"]
    for k, kind in enumerate(STAGE_KINDS):
        assert held[kind]["shown"] == int(shown[:, k].sum())
        for name in ("with_stage", "reader_alone"):
            specificity = held[kind][name]["specificity"]
            assert specificity is None or 0.0 <= specificity <= 1.0
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 2
    result = CliRunner().invoke(
        app,
        ["train-finding-reader", "--out", str(out), "--n", "4", "--heldout", "6"]
        + ["--steps", "3", "--batch-size", "2", "--tiny"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 3
    result = CliRunner().invoke(
        app, ["train-finding-reader", "--out", str(out), "--seed", "1", "--n", "4", "--tiny"]
    )
    assert result.exit_code != 0
    assert "holds other finding cases (seed 0" in " ".join(result.output.replace("│", " ").split())


def test_a_reader_folder_with_a_finding_stage_reads_radiograph_findings_through_it(
    tmp_path: Path,
) -> None:
    stage_out, _ = _tiny_stage(tmp_path)
    plain_folder, staged_folder = tmp_path / "plain", tmp_path / "staged"
    skip = shutil.ignore_patterns(CARPAL_STAGE, FINDING_STAGE)
    for folder in (plain_folder, staged_folder):
        shutil.copytree(WEIGHTS_DIR, folder, ignore=skip)
    no_cases = shutil.ignore_patterns("*.npz")
    shutil.copytree(stage_out, staged_folder / FINDING_STAGE, ignore=no_cases)
    # The stage answers only for the kinds its config.json says it reads.
    config_path = staged_folder / FINDING_STAGE / "config.json"
    record = json.loads(config_path.read_text())
    record["reads"] = ["fracture", "consolidation"]
    config_path.write_text(json.dumps(record))
    plain, staged = load_reader(plain_folder), load_reader(staged_folder)
    assert plain.finding_stages == () and len(staged.finding_stages) == 1
    assert staged.finding_stages[0].kinds == ("fracture", "consolidation")
    assert staged.finding_stages[0].regions is None
    xray = make_case(5, modality="xray", region="chest", size=256).image.image
    ct = make_case(5, modality="ct", region="head", size=256).image.image
    before, after = plain.predict([xray, ct]), staged.predict([xray, ct])
    assert [r["modality"] for r in before] == ["xray", "ct"]
    every_kind = FindingStage(staged.finding_stages[0].net).probabilities(xray)[0]
    for kind, value in before[0]["findings"].items():
        if kind in ("fracture", "consolidation"):
            assert after[0]["findings"][kind] == pytest.approx(
                float(every_kind[STAGE_KINDS.index(kind)])
            )
        else:
            assert after[0]["findings"][kind] == value
    assert after[1]["findings"] == before[1]["findings"]  # not a radiograph: the reader's own
    assert {k: v for k, v in after[0].items() if k != "findings"} == {
        k: v for k, v in before[0].items() if k != "findings"
    }


@pytest.mark.skipif(
    not (WEIGHTS_DIR / FINDING_STAGE / "reader.safetensors").is_file(),
    reason="no finding stage shipped",
)
def test_shipped_stage_sees_consolidations_and_effusions_and_leaves_tumours_to_the_reader() -> None:
    reader = load_reader()
    stage = reader.finding_stages[0]
    assert stage.regions is None
    assert "consolidation" in stage.kinds and "bone_tumour" not in stage.kinds
    prompts = {
        "consolidation": "PA chest radiograph with consolidation of the right lower lobe",
        "pleural_effusion": "PA chest radiograph with a left pleural effusion",
    }
    for kind, prompt in prompts.items():
        labels, plain = parse_prompt(prompt), parse_prompt(prompt.split(" with ")[0])
        shown = [make_case_for_labels(7_500_000 + i, labels).image.image for i in range(4)]
        clear = [make_case_for_labels(7_500_000 + i, plain).image.image for i in range(4)]
        seen = [r["findings"][kind] for r in reader.predict(shown)]
        missed = [r["findings"][kind] for r in reader.predict(clear)]
        assert sum(p >= 0.5 for p in seen) >= 3, (kind, seen)
        assert all(p < 0.5 for p in missed), (kind, missed)
    # A kind the stage does not read keeps the reader's own probability.
    knee = make_case_for_labels(
        7_500_000, parse_prompt("AP radiograph of the left knee with a bone tumour of the femur")
    ).image.image
    staged = reader.predict(knee)[0]["findings"]
    alone = Reader(reader.net).predict(knee)[0]["findings"]
    assert staged["bone_tumour"] == alone["bone_tumour"]


def test_the_extremity_plan_draws_its_pairs_evenly_and_refuses_other_caches(
    tmp_path: Path,
) -> None:
    plan = PLANS["extremity"]
    planned = [case_plan(0, "train", i, "extremity") for i in range(600)]
    mixes = Counter(p.mix for p in planned)
    for mix, share in plan.mix.items():
        assert abs(mixes[mix] / 600 - share) < 0.07, (mix, mixes)
    assert plan.pairs is not None
    pairs = Counter((p.kind, p.region) for p in planned if p.mix != "ordinary")
    assert set(pairs) == set(plan.pairs)
    assert max(pairs.values()) < 2 * min(pairs.values())
    for p in planned:
        if p.mix == "with_finding":
            assert p.finding is not None and p.finding.kind == p.kind
        else:
            assert p.finding is None and (p.mix == "ordinary") == (p.region is None)
    # The held-out split draws other cases.
    assert [case_plan(0, "heldout", i, "extremity") for i in range(5)] != planned[:5]
    index = next(i for i, p in enumerate(planned) if p.mix == "with_finding")
    case = render_finding_case(0, "train", index, "extremity")
    assert planned[index].kind is not None
    k = STAGE_KINDS.index(planned[index].kind)
    assert not np.delete(case["shown"], k).any()
    path = tmp_path / "cases.npz"
    build_finding_cases(path, 0, "train", 2, plan="extremity")
    with pytest.raises(ValueError, match="holds other finding cases"):
        build_finding_cases(path, 0, "train", 2)  # the plan 'all'
    with pytest.raises(ValueError, match="unknown finding-stage plan 'elbow'"):
        build_finding_cases(path, 0, "train", 2, plan="elbow")


def _xray_record(region: str, modality: str = "xray") -> dict:
    return {"modality": modality, "region": region, "findings": {k: -1.0 for k in FINDINGS}}


def test_stages_answer_on_their_regions_and_a_later_stage_over_an_earlier_one() -> None:
    torch.manual_seed(0)
    general = FindingStage(ReaderNet(finding_config((8, 16), size=32)), ["fracture", "lung_nodule"])
    limb = FindingStage(
        ReaderNet(finding_config((8, 16), size=32)), ["fracture"], regions=("wrist", "ankle")
    )
    with pytest.raises(ValueError, match="unknown regions \\['elbow'\\]"):
        FindingStage(limb.net, regions=("elbow",))
    images = [make_case(s, modality="xray", region="chest", size=64).image.image for s in range(4)]
    records = [
        _xray_record("wrist"),
        _xray_record("chest"),
        _xray_record("ankle"),
        _xray_record("head", "ct"),
    ]
    reader = Reader(ReaderNet(finding_config((8, 16), size=32)), findings=[general, limb])
    out = reader.refine_findings(images, [dict(r, findings=dict(r["findings"])) for r in records])
    from_general, from_limb = general.probabilities(images), limb.probabilities(images)
    assert [limb.answers(r) for r in records] == [True, False, True, False]
    assert [general.answers(r) for r in records] == [True, True, True, False]
    for i in (0, 2):  # wrist, ankle: the limb stage's fracture, the general stage's nodule
        assert out[i]["findings"]["fracture"] == pytest.approx(float(from_limb[i, 0]))
        assert out[i]["findings"]["lung_nodule"] == pytest.approx(float(from_general[i, 1]))
    assert out[1]["findings"]["fracture"] == pytest.approx(float(from_general[1, 0]))
    assert out[3]["findings"] == records[3]["findings"]  # a CT: the reader's own
    assert out[0]["findings"]["consolidation"] == -1.0  # a kind no stage reads


def test_a_reader_folder_loads_named_finding_stages_after_its_finding_stage(
    tmp_path: Path,
) -> None:
    out, output = _tiny_stage(tmp_path, "limb", "--plan", "extremity")
    assert "without the stage" in output
    saved = json.loads((out / "config.json").read_text())
    assert saved["plan"] == "extremity" and saved["regions"] == list(EXTREMITY_REGIONS)
    assert set(saved["reads"]) <= {"fracture", "bone_tumour"}
    held = json.loads((out / "heldout.json").read_text())["heldout"]
    assert set(held["fracture"]) == {"shown", "with_stage", "without_stage"}
    folder = tmp_path / "reader"
    shutil.copytree(WEIGHTS_DIR, folder, ignore=shutil.ignore_patterns("findings_*"))
    no_cases = shutil.ignore_patterns("*.npz")
    shutil.copytree(out, folder / "findings_b", ignore=no_cases)
    shutil.copytree(out, folder / "findings_a", ignore=no_cases)
    (folder / "findings_c").mkdir()  # no config.json: not a stage
    assert [p.name for p in finding_stage_folders(folder)] == [
        FINDING_STAGE,
        "findings_a",
        "findings_b",
    ]
    stages = load_reader(folder).finding_stages
    assert [s.regions for s in stages[1:]] == [EXTREMITY_REGIONS] * 2
    bad = CliRunner().invoke(app, ["train-finding-reader", "--out", str(out), "--plan", "elbow"])
    assert bad.exit_code != 0 and "unknown finding-stage plan 'elbow'" in bad.output


def test_softened_images_are_smoother_half_of_the_time_and_unchanged_without_blur() -> None:
    image = torch.from_numpy(
        make_case(3, modality="xray", region="wrist", size=128).image.image.astype(np.float32)
    )[None]

    def roughness(picture: torch.Tensor) -> float:
        return float((picture[..., 1:] - picture[..., :-1]).abs().mean())

    changed, ratios = 0, []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        assert soften(image, rng, 0.0) is image
        assert rng.random() == np.random.default_rng(seed).random()  # no draw without blur
        out = soften(image, np.random.default_rng(seed), 2.0)
        assert out.shape == image.shape
        if not torch.equal(out, image):
            changed += 1
            ratios.append(roughness(out) / roughness(image))
            assert float(out.mean()) == pytest.approx(float(image.mean()), abs=1e-3)
    assert 10 <= changed <= 30
    assert max(ratios) < 0.95 and min(ratios) < 0.6  # sigma 0.5 smooths a little, 2 a lot
