"""The diffusion commands on a tiny random model saved to a temporary folder."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.datasets import weights_sha256
from radsynth.io import read_image, read_provenance
from radsynth.io.png import read_png_text, write_png
from radsynth.io.provenance import Provenance
from radsynth.models import build_components
from radsynth.pipelines import TextToImagePipeline

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_components("tiny", seed=0).save_pretrained(tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture()
def knee(tmp_path: Path) -> Path:
    y, x = np.mgrid[0:32, 0:32]
    pixels = (40 + 150 * ((x - 16) ** 2 < 36) + y).astype(np.uint8)
    return write_png(tmp_path / "knee.png", pixels)


def gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_generate_writes_seeded_images_and_a_grid(model_dir: Path, tmp_path: Path) -> None:
    args = ["generate", "PA chest radiograph", "-n", "2", "--seed", "5", "--steps", "2"]
    result = runner.invoke(app, [*args, "--model", str(model_dir), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    first, second = tmp_path / "o" / "generated-seed5.png", tmp_path / "o" / "generated-seed6.png"
    assert gray(first).shape == (32, 32) and (tmp_path / "o" / "generated-grid.png").is_file()
    text = read_png_text(first)
    assert text["Synthetic"] == "YES" and text["Seed"] == "5"
    assert text["Prompt"] == "PA chest radiograph" and text["Model"] == str(model_dir)
    assert not np.array_equal(gray(first), gray(second))
    again = runner.invoke(
        app,
        [
            "generate",
            "PA chest radiograph",
            "-n",
            "1",
            "--seed",
            "5",
            "--steps",
            "2",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "again"),
        ],
    )
    assert again.exit_code == 0
    assert np.array_equal(gray(first), gray(tmp_path / "again" / "generated-seed5.png"))


def test_guidance_cutoff_option_is_applied_and_recorded(model_dir: Path, tmp_path: Path) -> None:
    def generate(out: str, *cutoff: str) -> Result:
        args = ["generate", "PA chest radiograph", "-n", "1", "--seed", "3", "--steps", "3"]
        args += ["--guidance", "4", *cutoff, "--model", str(model_dir)]
        return runner.invoke(app, [*args, "--out", str(tmp_path / out)])

    assert generate("late", "--guidance-cutoff", "0.7").exit_code == 0
    assert generate("every", "--guidance-cutoff", "0").exit_code == 0
    assert generate("default").exit_code == 0
    late, every, default = (
        tmp_path / name / "generated-seed3.png" for name in ("late", "every", "default")
    )
    assert read_png_text(late)["guidance_cutoff"] == "0.7"
    assert Provenance.from_png_text(read_png_text(late)).guidance_cutoff == 0.7
    assert "guidance 4 at t >= 0.7 T" in read_png_text(late)["Comment"]
    # The tiny model guides every step by default; its record says so.
    assert read_png_text(default)["guidance_cutoff"] == "0.0"
    assert np.array_equal(gray(default), gray(every))
    assert not np.array_equal(gray(late), gray(every))
    # The command's image is the Python API's with the same cutoff, steps, guidance and seed.
    pipe = TextToImagePipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    pipe.guidance_cutoff = 0.7
    api = pipe(
        "PA chest radiograph",
        generator=torch.Generator().manual_seed(3),
        num_inference_steps=3,
        guidance_scale=4.0,
        output_type="np",
    ).images[0]
    assert np.array_equal(gray(late), np.round(api * 255).astype(np.uint8))
    bad = generate("bad", "--guidance-cutoff", "1.5")
    assert bad.exit_code != 0 and "--guidance-cutoff" in bad.output
    assert not (tmp_path / "bad").exists()


def test_inpaint_box_keeps_the_rest(model_dir: Path, knee: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "inpaint",
            str(knee),
            "--prompt",
            "knee",
            "--box",
            "4,8,20,24",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    out, original = gray(tmp_path / "o" / "inpainted-seed0.png"), gray(knee)
    keep = np.ones_like(original, dtype=bool)
    keep[8:24, 4:20] = False
    assert np.array_equal(out[keep], original[keep])


def test_outpaint_with_a_layout_pass(model_dir: Path, knee: Path, tmp_path: Path) -> None:
    command = ["outpaint", str(knee), "--prompt", "AP radiograph of a woman", "--top", "64"]
    command += ["--layout-prompt", "AP radiograph of the whole body", "--model", str(model_dir)]
    result = runner.invoke(app, [*command, "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    extended = gray(tmp_path / "o" / "outpainted-seed0.png")
    assert extended.shape == (96, 32) and np.array_equal(extended[64:], gray(knee))
    bad = runner.invoke(app, [*command, "--layout-strength", "1.5", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "layout_strength must be in (0, 1]" in bad.output


def test_outpaint_and_edit(model_dir: Path, knee: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "outpaint",
            str(knee),
            "--prompt",
            "knee",
            "--right",
            "16",
            "--top",
            "8",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    extended = gray(tmp_path / "o" / "outpainted-seed0.png")
    assert extended.shape == (40, 48) and np.array_equal(extended[8:, :32], gray(knee))
    mask = write_png(tmp_path / "mask.png", np.pad(np.full((8, 8), 255, np.uint8), 12))
    result = runner.invoke(
        app,
        [
            "edit",
            str(knee),
            "--prompt",
            "fracture",
            "--mask",
            str(mask),
            "--strength",
            "0.5",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "e"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert gray(tmp_path / "e" / "edited-seed0.png").shape == (32, 32)


def test_bad_options_say_what_to_do(model_dir: Path, knee: Path, tmp_path: Path) -> None:
    both = runner.invoke(
        app,
        [
            "inpaint",
            str(knee),
            "--prompt",
            "knee",
            "--out",
            str(tmp_path),
            "--model",
            str(model_dir),
        ],
    )
    assert both.exit_code != 0 and "exactly one of --mask" in both.output
    outside = runner.invoke(
        app,
        [
            "inpaint",
            str(knee),
            "--prompt",
            "knee",
            "--box",
            "0,0,99,4",
            "--out",
            str(tmp_path),
            "--model",
            str(model_dir),
        ],
    )
    assert outside.exit_code != 0 and "not inside" in outside.output
    missing = runner.invoke(
        app, ["generate", "knee", "--model", str(tmp_path / "none"), "--out", str(tmp_path)]
    )
    assert missing.exit_code != 0 and "no model folder" in missing.output
    typo = runner.invoke(
        app, ["generate", "X-ray of the knea", "--model", str(model_dir), "--out", str(tmp_path)]
    )
    flat = " ".join(typo.output.replace("│", " ").split())  # the error box wraps lines
    assert typo.exit_code != 0 and "did you mean 'knee'" in flat
    assert "(radsynth vocabulary lists what a prompt can ask for)" in flat


# --- DICOM output (--format dicom, --keep-patient) and inputs read through radsynth.io -----

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from sample_files import (  # noqa: E402
    assert_no_identifying_value_survives,
    dciodvfy_errors,
    dcm2pnm_render,
    sample,
)


def small_copy(name: str, step: int, out: Path) -> Path:
    """A real sample DICOM file with every header attribute kept and its pixels subsampled
    by `step` (tiny models cannot denoise a 2000-pixel radiograph in a test)."""
    dataset = pydicom.dcmread(sample(name))
    pixels = dataset.pixel_array[::step, ::step]
    pixels = np.ascontiguousarray(pixels[: pixels.shape[0] // 8 * 8, : pixels.shape[1] // 8 * 8])
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.PixelData = pixels.tobytes()
    if "PixelSpacing" in dataset and float(dataset.PixelSpacing[0]) > 0:
        dataset.PixelSpacing = [f"{float(v) * step:.6g}" for v in dataset.PixelSpacing]
    dataset.save_as(out)
    return out


def run_cli(*args: str) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def test_generate_dicom_is_valid_synthetic_and_records_the_model(
    model_dir: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "generate", "PA chest radiograph", "-n", "2", "--seed", "3", "--steps", "2",
        "--model", model_dir, "--out", tmp_path / "o", "--format", "dicom",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = tmp_path / "o" / "generated-seed4.dcm"
    assert dciodvfy_errors(path) == []
    dcm2pnm_render(path, tmp_path / "render.pgm")
    dataset = pydicom.dcmread(path)
    assert dataset.SyntheticData == "YES" and dataset.PatientName == "SYNTHETIC^RADSYNTH"
    assert (dataset.Modality, dataset.BodyPartExamined) == ("DX", "CHEST")
    provenance = read_provenance(path)
    assert (provenance.seed, provenance.prompt, provenance.num_inference_steps) == (
        4,
        "PA chest radiograph",
        2,
    )
    assert provenance.weights_sha256 == weights_sha256(model_dir)
    assert provenance.model_name == model_dir.name
    assert (tmp_path / "o" / "generated-grid.png").is_file()
    # The run's images are one numbered series of one synthetic patient.
    first = pydicom.dcmread(tmp_path / "o" / "generated-seed3.dcm")
    for key in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert first[key].value == dataset[key].value, key
    assert (first.InstanceNumber, dataset.InstanceNumber) == (1, 2)
    assert first.SOPInstanceUID != dataset.SOPInstanceUID


def test_no_identifying_attribute_survives_from_a_real_dicom(
    model_dir: Path, tmp_path: Path
) -> None:
    source = small_copy("RG1_UNCR.dcm", 32, tmp_path / "chest.dcm")
    header = pydicom.dcmread(source, stop_before_pixels=True)
    result = run_cli(
        "inpaint", source, "--prompt", "chest", "--box", "8,8,24,24", "--model", model_dir,
        "--out", tmp_path / "o", "--format", "dicom",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = tmp_path / "o" / "inpainted-seed0.dcm"
    assert dciodvfy_errors(path) == []
    output = pydicom.dcmread(path)
    assert assert_no_identifying_value_survives(header, output) >= 25
    text = path.read_bytes()
    for keyword in ("PatientName", "PatientID", "InstitutionName", "StudyInstanceUID"):
        assert str(header[keyword].value).encode() not in text
    assert output.PatientIdentityRemoved == "YES" and output.Modality == "CR"
    assert "KEEPING" not in result.output
    # The kept pixels are the source's display values (MONOCHROME1 inverted), to 16 bits.
    display = read_image(source).windowed()
    kept = np.ones(display.shape, dtype=bool)
    kept[8:24, 8:24] = False
    stored = output.pixel_array.astype(np.float64) / 65535.0
    assert np.abs(stored[kept] - display[kept]).max() <= 0.5 / 65535 + 1e-6


def test_keep_patient_keeps_the_study_and_warns_loudly(model_dir: Path, tmp_path: Path) -> None:
    source = small_copy("RG1_UNCR.dcm", 32, tmp_path / "chest.dcm")
    header = pydicom.dcmread(source, stop_before_pixels=True)
    result = run_cli(
        "edit", source, "--prompt", "chest", "--box", "0,0,16,16", "--model", model_dir,
        "--out", tmp_path / "o", "--format", "dicom", "--keep-patient",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "WARNING: --keep-patient" in result.stderr
    output = pydicom.dcmread(tmp_path / "o" / "edited-seed0.dcm")
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID"):
        assert output[keyword].value == header[keyword].value
    assert output.SyntheticData == "YES" and output.SOPInstanceUID != header.SOPInstanceUID


def test_spacing_of_a_real_dicom_is_kept_in_png_and_dicom(model_dir: Path, tmp_path: Path) -> None:
    source = small_copy("693_UNCR.dcm", 8, tmp_path / "head.dcm")
    spacing = [float(v) for v in pydicom.dcmread(source).PixelSpacing]
    for output_format in ("png", "dicom"):
        result = run_cli(
            "outpaint", source, "--prompt", "CT of the head", "--right", "8", "--model", model_dir,
            "--out", tmp_path / output_format, "--format", output_format,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    png = tmp_path / "png" / "outpainted-seed0.png"
    assert read_image(png).pixel_spacing_mm == pytest.approx(tuple(spacing))
    dataset = pydicom.dcmread(tmp_path / "dicom" / "outpainted-seed0.dcm")
    assert [float(v) for v in dataset.PixelSpacing] == pytest.approx(spacing)
    assert dataset.Columns == 64 + 8 and dataset.Modality == "CT"


def test_sixteen_bit_png_input_gives_sixteen_bit_output_with_kept_pixels_exact(
    model_dir: Path, tmp_path: Path
) -> None:
    y, x = np.mgrid[0:32, 0:32]
    pixels = (1000 + 900 * x + 37 * y).astype(np.uint16)
    source = write_png(tmp_path / "sixteen.png", pixels)
    result = run_cli(
        "inpaint",
        source,
        "--prompt",
        "knee",
        "--box",
        "0,0,8,8",
        "--model",
        model_dir,
        "--out",
        tmp_path / "o",
    )
    assert result.exit_code == 0, result.output
    out = gray(tmp_path / "o" / "inpainted-seed0.png")
    assert out.dtype == np.uint16 and np.array_equal(out[8:], pixels[8:])


def test_bad_inputs_and_output_options_are_clear_errors(
    model_dir: Path, knee: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.dcm"
    text.write_text("not an image\n")
    colour = tmp_path / "colour.png"
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(colour)
    cases = [
        (
            ["inpaint", text, "--prompt", "knee", "--box", "0,0,4,4"],
            "is not an image radsynth can read",
        ),
        (
            ["inpaint", tmp_path / "missing.dcm", "--prompt", "knee", "--box", "0,0,4,4"],
            "does not exist",
        ),
        (["outpaint", colour, "--prompt", "knee", "--right", "8"], "--color luminance"),
        (["generate", "knee", "--format", "tiff"], "--format must be png or dicom"),
        (["generate", "knee", "--format", "dicom", "--keep-patient"], "No such option"),
        (
            ["edit", knee, "--prompt", "knee", "--box", "0,0,4,4", "--keep-patient"],
            "--format dicom only",
        ),
        (
            [
                "edit",
                knee,
                "--prompt",
                "knee",
                "--box",
                "0,0,4,4",
                "--format",
                "dicom",
                "--keep-patient",
            ],
            "keeps the patient of a DICOM input",
        ),
    ]
    for args, message in cases:
        result = run_cli(*args, "--model", model_dir, "--out", tmp_path / "o")
        assert result.exit_code == 2, (args, result.output)
        # rich wraps the message in a box: drop its borders before joining the words
        text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
        assert message in text, (args, result.output)
        assert "Traceback" not in result.output
    converted = run_cli(
        "outpaint", colour, "--prompt", "knee", "--right", "8", "--color", "luminance",
        "--model", model_dir, "--out", tmp_path / "c",
    )  # fmt: skip
    assert converted.exit_code == 0, converted.output


def test_a_multi_frame_dicom_needs_a_frame(model_dir: Path, tmp_path: Path) -> None:
    source = sample("emri_small.dcm")  # 10 frames of 64 x 64
    args = ["inpaint", source, "--prompt", "knee", "--box", "0,0,8,8", "--model", model_dir]
    unchosen = run_cli(*args, "--out", tmp_path / "a")
    assert unchosen.exit_code == 2 and "has 10 frames" in " ".join(unchosen.output.split())
    chosen = run_cli(*args, "--frame", "3", "--out", tmp_path / "b", "--format", "dicom")
    assert chosen.exit_code == 0, chosen.output
    output = pydicom.dcmread(tmp_path / "b" / "inpainted-seed0.dcm")
    assert (output.Rows, output.Columns, output.Modality) == (64, 64, "MR")


def test_edit_needs_a_prompt_and_inpaint_can_go_without(
    model_dir: Path, knee: Path, tmp_path: Path
) -> None:
    common = ["--box", "0,0,8,8", "--model", str(model_dir), "--out", str(tmp_path / "o")]
    missing = runner.invoke(app, ["edit", str(knee), *common])
    assert missing.exit_code != 0 and "--prompt" in missing.output
    unprompted = runner.invoke(app, ["inpaint", str(knee), *common])
    assert unprompted.exit_code == 0, unprompted.output
    assert Image.open(tmp_path / "o" / "inpainted-seed0.png").text["Prompt"] == ""


def test_inpaint_fit_takes_a_full_size_radiograph(model_dir: Path, tmp_path: Path) -> None:
    source = sample("RG1_UNCR.dcm")  # a real CR, 1955 x 1841 pixels
    box = ["--box", "700,600,1100,1000", "--model", model_dir, "--steps", "2"]
    refused = run_cli("inpaint", source, *box, "--out", tmp_path / "no")
    assert refused.exit_code != 0 and "--fit" in refused.output
    result = run_cli("inpaint", source, *box, "--fit", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    path = tmp_path / "o" / "inpainted-seed0.png"
    out = gray(path)
    original = np.round(np.clip(read_image(source).windowed(), 0, 1) * 255).astype(np.uint8)
    assert out.shape == original.shape == (1955, 1841)
    keep = np.ones(out.shape, dtype=bool)
    keep[600:1000, 700:1100] = False
    assert np.array_equal(out[keep], original[keep])
    assert not np.array_equal(out[~keep], original[~keep])
    text = read_png_text(path)
    assert text["Fit"].startswith("1841x1955 px worked at")
    assert Provenance.from_png_text(text).processing == f"Fit: {text['Fit']}"
    # A DICOM output records the plan too: in its provenance and its derivation description.
    result = run_cli("inpaint", source, *box, "--fit", "--format", "dicom", "--out", tmp_path / "d")
    assert result.exit_code == 0, result.output
    dicom = tmp_path / "d" / "inpainted-seed0.dcm"
    assert read_provenance(dicom).processing == f"Fit: {text['Fit']}"
    assert f"Fit: {text['Fit']}" in pydicom.dcmread(dicom).DerivationDescription
    assert pydicom.dcmread(dicom).pixel_array.shape == (1955, 1841)


def test_outpaint_fit_grows_a_full_size_radiograph(model_dir: Path, tmp_path: Path) -> None:
    source = sample("RG1_UNCR.dcm")  # 1955 x 1841 pixels
    args = ["--bottom", "400", "--model", model_dir, "--steps", "2", "--fit"]
    result = run_cli("outpaint", source, *args, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    out = gray(tmp_path / "o" / "outpainted-seed0.png")
    original = np.round(np.clip(read_image(source).windowed(), 0, 1) * 255).astype(np.uint8)
    assert out.shape == (2355, 1841) and np.array_equal(out[:1955], original)


def square_mask(path: Path, value: int) -> Path:
    """A 32 x 32 mask file whose top-left 8 x 8 pixels hold `value`, the rest 0."""
    labels = np.zeros((32, 32), np.uint8)
    labels[:8, :8] = value
    return write_png(path, labels)


def flat(result: Result) -> str:
    return " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())


def test_twelve_bit_data_in_sixteen_bit_samples_keeps_its_scale(
    model_dir: Path, tmp_path: Path
) -> None:
    # A common export: 12-bit values (0-4095) in a 16-bit PNG. Read as / 65535 the model saw a
    # black image and drew its area about six times too bright.
    y, x = np.mgrid[0:32, 0:32]
    pixels = (1000 + 90 * x + 9 * y).astype(np.uint16)  # at most 4069
    source = write_png(tmp_path / "twelve.png", pixels)
    result = run_cli(
        "inpaint", source, "--prompt", "knee", "--box", "0,0,8,8", "--model", model_dir,
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "read as 12-bit data" in flat(result)
    out = gray(tmp_path / "o" / "inpainted-seed0.png")
    assert out.dtype == np.uint16 and np.array_equal(out[8:], pixels[8:])
    assert out.max() <= 4095  # the new area on the same 0-4095 scale


def test_masks_may_be_label_maps_and_an_empty_one_says_how_to_mark(
    model_dir: Path, knee: Path, tmp_path: Path
) -> None:
    mask = square_mask(tmp_path / "labels.png", 1)
    result = run_cli(
        "inpaint", knee, "--prompt", "knee", "--mask", mask, "--model", model_dir,
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out, source = gray(tmp_path / "o" / "inpainted-seed0.png"), gray(knee)
    assert np.array_equal(out[8:], source[8:]) and np.array_equal(out[:, 8:], source[:, 8:])
    assert not np.array_equal(out[:8, :8], source[:8, :8])
    faint = square_mask(tmp_path / "faint.png", 100)
    refused = run_cli(
        "inpaint", knee, "--mask", faint, "--model", model_dir, "--out", tmp_path / "f"
    )
    assert refused.exit_code == 2 and "mark the area to change white (255 in 8-bit" in flat(refused)
    red = np.zeros((32, 32, 3), np.uint8)
    red[:8, :8, 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    refused = run_cli(
        "inpaint", knee, "--mask", tmp_path / "red.png", "--color", "luminance",
        "--model", model_dir, "--out", tmp_path / "r",
    )  # fmt: skip
    text = flat(refused)
    assert refused.exit_code == 2 and "red.png is a colour image; a mask must be a gray" in text
    assert "--color" not in text  # the image's option, which masks do not take


def test_sixteen_bit_colour_png_and_signed_tiff_inputs(model_dir: Path, tmp_path: Path) -> None:
    """A 16-bit RGB PNG of a grayscale image keeps its 16 bits in and out (it was cut to 8);
    a signed 8-bit TIFF is read signed, through its own range (negatives were read as 128+)."""
    import cv2
    import tifffile

    y, x = np.mgrid[0:32, 0:32]
    pixels = (x * 2000 + y * 37).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.stack([pixels] * 3, axis=-1))
    result = run_cli(
        "inpaint", tmp_path / "rgb16.png", "--box", "0,0,8,8", "--model", model_dir,
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = gray(tmp_path / "o" / "inpainted-seed0.png")
    assert out.dtype == np.uint16 and np.array_equal(out[8:], pixels[8:])
    signed = (x * 8 - 128).astype(np.int8)
    tifffile.imwrite(tmp_path / "s8.tif", signed)
    result = run_cli(
        "inpaint", tmp_path / "s8.tif", "--box", "0,0,8,8", "--model", model_dir,
        "--out", tmp_path / "s",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "read as display values through its own minimum to maximum" in flat(result)
    out = gray(tmp_path / "s" / "inpainted-seed0.png")
    expected = np.round((signed[8:].astype(float) + 128) / 248 * 255)  # -128..120 to 0..255
    assert np.abs(out[8:].astype(float) - expected).max() <= 1


def test_a_dicom_input_is_said_to_be_windowed_and_counts_and_out_are_checked_first(
    model_dir: Path, knee: Path, tmp_path: Path
) -> None:
    source = small_copy("693_UNCR.dcm", 8, tmp_path / "head.dcm")
    result = run_cli(
        "inpaint", source, "--box", "0,0,8,8", "--model", model_dir, "--out", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    assert "is read as display values through" in flat(result)
    a_file = tmp_path / "file"
    a_file.write_text("")
    for args, message in [
        (["generate", "knee", "--out", a_file], "is a file"),
        (["inpaint", knee, "--box", "0,0,4,4", "--out", a_file], "is a file"),
        (["generate", "knee", "-n", "0", "--out", tmp_path / "n"], "-n"),
    ]:
        refused = run_cli(*args, "--model", model_dir)
        assert refused.exit_code == 2 and message in flat(refused), refused.output
    assert not (tmp_path / "n").exists()


def test_provenance_names_the_operation_its_inputs_and_options(
    model_dir: Path, knee: Path, tmp_path: Path
) -> None:
    import hashlib

    mask = square_mask(tmp_path / "mask.png", 255)
    recorded = {}
    for strength in ("0.3", "0.9"):
        result = run_cli(
            "edit", knee, "--prompt", "knee", "--mask", mask, "--strength", strength,
            "--model", model_dir, "--out", tmp_path / strength,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        text = read_png_text(tmp_path / strength / "edited-seed0.png")
        recorded[strength] = Provenance.from_png_text(text)
    low, high = recorded["0.3"], recorded["0.9"]
    assert low.operation == "edit" and low.inputs is not None and high.inputs is not None
    assert (low.inputs["strength"], high.inputs["strength"]) == (0.3, 0.9)
    assert low.inputs["image"] == {
        "file": "knee.png",
        "sha256": hashlib.sha256(knee.read_bytes()).hexdigest(),
    }
    assert low.inputs["mask"]["sha256"] == hashlib.sha256(mask.read_bytes()).hexdigest()
    grown = run_cli(
        "outpaint", knee, "--right", "8", "--model", model_dir, "--out", tmp_path / "g",
        "--format", "dicom",
    )  # fmt: skip
    assert grown.exit_code == 0, grown.output
    from_dicom = read_provenance(tmp_path / "g" / "outpainted-seed0.dcm")
    assert from_dicom.operation == "outpaint" and from_dicom.inputs is not None
    assert from_dicom.inputs["right"] == 8 and "layout_prompt" not in from_dicom.inputs


def test_small_mistakes_are_named(model_dir: Path, knee: Path, tmp_path: Path) -> None:
    for args, message in [
        (["inpaint", knee, "--box", "16,16,0,0"], "is empty: give x0,y0,x1,y1 with x1 > x0"),
        (["outpaint", knee, "--right", "8", "--layout-strength", "0.7"], "--layout-prompt"),
        (["generate", "knee", "--seed", str(2**70)], "--seed"),
    ]:
        result = run_cli(*args, "--model", model_dir, "--out", tmp_path / "o")
        assert result.exit_code == 2 and message in flat(result), result.output
    pipe = TextToImagePipeline.from_pretrained(model_dir)
    generators = [torch.Generator().manual_seed(s) for s in range(3)]
    with pytest.raises(ValueError, match="one generator per image: got 3 for a batch of 2"):
        pipe("knee", num_images_per_prompt=2, generator=generators, num_inference_steps=2)


def test_dicom_output_of_a_ct_reads_back_in_hounsfield_units(
    model_dir: Path, tmp_path: Path
) -> None:
    # CT_small has no window in its header: the model sees its own HU range, and the output's
    # Rescale Slope and Intercept give those HU back (they were values 0-65535 labelled CT).
    from pydicom.pixels import apply_modality_lut

    source = small_copy("CT_small.dcm", 2, tmp_path / "ct.dcm")
    result = run_cli(
        "inpaint", source, "--box", "0,0,8,8", "--format", "dicom", "--model", model_dir,
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = tmp_path / "o" / "inpainted-seed0.dcm"
    assert dciodvfy_errors(path) == []
    written = pydicom.dcmread(path)
    assert (written.Modality, written.RescaleType) == ("CT", "HU")
    original = pydicom.dcmread(source)
    hu = apply_modality_lut(original.pixel_array, original).astype(np.float64)
    back = apply_modality_lut(written.pixel_array, written).astype(np.float64)
    step = (hu.max() - hu.min()) / 65535
    assert np.abs(back[8:] - hu[8:]).max() <= step  # the kept pixels, in HU
    assert float(written.WindowCenter) == pytest.approx((hu.max() + hu.min()) / 2, abs=1)


def test_the_output_folder_is_a_data_folder_without_its_grid(
    model_dir: Path, tmp_path: Path
) -> None:
    # `radsynth evaluate` scored the grid as one more synthetic image (squashed to a square).
    from radsynth.evaluate.metrics.folders import load_image_folder

    out = tmp_path / "o"
    for args in (["-n", "2", "--seed", "0"], ["-n", "2", "--seed", "1"]):
        result = run_cli("generate", "PA chest radiograph", *args, "--steps", "2",
                         "--model", model_dir, "--out", out)  # fmt: skip
        assert result.exit_code == 0, result.output
    assert (out / "generated-grid.png").is_file()
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["id"], r["seed"]) for r in records] == [
        ("generated-seed0", 0), ("generated-seed1", 1), ("generated-seed2", 2),
    ]  # fmt: skip
    assert {r["caption"] for r in records} == {"PA chest radiograph"}
    folder = load_image_folder(out)
    assert len(folder) == 3 and "generated-grid.png" not in folder.names


def test_a_run_does_not_write_over_another_inputs_or_prompts_images(
    model_dir: Path, knee: Path, tmp_path: Path
) -> None:
    """Two inputs (or prompts) sent to one --out: the second replaced the first's
    inpainted-seed0.png and its record without a word. A rerun of the same input still may."""
    out = tmp_path / "o"
    inpaint = ("inpaint", "--box", "0,0,8,8", "--steps", "1", "--model", model_dir, "--out", out)
    assert run_cli(inpaint[0], knee, *inpaint[1:]).exit_code == 0
    first = (out / "inpainted-seed0.png").read_bytes()
    other = write_png(tmp_path / "other.png", np.full((32, 32), 90, np.uint8))
    refused = run_cli(inpaint[0], other, *inpaint[1:])
    assert refused.exit_code == 2
    assert "already holds inpainted-seed0.png, made from knee.png" in flat(refused)
    assert (out / "inpainted-seed0.png").read_bytes() == first
    assert run_cli(inpaint[0], knee, *inpaint[1:]).exit_code == 0  # a rerun: same input
    assert run_cli(inpaint[0], other, *inpaint[1:3], "--seed", "5", *inpaint[3:]).exit_code == 0
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["image"], r["source"]) for r in records] == [
        ("inpainted-seed0.png", "knee.png"), ("inpainted-seed5.png", "other.png"),
    ]  # fmt: skip
    generate = ("generate", "--steps", "1", "-n", "1", "--model", model_dir, "--out", out)
    assert run_cli(generate[0], "knee", *generate[1:]).exit_code == 0
    refused = run_cli(generate[0], "chest", *generate[1:])
    assert refused.exit_code == 2 and "made from the prompt 'knee'" in flat(refused)


def test_a_nifti_slice_is_chosen_said_and_recorded(model_dir: Path, tmp_path: Path) -> None:
    """--slice and --axis pick the slice of a 3-D NIfTI (only the middle one could be edited,
    and nothing said which); the note, the provenance and the manifest name it, and two slices
    of one volume are two inputs to --out."""
    import nibabel as nib

    volume = np.stack([np.full((32, 32), 10.0 * k) + np.eye(32) for k in range(5)], axis=-1)
    path = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(volume.astype(np.float32), np.eye(4)), path)
    out = tmp_path / "o"
    args = ("--box", "0,0,8,8", "--steps", "1", "--model", model_dir, "--out", out)
    result = run_cli("inpaint", path, *args)
    assert result.exit_code == 0, result.output
    assert "vol.nii.gz: axial slice 2 of 5 (0 to 4; the middle one" in flat(result)
    refused = run_cli("inpaint", path, "--slice", "4", *args)
    assert refused.exit_code == 2 and "made from vol.nii.gz slice axial 2" in flat(refused)
    other = tmp_path / "o4"
    result = run_cli("inpaint", path, "--slice", "4", *args[:-1], other)
    assert result.exit_code == 0, result.output
    record = json.loads((other / "manifest.jsonl").read_text())
    assert (record["source"], record["source_slice"]) == ("vol.nii.gz", "axial 4")
    with Image.open(other / "inpainted-seed0.png") as image:
        assert Provenance.from_png_text(image.text).inputs["slice"] == "axial 4"
    wrong = run_cli("inpaint", path, "--axis", "oblique", *args[:-1], tmp_path / "x")
    assert wrong.exit_code == 2 and "--axis must be axial, coronal, sagittal" in flat(wrong)
    png = write_png(tmp_path / "flat.png", np.zeros((32, 32), np.uint8))
    wrong = run_cli("inpaint", png, "--slice", "1", *args[:-1], tmp_path / "x")
    assert wrong.exit_code == 2 and "--slice and --axis pick a slice of a NIfTI" in flat(wrong)
    whole = run_cli(
        "inpaint", png, "--box", "0,0,32,32", "--model", model_dir, "--out", tmp_path / "w"
    )
    assert whole.exit_code == 2 and "use `radsynth generate`" in flat(whole)


def test_scaled_sbit_data_other_folders_and_a_kept_patient_without_an_id(
    model_dir: Path, knee: Path, tmp_path: Path
) -> None:
    import struct
    import zlib

    # 12 significant bits scaled to 16 as the PNG standard says (values up to 65520): read
    # on the full 16-bit scale, kept pixels exact.
    y, x = np.mgrid[0:32, 0:32]
    pixels = ((100 * x + 9 * y).astype(np.uint16) << 4).astype(np.uint16)
    plain = write_png(tmp_path / "plain.png", pixels).read_bytes()
    chunk = b"sBIT" + bytes([12])
    at = 8 + 8 + 13 + 4  # after the signature and IHDR
    sbit = struct.pack(">I", 1) + chunk + struct.pack(">I", zlib.crc32(chunk))
    scaled = tmp_path / "scaled.png"
    scaled.write_bytes(plain[:at] + sbit + plain[at:])
    result = run_cli("inpaint", scaled, "--box", "0,0,8,8", "--model", model_dir,
                     "--out", tmp_path / "s")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = gray(tmp_path / "s" / "inpainted-seed0.png")
    assert np.array_equal(out[8:], pixels[8:]) and out.max() > 4095
    # A phantoms folder is not an output folder for generated images.
    cases = tmp_path / "cases"
    assert runner.invoke(app, ["phantoms", "--out", str(cases), "--n", "1", "--size", "32"]
                         ).exit_code == 0  # fmt: skip
    refused = run_cli("generate", "knee", "--model", model_dir, "--out", cases)
    assert refused.exit_code == 2 and "a data folder of another kind" in flat(refused)
    assert len((cases / "manifest.jsonl").read_text().splitlines()) == 1
    # --keep-patient from a source with no Patient ID: the run is still one patient.
    source = small_copy("RG1_UNCR.dcm", 32, tmp_path / "chest.dcm")
    dataset = pydicom.dcmread(source)
    del dataset.PatientID
    dataset.save_as(source)
    kept = run_cli(
        "edit", source, "--prompt", "chest", "--box", "0,0,16,16", "-n", "2", "--model",
        model_dir, "--out", tmp_path / "k", "--format", "dicom", "--keep-patient",
    )  # fmt: skip
    assert kept.exit_code == 0, kept.output
    ids = {pydicom.dcmread(p).PatientID for p in (tmp_path / "k").glob("*.dcm")}
    assert len(ids) == 1
    # Seeds stay int64; the layout strength used is recorded.
    too_far = run_cli("generate", "knee", "-n", "2", "--seed", str(2**63 - 1),
                      "--model", model_dir, "--out", tmp_path / "g")  # fmt: skip
    assert too_far.exit_code == 2 and "at most" in flat(too_far)
    grown = run_cli("outpaint", knee, "--right", "32", "--layout-prompt", "whole body",
                    "--model", model_dir, "--out", tmp_path / "l")  # fmt: skip
    assert grown.exit_code == 0, grown.output
    record = Provenance.from_png_text(read_png_text(tmp_path / "l" / "outpainted-seed0.png"))
    assert record.inputs is not None and record.inputs["layout_strength"] == 0.5


def test_without_a_terminal_each_image_is_logged(model_dir: Path, tmp_path: Path) -> None:
    # Progress bars are off when stderr is not a terminal; a long run said nothing at all.
    result = run_cli("generate", "knee", "-n", "2", "--steps", "2", "--model", model_dir,
                     "--out", tmp_path / "o")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "image 1 of 2 (seed 0)" in result.stderr and "image 2 of 2 (seed 1)" in result.stderr


def test_an_age_the_built_in_model_never_saw_is_noted(model_dir: Path, tmp_path: Path) -> None:
    # The built-in model learnt from adults (18-90): "an 8-year-old child" came out an adult's
    # knee without a word. A user's own model (which may know children) gets no such note.
    prompt = "AP X-ray of the knee of an 8-year-old child"
    built_in = run_cli("generate", prompt, "-n", "1", "--steps", "1", "--out", tmp_path / "b")
    assert built_in.exit_code == 0, built_in.output
    assert "learnt from adult phantoms (18-90 years)" in flat(built_in)
    adult = run_cli("generate", "AP X-ray of the knee of a 40-year-old", "-n", "1", "--steps",
                    "1", "--out", tmp_path / "a")  # fmt: skip
    assert adult.exit_code == 0 and "adult phantoms" not in flat(adult)
    own = run_cli("generate", prompt, "-n", "1", "--steps", "1", "--model", model_dir,
                  "--out", tmp_path / "o")  # fmt: skip
    assert own.exit_code == 0 and "adult phantoms" not in flat(own)
    # "both knees" is read as one knee without a side (an image shows one knee): said so.
    both = run_cli("generate", "AP X-ray of both knees", "-n", "1", "--steps", "1", "--model",
                   model_dir, "--out", tmp_path / "k")  # fmt: skip
    assert both.exit_code == 0 and "an image shows one knee" in flat(both)
