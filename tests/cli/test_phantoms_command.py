"""`radsynth phantoms` on the command line: files, manifest, resume, refusal, contact sheet."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.io.manifest import read_manifest
from radsynth.io.masks import load_masks
from radsynth.io.reader import read_image

runner = CliRunner()


def test_writes_images_masks_and_manifest(tmp_path):
    out = tmp_path / "cases"
    result = runner.invoke(
        app, ["phantoms", "--out", str(out), "--n", "3", "--size", "48", "--seed", "7"]
    )
    assert result.exit_code == 0, result.output
    records = read_manifest(out)
    assert [r["id"] for r in records] == ["case_000000", "case_000001", "case_000002"]
    for record in records:
        image16 = np.asarray(Image.open(out / record["image"]))
        assert image16.shape == (48, 48) and image16.dtype in (np.uint16, np.int32)
        masks = load_masks(out / record["masks"])
        assert masks and all(m.shape == (48, 48) for m in masks.values())
        assert record["labels"]["modality"] in ("xray", "ct", "mri", "us")
        assert record["seed"] == 7 + records.index(record)
        # The spacing travels with the PNG: read_image (ingest, inpaint, outpaint) finds it.
        spacing = read_image(out / record["image"]).pixel_spacing_mm
        assert spacing == pytest.approx(record["pixel_spacing_mm"], rel=1e-5)  # 6 digits


def test_refuses_a_non_empty_folder_and_resumes(tmp_path):
    out = tmp_path / "cases"
    assert (
        runner.invoke(app, ["phantoms", "--out", str(out), "--n", "2", "--size", "32"]).exit_code
        == 0
    )
    refused = runner.invoke(app, ["phantoms", "--out", str(out), "--n", "3", "--size", "32"])
    assert refused.exit_code != 0 and "--resume" in refused.output
    # Simulate a run killed while writing the third record: a cut-short last line.
    manifest = out / "manifest.jsonl"
    first_two = manifest.read_text()
    manifest.write_text(first_two + '{"id": "case_0000')
    resumed = runner.invoke(
        app, ["phantoms", "--out", str(out), "--n", "4", "--size", "32", "--resume"]
    )
    assert resumed.exit_code == 0, resumed.output
    ids = [r["id"] for r in read_manifest(out)]
    assert ids == [f"case_{i:06d}" for i in range(4)]
    # Resumed cases equal what a single uninterrupted run writes.
    fresh = tmp_path / "fresh"
    runner.invoke(app, ["phantoms", "--out", str(fresh), "--n", "4", "--size", "32"])
    for i in range(4):
        a = np.asarray(Image.open(out / f"images/case_{i:06d}.png"))
        b = np.asarray(Image.open(fresh / f"images/case_{i:06d}.png"))
        np.testing.assert_array_equal(a, b)
    assert json.loads(manifest.read_text().splitlines()[2])["id"] == "case_000002"


def test_bad_options_give_clear_errors(tmp_path):
    result = runner.invoke(app, ["phantoms", "--out", str(tmp_path / "x"), "--modality", "pet"])
    assert result.exit_code != 0 and "modality" in result.output
    assert "--out" in runner.invoke(app, ["phantoms"]).output


def test_python_m_radsynth_help():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "radsynth", "--help"], capture_output=True, text=True, check=True
    )
    assert "phantoms" in done.stdout


def test_cases_of_one_body_share_a_subject_id(tmp_path):
    out = tmp_path / "cases"
    result = _phantoms(out, "--n", "5", "--size", "32", "--images-per-subject", "2")
    assert result.exit_code == 0, result.output
    records = read_manifest(out)
    assert [r["subject_id"] for r in records] == [
        "subject_000000", "subject_000000", "subject_000001", "subject_000001", "subject_000002",
    ]  # fmt: skip
    assert records[0]["subject"] == records[1]["subject"] != records[2]["subject"]


def test_two_workers_write_the_same_cases_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["phantoms", "--n", "4", "--size", "32", "--seed", "3", "--modality", "xray"]
    assert runner.invoke(app, [*args, "--out", str(one)]).exit_code == 0
    result = runner.invoke(app, [*args, "--out", str(two), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert read_manifest(one) == read_manifest(two)
    for i in range(4):
        a = np.asarray(Image.open(one / f"images/case_{i:06d}.png"))
        b = np.asarray(Image.open(two / f"images/case_{i:06d}.png"))
        np.testing.assert_array_equal(a, b)


def test_writes_the_contact_sheet(tmp_path):
    from radsynth.phantoms.contact_sheet import sheet_tiles

    path = tmp_path / "figures" / "sheet.png"
    result = runner.invoke(app, ["phantoms", "--contact-sheet", str(path)])
    assert result.exit_code == 0, result.output
    assert f"wrote {path}" in result.output
    both = runner.invoke(
        app, ["phantoms", "--contact-sheet", str(path), "--out", str(tmp_path / "cases")]
    )
    assert both.exit_code == 2 and "without --out" in _flat(both.output)
    rows = -(-len(sheet_tiles()) // 9)  # 9 tiles of 192 px a row, a 17 px label under each
    with Image.open(path) as sheet:
        assert sheet.mode == "L" and sheet.size == (9 * 192, rows * (192 + 17))


def test_a_prompt_fixes_what_it_asks_for(tmp_path):
    out = tmp_path / "effusions"
    prompt = "PA chest radiograph of a 70 year old woman with bilateral pleural effusions"
    args = ["phantoms", "--out", str(out), "--n", "2", "--size", "48", "--prompt", prompt]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for record in read_manifest(out):
        labels = record["labels"]
        assert (labels["modality"], labels["region"], labels["view"]) == ("xray", "chest", "pa")
        assert (labels["sex"], labels["age"]) == ("female", 70)
        assert [f["site"] for f in labels["findings"]] == ["left_hemithorax", "right_hemithorax"]
        masks = load_masks(out / record["masks"])
        assert {"finding_pleural_effusion", "finding_pleural_effusion_2"} <= set(masks)
    # An option fills what the prompt leaves open and must not contradict it.
    knees = tmp_path / "knees"
    args = ["phantoms", "--out", str(knees), "--n", "2", "--size", "32"]
    assert runner.invoke(app, [*args, "--prompt", "knee X-ray", "--view", "lateral"]).exit_code == 0
    assert {r["labels"]["view"] for r in read_manifest(knees)} == {"lateral"}
    assert all(r["labels"]["findings"] == [] for r in read_manifest(knees))
    clash = runner.invoke(app, [*args, "--prompt", "knee X-ray", "--region", "chest"])
    assert clash.exit_code == 2 and "disagrees with the prompt's region 'knee'" in clash.output
    typo = runner.invoke(app, [*args, "--prompt", "X-ray of the knea"])
    assert typo.exit_code == 2 and "did you mean 'knee'" in typo.output
    assert typo.output.rstrip().endswith("(radsynth vocabulary lists what a prompt can ask for)")
    nowhere = runner.invoke(app, [*args, "--prompt", "X-ray with a femoral fracture"])
    assert nowhere.exit_code == 2 and "names no region" in nowhere.output


def test_the_folder_gets_a_preview_with_findings_outlined(tmp_path):
    from radsynth.cli.phantoms_command import PREVIEW_COLUMNS, PREVIEW_TILE

    out = tmp_path / "chests"
    prompt = "PA chest radiograph with a left pleural effusion"
    args = ["phantoms", "--out", str(out), "--n", "3", "--size", "64", "--prompt", prompt]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "preview.png" in result.output
    with Image.open(out / "preview.png") as preview:
        assert preview.mode == "RGB"
        rows = -(-3 // PREVIEW_COLUMNS)
        width = min(3, PREVIEW_COLUMNS) * PREVIEW_TILE
        assert preview.size == (width, rows * (PREVIEW_TILE + max(14, PREVIEW_TILE // 11)))
        pixels = np.asarray(preview).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 100) & (pixels[..., 2] < 100)
    # Each tile outlines its effusion, on the image's right (the patient's left on a PA view).
    for k in range(3):
        row, column = divmod(k, PREVIEW_COLUMNS)
        top = row * (PREVIEW_TILE + max(14, PREVIEW_TILE // 11))
        tile = red[top : top + PREVIEW_TILE, column * PREVIEW_TILE : (column + 1) * PREVIEW_TILE]
        assert tile.any() and np.nonzero(tile)[1].mean() > PREVIEW_TILE / 2


def _phantoms(out, *options):
    return runner.invoke(app, ["phantoms", "--out", str(out), *options])


def _flat(output: str) -> str:
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())  # the error box wraps lines


def test_resume_refuses_other_options_and_overwrite_replaces_every_case(tmp_path):
    out = tmp_path / "cases"
    assert (
        _phantoms(out, "--n", "4", "--size", "32", "--prompt", "PA chest radiograph").exit_code == 0
    )
    other = _phantoms(
        out,
        "--n",
        "6",
        "--size",
        "32",
        "--seed",
        "9",
        "--prompt",
        "lateral left knee X-ray",
        "--resume",
    )
    assert other.exit_code != 0
    said = _flat(other.output)
    assert "seed 0 (now 9)" in said and "'PA XR chest' (now 'Lat XR L knee')" in said
    assert len(read_manifest(out)) == 4  # nothing added
    same = _phantoms(out, "--n", "6", "--size", "32", "--prompt", "PA chest radiograph", "--resume")
    assert same.exit_code == 0, same.output
    assert len(read_manifest(out)) == 6
    # --overwrite replaces the cases: no file of the six is left beside the two new ones.
    (out / "notes.txt").write_text("kept")
    again = _phantoms(out, "--n", "2", "--size", "32", "--region", "knee", "--overwrite")
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "case_000000.png",
        "case_000001.png",
    ]
    assert len(list((out / "masks").iterdir())) == 2
    assert [r["labels"]["region"] for r in read_manifest(out)] == ["knee", "knee"]
    assert (out / "notes.txt").read_text() == "kept"


def test_a_folder_of_another_kind_is_not_resumed_or_overwritten(tmp_path):
    out = tmp_path / "archive"
    out.mkdir()
    record = {"id": "a1", "image": "images/a1.png", "caption": "PA chest radiograph"}
    (out / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    for flag in ("--resume", "--overwrite"):
        refused = _phantoms(out, "--n", "2", "--size", "32", flag)
        said = _flat(refused.output)
        assert refused.exit_code != 0 and "not a folder of `radsynth phantoms`" in said
    assert (out / "manifest.jsonl").read_text() == json.dumps(record) + "\n"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl"]


def test_a_mistake_leaves_no_folder_and_a_file_is_not_a_folder(tmp_path):
    out = tmp_path / "cases"
    for options in (["--size", "20"], ["--modality", "XRAY"], ["--seed", "-1"]):
        result = _phantoms(out, "--n", "2", *options)
        assert result.exit_code != 0
        assert not out.exists()
    assert _phantoms(out, "--n", "1", "--size", "32").exit_code == 0  # the corrected run
    a_file = tmp_path / "file"
    a_file.write_text("")
    result = _phantoms(a_file, "--n", "1")
    assert result.exit_code != 0 and "is a file" in _flat(result.output)


def test_a_users_own_images_folder_is_not_overwritten_and_old_folders_check_their_cases(
    tmp_path,
):
    mine = tmp_path / "mine"
    (mine / "images").mkdir(parents=True)
    (mine / "images" / "my_xray.png").write_bytes(b"a user's file")
    refused = _phantoms(mine, "--n", "1", "--size", "32", "--overwrite")
    assert refused.exit_code == 2 and "(it holds images/)" in _flat(refused.output)
    assert (mine / "images" / "my_xray.png").read_bytes() == b"a user's file"
    # A folder of a radsynth without phantoms.json: its cases' labels and size are checked.
    old = tmp_path / "old"
    first = _phantoms(old, "--n", "2", "--size", "32", "--region", "knee", "--modality", "xray")
    assert first.exit_code == 0, first.output
    (old / "phantoms.json").unlink()
    for options, said in (
        (["--size", "32", "--region", "chest", "--modality", "xray"], "is a region 'knee'"),
        (["--size", "48", "--region", "knee", "--modality", "xray"], "is 32 px, not --size 48"),
    ):
        other = _phantoms(old, "--n", "4", *options, "--resume")
        assert other.exit_code == 2 and said in _flat(other.output), other.output
    same = _phantoms(old, "--n", "3", "--size", "32", "--region", "knee", "--modality", "xray",
                     "--resume")  # fmt: skip
    assert same.exit_code == 0, same.output
    assert len(read_manifest(old)) == 3


def test_ctrl_c_is_told_apart_from_other_system_errors():
    from radsynth.cli.checks import was_interrupted

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemError("returned a result with an exception set")  # noqa: B904 (as numba does)
    except SystemError as error:
        inside_kernel = error
    assert was_interrupted(KeyboardInterrupt()) and was_interrupted(inside_kernel)
    assert not was_interrupted(SystemError("another")) and not was_interrupted(ValueError())


def test_a_fetal_ultrasound_shares_a_subject_id_only_with_its_own_body():
    # A fetal ultrasound in a group whose shared subject is a man (or past the fetal cases'
    # ages) images another woman; it kept the group's subject_id, mixing two people (14 of 100
    # four-image subjects). A woman who can carry is imaged as herself.
    from radsynth.phantoms.cases import make_case, shared_subject

    man, woman = 0, 11  # subject seeds: an 82-year-old man, a 32-year-old woman
    assert shared_subject(man).sex == "male" and shared_subject(woman).age == 32
    for subject_seed, same in ((man, False), (woman, True)):
        fetal = make_case(5, modality="us", region="fetus", size=32, subject_seed=subject_seed)
        knee = make_case(6, modality="xray", region="knee", size=32, subject_seed=subject_seed)
        assert (fetal.subject == knee.subject) is same
        assert knee.subject == shared_subject(subject_seed)


def test_subject_ids_follow_the_person_imaged(tmp_path, monkeypatch):
    import radsynth.cli.phantoms_command as command
    from radsynth.phantoms.cases import shared_subject

    record = {"id": "case_000009", "subject": {"sex": "female", "age": 30}}
    monkeypatch.setattr(command, "subject_seed_for", lambda seed, index, per: 0)
    assert shared_subject(0).sex == "male"
    assert command._subject_id(record, 9, 0, 4) == "subject_000002_case_000009"
    same = {"id": "case_000008", "subject": {"sex": "male", "age": shared_subject(0).age}}
    assert command._subject_id(same, 8, 0, 4) == "subject_000002"
