"""`radsynth probe`: the whole protocol on a tiny random model, its targets' bookkeeping, and
the Figure 3/4 scoring on perfect reconstructions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from browser import Browser, RenderedPage
from radsynth.cli.app import app
from radsynth.evaluate.anatomy import truth_structure_map
from radsynth.evaluate.reader import Reader, ReaderConfig, ReaderNet, StructureMap, load_reader
from radsynth.evaluate.reader.inference import WEIGHTS_DIR
from radsynth.models import build_components
from radsynth.pipelines import TextToImagePipeline
from radsynth.probe.protocol import (
    PATHOLOGY_PROMPTS,
    GeneratedImage,
    ProbeConfig,
    _Probe,
    full_body_case,
    run_probe,
    total_units,
)
from radsynth.probe.report import write_report
from radsynth.probe.scorecard import (
    finding_effect_row,
    other_side,
    place_panel,
    prompt_diversity,
    summarise_finding_effect,
)
from radsynth.probe.scoring import (
    bone_length,
    central_mask,
    femur_tibia,
    pad_to_square,
    read_in_windows,
    read_in_windows_averaged,
    regional_plane,
    score_extension,
    score_inpainting,
)
from radsynth.probe.targets import (
    TARGET_MEASURES,
    TARGET_SPECS,
    Target,
    lateral_within_ap,
    rate_target,
    target,
)
from radsynth.vocabulary import parse_prompt

runner = CliRunner()
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("probe") / "model"
    return build_components("tiny-patch", seed=0).save_pretrained(folder)


def test_target_bookkeeping_known_answers() -> None:
    assert Target("k", "x", 0.96, 0.95, 50).met
    assert not Target("k", "x", 0.94, 0.95, 50).met
    assert Target("k", "x", 0.95, 0.95, 50).met  # at the threshold counts as reaching it
    assert not Target("k", "x", None, 0.95, 0).met
    assert not Target("k", "x", 0.96, 0.95, 0).met  # nothing measured, nothing met
    assert Target("k", "x", 0.004, 0.005, 1000, "<").met
    assert not Target("k", "x", 0.005, 0.005, 1000, "<").met
    with pytest.raises(ValueError, match="comparison"):
        Target("k", "x", 1.0, 1.0, 1, "~")
    rate = rate_target("fibula_present", 48, 50)
    assert rate.value == pytest.approx(0.96) and rate.met and rate.n == 50
    assert rate.details["wilson_95"][0] < 0.96 < rate.details["wilson_95"][1]
    assert not rate_target("carpals_eight", 0, 0).met
    d = rate.to_dict()
    assert {"name", "value", "threshold", "n", "met"} <= set(d) and d["met"] is True


def test_lateral_within_three_points_of_ap() -> None:
    # AP 90 of 100 pass, lateral 88 of 100: 2 points apart, met.
    close = lateral_within_ap(90, 100, 88, 100)
    assert close.value == pytest.approx(2.0) and close.met and close.n == 100
    # AP 18 of 20 (90 %), lateral 16 of 20 (80 %): 10 points, not met; direction does not matter.
    far = lateral_within_ap(16, 20, 18, 20)
    assert far.value == pytest.approx(10.0) and not far.met
    assert not lateral_within_ap(0, 0, 3, 4).met
    assert target("knee_full_body_ratio", 0.049, 1).met
    assert not target("knee_full_body_ratio", 0.051, 1).met
    assert target("memorization_flags", 0.0, 200).met


def test_inpainting_scores_of_the_truth_are_perfect() -> None:
    plane = regional_plane(3, "knee", "ap", "left", size=64)
    truth = plane.window((64, 64)).image
    mask = central_mask(64)
    assert mask.sum() == 24 * 24
    scores = score_inpainting(truth, truth, mask)
    assert math.isinf(scores["model"]["psnr_db"]) and scores["model"]["ssim"] == pytest.approx(1)
    assert scores["model"]["count_match"]
    assert np.isfinite(scores["biharmonic"]["psnr_db"])  # the baseline is not perfect


def test_extension_and_full_body_scores_of_the_truth() -> None:
    plane = regional_plane(4, "wrist", "pa", "left", size=48)
    small, big, top, left = plane.grown(12, 12, 12, 12)
    assert big.image.shape == (72, 72) and (top, left) == (12, 12)
    np.testing.assert_allclose(big.image[12:60, 12:60], small.image, atol=1e-6)
    known = np.zeros(big.image.shape, bool)
    known[12:60, 12:60] = True
    scores = score_extension(big.image, big.image, known)
    assert math.isinf(scores["psnr_db"]) and scores["count_match"]
    # Femur/tibia from the phantom's own masks: the truth passed through gives the true ratio.
    legs = regional_plane(5, "knee", "ap", "left", size=32)
    body = legs.window((200, 64), np.array([0.0, legs.centre[1], legs.centre[2]]))
    smap = truth_structure_map(body.masks)
    props = femur_tibia(smap)
    assert props["ratio"] == pytest.approx(
        bone_length(smap.masks["femur"]) / bone_length(smap.masks["tibia"])
    )
    bar = np.zeros((50, 20), bool)
    bar[5:45, 8:12] = True
    assert bone_length(bar) == 40


TINY_PROBE = ProbeConfig(
    n=2,
    steps=1,
    inpaint_cases=1,
    extend_cases=1,
    full_body_knee_px=32,
    full_body_width=1,
    memorization_train=4,
    audit_px=32,
    figure3_regions=("knee", "wrist"),
    figure4_regions=("hand", "chest"),
)


@pytest.fixture(scope="module")
def tiny_probe(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The whole probe on the tiny model with a random reader, its report written to a folder;
    returns the folder and the progress steps it counted."""
    torch.manual_seed(0)
    reader = Reader(ReaderNet(ReaderConfig(size=32)))
    steps: list[str] = []
    result = run_probe(tiny_model, TINY_PROBE, reader=reader, on_step=steps.append)
    folder = tmp_path_factory.mktemp("tiny-probe")
    write_report(result, folder, keep_images=False)
    return folder, len(steps)


def test_whole_probe_on_a_tiny_model(tiny_model: Path, tiny_probe: tuple[Path, int]) -> None:
    tmp_path, steps = tiny_probe
    assert steps == total_units(TINY_PROBE)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores["targets"]) == set(TARGET_SPECS)
    for key, entry in scores["targets"].items():
        assert {"name", "value", "threshold", "n", "met"} <= set(entry), key
        assert isinstance(entry["met"], bool)
    assert scores["figure3_inpainting"][0]["model"]["count_truth"] >= 0
    assert scores["figure4_outpainting"][0]["canvas_px"] == [48, 32]  # hand: up and down
    assert scores["figure4_outpainting"][1]["canvas_px"] == [32, 48]  # chest: sideways
    reference = scores["targets"]["fibula_present"]["details"]["phantom_reference"]
    assert reference["n"] == 4  # a phantom per knee prompt: Figure 1, AP, lateral, tumour
    assert len(scores["images"]) == 54  # 8 + 6 + 8 + 5 prompts, two images each
    # The sampler as run: the config's one step, the model's own guidance and cutoff.
    pipe = TextToImagePipeline.from_pretrained(tiny_model)
    assert scores["sampler"] == {
        "scheduler": type(pipe.scheduler).__name__,
        "num_inference_steps": 1,
        "guidance_scale": float(pipe.default("guidance_scale", None)),
        "guidance_cutoff": pipe.guidance_cutoff,
    }
    report = (tmp_path / "report.html").read_text()
    assert f"{type(pipe.scheduler).__name__}, 1 step, guidance" in report
    diversity = scores["diversity"]
    assert diversity["prompts_compared"] == len(diversity["per_prompt"]) == 27
    assert diversity["model"]["pairs"] == diversity["phantoms"]["pairs"] == 27  # one pair each
    assert all(0 <= r["phantom_ms_ssim"] <= 1 for r in diversity["per_prompt"])
    assert 0 < diversity["phantoms"]["mean_ms_ssim"] < 1  # drawn phantoms differ, not copies
    effect = scores["finding_effect"]
    assert [r["title"] for r in effect["per_prompt"]] == [t for t, _ in PATHOLOGY_PROMPTS]
    assert all(r["n"] == 2 and "with" not in r["twin"] for r in effect["per_prompt"])
    assert sum(r["place_share"] > 0 for r in effect["per_prompt"]) >= 3
    assert effect["mean_change_outside"] > 0  # a random tiny model: the words move pixels
    # The chest prompts name a side (right lower lobe, left hemithorax): the other side's place
    # is drawn on the other half of the image; the limb and head prompts are not checked.
    sided = {r["title"]: r for r in effect["per_prompt"] if r["other_side_share"] is not None}
    assert set(sided) == {"consolidation", "effusion"} and effect["sided"]["prompts"] == 2
    assert all(r["other_side_share"] > 0 and r["asked_to_other_side"] > 0 for r in sided.values())
    assert (tmp_path / "finding_effect.png").is_file()
    page = (tmp_path / "report.html").read_text()
    assert "Finding effect" in page and "finding_effect.png" in page
    assert "Diversity" in page and any("MS-SSIM" in note for note in scores["notes"])
    assert "Targets" in page and "figure1.png" in page and (tmp_path / "figure3.png").is_file()
    assert "not met" in page or "met" in page


def test_prompt_diversity_tells_copies_from_varied_images() -> None:
    rng = np.random.default_rng(0)
    base = rng.random((64, 64)).astype(np.float32)

    def images(prompt: str, stack: list[np.ndarray]) -> list[GeneratedImage]:
        return [GeneratedImage("g", prompt, prompt, i, im, {}) for i, im in enumerate(stack)]

    copies = images("a", [base, base.copy(), base.copy()])
    varied = images("a", [rng.random((64, 64)).astype(np.float32) for _ in range(3)])
    result = prompt_diversity(copies, varied)
    row = result["per_prompt"][0]
    assert row["n"] == 3 and row["model_ms_ssim"] == pytest.approx(1.0)
    assert row["phantom_ms_ssim"] < 0.5
    assert result["model"]["pairs"] == 3 and result["model"]["diversity"] == pytest.approx(0)
    assert result["prompts_more_alike_than_phantoms"] == 1
    # The other way round, and a prompt the phantoms lack is listed but not compared.
    swapped = prompt_diversity(varied + images("b", [base, base]), copies)
    assert swapped["prompts_more_alike_than_phantoms"] == 0
    assert swapped["prompts_compared"] == 1 and len(swapped["per_prompt"]) == 2


def test_finding_effect_measures_change_inside_and_outside_the_place() -> None:
    rng = np.random.default_rng(0)
    plain = rng.random((3, 16, 16))
    place = np.zeros((16, 16), dtype=bool)
    place[4:8, 4:12] = True
    shown = plain + 0.05 + 0.2 * place  # brighter everywhere, much brighter in the place
    row = finding_effect_row("effusion", "p", "twin", shown, plain, place)
    assert row["n"] == 3 and row["place_share"] == pytest.approx(32 / 256)
    assert row["mean_change_inside"] == pytest.approx(0.25)
    assert row["mean_change_outside"] == pytest.approx(0.05)
    assert row["inside_to_outside"] == pytest.approx(5.0)
    assert row["signed_change_inside"] == pytest.approx(0.25)
    # Words the model ignores: the same images, no change anywhere, no ratio.
    same = finding_effect_row("x", "p", "twin", plain, plain, place)
    assert same["mean_change_inside"] == 0.0 and same["inside_to_outside"] is None
    pooled = summarise_finding_effect([row, same], places=2)
    assert pooled["mean_change_inside"] == pytest.approx(0.125)
    assert pooled["inside_to_outside"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="do not match"):
        finding_effect_row("x", "p", "t", shown[:, :8], plain, place)
    assert row["asked_to_other_side"] is None and pooled["sided"]["prompts"] == 0


def test_the_side_check_tells_the_side_asked_from_the_other() -> None:
    rng = np.random.default_rng(1)
    plain = rng.random((2, 16, 16))
    left, right = np.zeros((16, 16), dtype=bool), np.zeros((16, 16), dtype=bool)
    left[4:12, 1:6], right[4:12, 10:15] = True, True
    # The finding drawn on the side asked (0.3), a little on the other (0.1), nothing else.
    shown = plain + 0.3 * left + 0.1 * right
    row = finding_effect_row("effusion", "p", "twin", shown, plain, left, other_place=right)
    assert row["mean_change_other_side"] == pytest.approx(0.1)
    assert row["asked_to_other_side"] == pytest.approx(3.0)
    assert row["other_side_share"] == pytest.approx(40 / 256)
    # The wrong side: the ratio falls below 1. Overlap with the place asked is not counted.
    wrong = finding_effect_row("x", "p", "t", plain + 0.3 * right, plain, left, left | right)
    assert wrong["asked_to_other_side"] == pytest.approx(0.0)
    assert wrong["other_side_share"] == pytest.approx(40 / 256)
    unsided = finding_effect_row("y", "p", "t", shown, plain, left)
    pooled = summarise_finding_effect([row, wrong, unsided], places=1)
    assert pooled["sided"]["prompts"] == 2
    assert pooled["sided"]["asked_to_other_side"] == pytest.approx(0.15 / 0.2)
    with pytest.raises(ValueError, match="differ"):
        finding_effect_row("x", "p", "t", shown, plain, left, right[:8])


def test_the_place_panel_shows_the_side_asked_bright_and_the_other_dim() -> None:
    plain = np.full((16, 16), 0.4, dtype=np.float32)
    left, right = np.zeros((16, 16), dtype=bool), np.zeros((16, 16), dtype=bool)
    left[4:12, 1:6], right[4:12, 4:15] = True, True  # overlapping in columns 4-5
    panel = place_panel(plain, left, right)
    assert panel.shape == (16, 16) and panel.dtype == np.float32
    assert panel[5, 2] == pytest.approx(0.7)  # the place asked: 0.5 x 0.4 + 0.5
    assert panel[5, 4] == pytest.approx(0.7)  # overlap counts as the place asked
    assert panel[5, 10] == pytest.approx(0.45)  # the other side only: 0.2 + 0.25
    assert panel[0, 0] == pytest.approx(0.2)  # neither
    unsided = place_panel(plain, left)
    assert unsided[5, 10] == pytest.approx(0.2) and unsided[5, 2] == pytest.approx(0.7)
    assert place_panel(np.ones((16, 16)), left, right).max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ"):
        place_panel(plain, left, right[:8])
    with pytest.raises(ValueError, match="differ"):
        place_panel(plain[:8], left)


def test_other_side_moves_a_sided_finding_and_leaves_limbs_alone() -> None:
    def sites(prompt: str) -> list[str] | None:
        moved = other_side(parse_prompt(prompt))
        return None if moved is None else [f.site or "" for f in moved.findings]

    assert sites("PA chest radiograph with a left pleural effusion") == ["right_hemithorax"]
    assert sites("PA chest radiograph with consolidation of the right lower lobe") == [
        "left_lower_lobe"
    ]
    # No left middle lobe: the finding moves to the left lung.
    assert sites("PA chest radiograph with consolidation of the right middle lobe") == ["left_lung"]
    # The side of a limb is the image's laterality, not a side inside the image.
    assert sites("AP radiograph of the left wrist with a fracture of the distal radius") is None
    assert sites("Axial CT of the head with intracranial haemorrhage") is None
    moved = other_side(parse_prompt("Axial CT of the head with a right intracranial haemorrhage"))
    assert moved is not None and moved.modality == "ct" and moved.region == "head"
    assert [f.site for f in moved.findings] == ["left_hemisphere"]
    # A limb finding with its own side on a midline region moves to the other limb.
    moved = other_side(parse_prompt("PA chest radiograph with a fracture of the left clavicle"))
    assert moved is not None
    assert [(f.site, f.side) for f in moved.findings] == [("clavicle", "right")]


def test_probe_without_a_reader_reports_not_measured(tiny_model: Path) -> None:
    config = ProbeConfig(
        n=1,
        steps=1,
        inpaint_cases=1,
        full_body_cases=0,
        memorization_train=0,
        figure3_regions=("knee",),
        figure4_regions=("hand",),
        guidance_cutoff=0.5,
    )
    # A cutoff given to the probe reaches every pipeline it samples with, and is recorded.
    probe = _Probe(tiny_model, config, None, None)
    assert {p.guidance_cutoff for p in (probe.t2i, probe.inpaint, probe.outpaint)} == {0.5}
    result = run_probe(tiny_model, config, reader=None)
    assert result.sampler["guidance_cutoff"] == 0.5
    assert result.scores()["sampler"]["num_inference_steps"] == 1
    with pytest.raises(ValueError, match="guidance_cutoff"):
        ProbeConfig(guidance_cutoff=1.5)
    by_key = {t.key: t for t in result.targets}
    assert by_key["fibula_present"].value is None and not by_key["fibula_present"].met
    assert "no reader" in by_key["modality_as_asked"].note
    assert by_key["inpaint_structure_count"].n == 1  # bright-blob counts stand in
    assert any("No reader" in note for note in result.notes)


def test_probe_command_errors(tiny_model: Path, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["probe", "--model", str(tmp_path / "nope"), "--out", "o"])
    assert missing.exit_code != 0 and "no model folder" in missing.output
    bad = runner.invoke(app, ["probe", "--model", str(tiny_model), "--out", "o", "--n", "0"])
    assert bad.exit_code != 0 and "--n must be at least 1" in bad.output
    no_reader = runner.invoke(
        app, ["probe", "--model", str(tiny_model), "--out", "o", "--reader", str(tmp_path)]
    )
    assert no_reader.exit_code != 0 and "no reader in" in no_reader.output
    cutoff = runner.invoke(
        app, ["probe", "--model", str(tiny_model), "--out", "o", "--guidance-cutoff", "2"]
    )
    assert cutoff.exit_code != 0 and "--guidance-cutoff" in cutoff.output


class _ThresholdReader:
    """A stand-in reader: 'femur' is every pixel above 0.5, at a 16 px native size."""

    def structures(self, images: np.ndarray) -> list[StructureMap]:
        from radsynth.probe.scoring import resize_image

        maps = []
        for image in np.asarray(images):
            small = resize_image(image, (16, 16)) > 0.5
            maps.append(StructureMap({"femur": small, "tibia": small}, {}))
        return maps


def test_reading_a_tall_image_in_windows_keeps_its_proportions() -> None:
    image = np.zeros((96, 32), np.float32)
    image[8:88, 12:20] = 1.0  # an 80 px bone
    smap = read_in_windows(_ThresholdReader(), image)
    assert smap.masks["femur"].shape == (96, 32)
    assert abs(bone_length(smap.masks["femur"]) - 80) <= 2


@pytest.mark.skipif(
    not (WEIGHTS_DIR / "reader.safetensors").is_file(), reason="no shipped reader weights"
)
def test_reading_a_whole_body_in_knee_fields_measures_the_answer_key_closer() -> None:
    # The probe's first knee-to-body case: the true projection of the whole body, 1088 x 256.
    reader = load_reader()
    seed, sex = full_body_case(0)
    plane = regional_plane(seed, "knee", "ap", "left", sex=sex, size=128)
    _, truth, _ = plane.full_body(256, 256)
    image = truth.image.astype(np.float32)
    true_ratio = femur_tibia(truth_structure_map(truth.masks))["ratio"]
    logits = reader.segmentation_logits(image[:128, :128])
    assert logits.shape == (1, len(reader.config.groups), reader.config.size, reader.config.size)
    fields = read_in_windows_averaged(reader, image, 128)
    assert fields.masks["femur"].shape == image.shape
    whole = femur_tibia(reader.structures(pad_to_square(image)[0])[0])
    windowed = femur_tibia(fields)
    # Both legs' long bones are found at full size (the truth: femur 254 px, tibia 244 px),
    # and the ratio is closer to the truth than from the whole image squeezed into one field.
    assert windowed["femur_px"] > 150 and windowed["tibia_px"] > 150
    assert abs(windowed["ratio"] / true_ratio - 1) < 0.15 < abs(whole["ratio"] / true_ratio - 1)


def test_scores_name_the_shipped_model_the_same_on_every_machine(tmp_path: Path) -> None:
    from radsynth.paths import BUILTIN_MODEL
    from radsynth.probe.protocol import shipped_name

    name = shipped_name(BUILTIN_MODEL, BUILTIN_MODEL, "radsynth's built-in model")
    assert name.startswith("radsynth's built-in model (weights sha256 ")
    assert str(BUILTIN_MODEL.parent) not in name  # no machine-specific path
    # A relative spelling of the same folder is the same model.
    relative = Path("src/radsynth/models/builtin")
    if relative.resolve() == BUILTIN_MODEL.resolve():
        assert shipped_name(relative, BUILTIN_MODEL, "radsynth's built-in model") == name
    # A user's folder keeps the path as given; other weights give another digest.
    assert shipped_name(tmp_path / "mine", BUILTIN_MODEL, "x") == str(tmp_path / "mine")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.safetensors").write_bytes(b"1")
    first = shipped_name(tmp_path / "a", tmp_path / "a", "m")
    (tmp_path / "a" / "w.safetensors").write_bytes(b"2")
    assert shipped_name(tmp_path / "a", tmp_path / "a", "m") != first


def test_a_hand_without_digits_read_is_not_counted_free_of_extra_digits() -> None:
    # A 4-step noise model met "no extra digits" (1.0) while no hand was drawn at all.
    import numpy as np

    from radsynth.probe.protocol import GeneratedImage
    from radsynth.probe.scorecard import image_targets

    def hand(metacarpals: int, phalanges: int, extra: list[str]) -> GeneratedImage:
        checks = {
            "metacarpals_count": {"value": metacarpals, "passed": metacarpals == 5},
            "phalanges_count": {"value": phalanges, "passed": phalanges == 14},
            "extra_bones": {"value": extra, "passed": not extra},
        }
        return GeneratedImage(
            "anatomy", "hand", "PA radiograph of the left hand", 0, np.zeros((8, 8)),
            {"region": "hand"}, None, checks,
        )  # fmt: skip

    images = [hand(5, 14, []), hand(6, 14, ["metacarpals"]), hand(0, 0, []), hand(5, 0, [])]
    targets, _, _ = image_targets(images, has_reader=False, no_reader="")
    digits = next(t for t in targets if t.key == "no_extra_digits")
    assert (digits.n, digits.value) == (2, 0.5)  # the two hands whose digits were read


DOCS_PROBE = Path(__file__).resolve().parents[2] / "docs" / "probe"


def check_probe_page(page: RenderedPage, scores: dict[str, Any], folder: Path) -> None:
    """Every figure shown, nothing fetched from outside the folder, and the targets table says
    what scores.json says, target by target."""
    assert page.title == "radsynth probe"
    assert page.images and not page.broken_images, page.broken_images
    assert not page.outside_requests and not page.console_errors, page.console_errors
    assert not page.blank
    shown = {Path(i["src"]).name for i in page.images}
    assert shown <= {p.name for p in folder.glob("*.png")}
    assert {"figure1.png", "figure3.png", "figure4.png"} <= shown
    table = page.tables[0]
    assert table[0][:5] == ["target", "measured", "threshold", "n", "status"]
    targets = list(scores["targets"].values())
    assert [row[0] for row in table[1:]] == [t["name"] for t in targets]
    for row, t in zip(table[1:], targets, strict=True):
        measured = t["value"] is not None and t["n"] > 0 and t["value"] == t["value"]  # not NaN
        assert row[4] == ("met" if t["met"] else "not met" if measured else "not measured"), row
        assert row[3] == str(t["n"]), row
        if measured:  # the value as scores.json has it, to the page's 3 significant digits
            assert float(row[1].split()[0]) == pytest.approx(t["value"], rel=5e-3, abs=5e-4), row
    met = sum(t["met"] for t in targets)
    assert met == scores["targets_met"]
    assert f"Targets met: {met} of {len(targets)}" in page.text


def test_shipped_probe_report(browser: Browser) -> None:
    scores = json.loads((DOCS_PROBE / "scores.json").read_text())
    page = browser.open(DOCS_PROBE / "report.html")
    check_probe_page(page, scores, DOCS_PROBE)
    assert "knee_to_full_body.png" in {Path(i["src"]).name for i in page.images}


def test_probe_report_in_a_browser(browser: Browser, tiny_probe: tuple[Path, int]) -> None:
    """The tiny model's report, written now: each figure is the PNG beside the page."""
    folder, _ = tiny_probe
    scores = json.loads((folder / "scores.json").read_text())
    page = browser.open(folder / "report.html")
    check_probe_page(page, scores, folder)
    assert {"knee_to_full_body.png", "finding_effect.png"} <= {i["src"] for i in page.images}
    assert not (folder / "images").exists()  # keep_images=False: the grids only
    assert page.overflow_px <= 0  # long lines (the timings) wrap: no sideways scrolling
    # Each target says what it counts and on which images (the report gave names only).
    assert page.tables[0][0][-1] == "what it counts"
    assert [row[-1] for row in page.tables[0][1:]] == [
        TARGET_MEASURES[key] for key in scores["targets"]
    ]
