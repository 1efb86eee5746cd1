"""Training runs of a few steps on a tiny preset: outputs, resume, accelerate with 2 processes."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from manifest_folder import write_manifest_folder
from safetensors.torch import load_file

from radsynth.io.png import read_png_text
from radsynth.models import normalise_prompts
from radsynth.pipelines import TextToImagePipeline
from radsynth.train import TrainConfig, main, train
from radsynth.train.data import ManifestImageDataset
from radsynth.train.loop import min_snr_weights
from radsynth.train.main import as_flags, parse_args


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_manifest_folder(tmp_path_factory.mktemp("data") / "cases")


def tiny_config(data_dir: Path, out: Path, **changes: object) -> TrainConfig:
    options: dict[str, object] = {
        "preset": "tiny",
        "max_steps": 2,
        "batch_size": 2,
        "lr_warmup_steps": 0,
        "learning_rate": 1e-3,
        "checkpoint_every": 1,
        "sample_every": 0,
        "num_samples": 1,
    }
    options.update(changes)
    return TrainConfig(data_dir=data_dir, output_dir=out, **options)  # type: ignore[arg-type]


def unet_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "diffusion_pytorch_model.safetensors")


def test_dataset_reads_8_and_16_bit_and_resizes(data_dir: Path) -> None:
    dataset = ManifestImageDataset(data_dir, resolution=32)
    images, captions = dataset.batch([0, 1])
    assert images.shape == (2, 1, 32, 32) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    # Centre crop 40 x 40 of the 40 x 48 source, box-filtered to 32 px: the mean is kept.
    y, x = np.mgrid[0:40, 4:44].astype(np.float64)
    disc = ((y - 10) ** 2 + (x - 24) ** 2 < 64).astype(np.float64)
    source = np.clip(0.1 + 0.6 * disc + x / 200.0, 0.0, 1.0)
    assert abs(float(images[0].mean()) - source.mean()) < 2e-3
    assert captions == normalise_prompts(["AP radiograph of the knee", "PA chest radiograph"])


def test_captions_are_normalised_and_free_text_is_kept_as_written(tmp_path: Path) -> None:
    folder = write_manifest_folder(tmp_path / "data", count=2)
    lines = (folder / "manifest.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    records[0]["caption"] = "Knee XR, AP"  # an abbreviation: same meaning, same caption
    records[1]["caption"] = "Heart  size normal.  No pleural effusion."  # a free-text report
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    dataset = ManifestImageDataset(folder, resolution=32)
    assert dataset.caption(0) == normalise_prompts(["AP radiograph of the knee"])[0]
    assert dataset.caption(1) == "Heart size normal. No pleural effusion."
    assert dataset.free_text == ["case-1"]


def test_a_model_trained_on_free_text_captions_takes_them_as_prompts(tmp_path: Path) -> None:
    folder = write_manifest_folder(tmp_path / "data", count=2)
    records = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    report = "Heart size normal. No pleural effusion."
    records[0]["caption"] = report
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    # sample_every 1: the sample grid prompts the training captions, the report first.
    model = train(tiny_config(folder, tmp_path / "run", max_steps=1, sample_every=1))
    assert (tmp_path / "run" / "samples" / "step-0000001.png").is_file()
    pipe = TextToImagePipeline.from_pretrained(model)
    assert pipe.components.defaults["free_text_prompts"] is True
    pipe.set_progress_bar_config(disable=True)
    image = pipe(report, num_inference_steps=1, generator=torch.Generator().manual_seed(0))
    assert np.asarray(image.images[0]).shape == (32, 32)
    # A model trained on radsynth's terms only still refuses words it cannot read.
    plain = train(tiny_config(write_manifest_folder(tmp_path / "plain"), tmp_path / "run2"))
    strict = TextToImagePipeline.from_pretrained(plain)
    assert "free_text_prompts" not in strict.components.defaults
    with pytest.raises(ValueError, match="pleural effusion|Heart"):
        strict(report, num_inference_steps=1)


def test_captions_past_the_kept_tokens_are_counted_and_more_tokens_keep_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_manifest_folder(tmp_path / "data", count=2)
    records = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    long = (
        "Sagittal T2-weighted MRI of the head of a 65-year-old man with a left "
        "intraparenchymal intracranial haemorrhage"
    )
    records[0]["caption"] = long
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    # The tiny preset keeps 16 tokens: the long caption is cut, "PA chest radiograph" is not.
    train(tiny_config(folder, tmp_path / "short", max_steps=1))
    printed = capsys.readouterr().out
    assert "note: 1 of 2 captions are longer than the 16 tokens" in printed
    assert "(the longest has 37; --text-max-length 37 keeps them whole)" in printed
    short = json.loads((tmp_path / "short" / "training.json").read_text())
    assert short["data"]["captions_cut"] == 1 and short["data"]["text_tokens_kept"] == 16
    assert short["config"]["text_max_length"] is None
    model = train(tiny_config(folder, tmp_path / "long", max_steps=1, text_max_length=40))
    record = json.loads((tmp_path / "long" / "training.json").read_text())
    assert record["data"]["captions_cut"] == 0 and record["data"]["text_tokens_kept"] == 40
    encoder_config = json.loads((model / "text_encoder" / "config.json").read_text())
    assert encoder_config["max_length"] == 40
    encoder = TextToImagePipeline.from_pretrained(model).components.prompt_encoder
    assert encoder.kept_tokens == 40
    caption = normalise_prompts([long])[0]
    assert 16 < encoder.token_counts([caption])[0] <= 40
    cpu = torch.device("cpu")
    cut = TextToImagePipeline.from_pretrained(tmp_path / "short" / "model").components
    chest = normalise_prompts(["PA chest radiograph"])[0]
    kept, cut_embeds = (e.encode([caption, chest], cpu) for e in (encoder, cut.prompt_encoder))
    assert kept.shape == (2, 40, 384) and cut_embeds.shape == (2, 16, 384)
    # A caption that fits is encoded the same in its first 16 positions (MiniLM masks its
    # padding); the cut one is not, as every token of it sees the words cut away.
    assert torch.allclose(kept[1, :16], cut_embeds[1], atol=1e-5)
    assert not torch.allclose(kept[0, :16], cut_embeds[0], atol=1e-3)
    common = ["--data", str(folder), "--out", str(tmp_path / "x")]
    assert parse_args([*common, "--text-max-length", "40"]).text_max_length == 40
    with pytest.raises(SystemExit):
        parse_args([*common, "--text-max-length", "1"])
    with pytest.raises(ValueError, match="text_max_length must be at least 2"):
        tiny_config(folder, tmp_path / "x", text_max_length=0)


def test_min_snr_weights_cap_low_noise_steps() -> None:
    alphas = torch.tensor([0.999, 0.5, 0.01])
    v = min_snr_weights(alphas, torch.tensor([0, 1, 2]), 5.0, "v_prediction")
    eps = min_snr_weights(alphas, torch.tensor([0, 1, 2]), 5.0, "epsilon")
    snr = alphas / (1 - alphas)
    assert torch.allclose(v, torch.minimum(snr, torch.tensor(5.0)) / (snr + 1))
    assert torch.allclose(eps[1:], torch.ones(2))  # SNR <= gamma: plain epsilon loss
    assert eps[0] < 0.01  # the nearly clean step is strongly down-weighted


def test_x0_prediction_weights_are_the_capped_v_loss_weights() -> None:
    alphas = torch.tensor([0.999, 0.5, 0.01])
    weights = min_snr_weights(alphas, torch.tensor([0, 1, 2]), 5.0, "sample")
    # |v - v_hat|^2 = (SNR + 1) |x0 - x0_hat|^2: SNR + 1 = 1000, 2, 1.0101; capped at 5.
    assert torch.allclose(weights, torch.tensor([5.0, 2.0, 1.0 / 0.99]))
    assert torch.equal(min_snr_weights(alphas, torch.tensor([0, 2]), None, "sample"), torch.ones(2))


@pytest.mark.parametrize("prediction", ["sample", "v_prediction", "epsilon"])
def test_the_loss_target_follows_the_prediction_type(prediction: str) -> None:
    """A denoiser that returns the exact target of its prediction type has zero loss."""
    from diffusers import DDPMScheduler

    from radsynth.models import build_components
    from radsynth.train.loop import diffusion_loss

    components = build_components("tiny", seed=0)
    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction)
    images = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    clean = components.image_to_model(images)

    class Oracle(torch.nn.Module):
        def forward(self, noisy: torch.Tensor, t: torch.Tensor, **_: object) -> object:
            # Recover the noise from the noisy input and the known clean images.
            alpha_bar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
            noise = (noisy - alpha_bar.sqrt() * clean) / (1 - alpha_bar).sqrt()
            if prediction == "sample":
                target = clean
            elif prediction == "v_prediction":
                target = scheduler.get_velocity(clean, noise, t)
            else:
                target = noise
            return type("Out", (), {"sample": target})()

    config = TrainConfig(data_dir=Path("."), output_dir=Path("."), preset="tiny")
    loss = diffusion_loss(
        components,
        Oracle(),
        scheduler,
        images,
        ["PA chest radiograph"] * 3,
        torch.Generator().manual_seed(1),
        config,
    )
    assert float(loss) < 1e-8
    # And a denoiser that returns its noisy input instead has a clearly positive loss.
    lazy = diffusion_loss(
        components,
        lambda x, t, **_: type("Out", (), {"sample": x})(),
        scheduler,
        images,
        ["PA chest radiograph"] * 3,
        torch.Generator().manual_seed(1),
        config,
    )
    assert float(lazy) > 1e-3


def test_two_steps_write_model_checkpoints_and_records(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    model_dir = train(tiny_config(data_dir, out, command="radsynth train (test)"))
    assert (out / "checkpoints" / "step-0000002" / "state.json").is_file()
    assert (out / "checkpoints" / "step-0000002" / "ema_unet").is_dir()
    assert not list(out.rglob("*.bin"))
    losses = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [row["step"] for row in losses] == [1, 2]
    assert all(np.isfinite(row["loss"]) and row["loss"] > 0 for row in losses)
    assert (out / "loss.png").is_file()
    grid = out / "samples" / "step-0000002.png"
    assert read_png_text(grid)["Synthetic"] == "YES"
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 2 and record["data"]["images"] == 4
    assert record["command"] == "radsynth train (test)" and record["machine"]["cpu_count"]
    # The trained model loads and generates; its weights moved away from the initial ones.
    pipe = TextToImagePipeline.from_pretrained(model_dir)
    assert pipe(
        ["PA chest radiograph"], generator=torch.Generator().manual_seed(0)
    ).images.shape == (
        1,
        32,
        32,
    )
    from radsynth.models import build_components

    start = build_components("tiny", seed=0).unet.state_dict()
    trained = unet_weights(out / "checkpoints" / "step-0000002" / "unet")
    assert any(not torch.equal(start[k], trained[k]) for k in start)


def test_max_minutes_ends_the_run_as_at_max_steps(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    # A budget spent by the first step: the run stops after it, and still writes the model.
    config = tiny_config(data_dir, out, max_steps=50, checkpoint_every=100, max_minutes=1e-6)
    model_dir = train(config)
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 1 and record["stopped_by_max_minutes"] is True
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-0000001"]
    assert (out / "samples" / "step-0000001.png").is_file()
    index = json.loads((model_dir / "model_index.json").read_text())
    assert index["_radsynth_defaults"]["trained_steps"] == 1
    # A budget never reached changes nothing.
    train(tiny_config(data_dir, tmp_path / "ample", max_minutes=60.0))
    ample = json.loads((tmp_path / "ample" / "training.json").read_text())
    assert ample["steps"] == 2 and ample["stopped_by_max_minutes"] is False
    common = ["--data", str(data_dir), "--out", str(out)]
    assert parse_args([*common, "--max-minutes", "7.5", "--cache-images"]).max_minutes == 7.5
    with pytest.raises(SystemExit):
        parse_args([*common, "--max-minutes", "0"])
    # The CLI reports TrainConfig's check in its own flags' names.
    assert "--max-minutes must be a positive number, got 0.0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="max_minutes must be a positive"):
        tiny_config(data_dir, out, max_minutes=-1.0)
    # Stopped on a multiple of --sample-every, the run still ends with its grid.
    every = tmp_path / "every"
    train(tiny_config(data_dir, every, max_steps=50, sample_every=1, max_minutes=1e-6))
    assert (every / "samples" / "step-0000001.png").is_file()
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        tiny_config(data_dir, out, ema_decay=1.5)


def test_as_flags_names_every_field_by_its_flag() -> None:
    # Fields whose flag differs from the field's name, and whole words only.
    assert as_flags("output_dir holds a model; data_dir has no manifest") == (
        "--out holds a model; --data has no manifest"
    )
    assert as_flags("max_steps and batch_size must be at least 1") == (
        "--max-steps and --batch-size must be at least 1"
    )
    assert as_flags("my_max_steps_total stays") == "my_max_steps_total stays"


@pytest.fixture(scope="module")
def fine_tune(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(parent model folder, fine-tune output folder): 2 steps from the preset, then 1 more."""
    runs = tmp_path_factory.mktemp("fine_tune")
    parent = train(tiny_config(data_dir, runs / "parent", max_steps=2))
    train(tiny_config(data_dir, runs / "child", init_from=parent, max_steps=1))
    return parent, runs / "child"


def test_a_fine_tune_counts_its_parents_steps(fine_tune: tuple[Path, Path]) -> None:
    child = fine_tune[1]
    defaults = json.loads((child / "model" / "model_index.json").read_text())["_radsynth_defaults"]
    assert defaults["trained_steps"] == 3  # 2 of the parent, 1 of the fine-tune
    record = json.loads((child / "training.json").read_text())
    assert record["steps"] == 1 and record["parent_steps"] == 2
    # The parent folder decides the architecture; no preset is recorded as if it had.
    assert record["config"]["preset"] is None
    assert record["config"]["init_from"] == str(fine_tune[0])


def test_preset_and_init_from_together_are_refused(tmp_path: Path) -> None:
    common = ["--data", str(tmp_path), "--out", str(tmp_path / "out")]
    assert parse_args(common).preset == "tiny"
    assert parse_args([*common, "--init-from", str(tmp_path)]).preset is None
    with pytest.raises(SystemExit):  # argparse's error, naming both flags
        parse_args([*common, "--preset", "builtin", "--init-from", str(tmp_path)])


def test_a_checkpoint_becomes_a_model_folder(fine_tune: tuple[Path, Path], tmp_path: Path) -> None:
    parent, child = fine_tune
    checkpoint = child / "checkpoints" / "step-0000001"
    script = Path(__file__).parents[2] / "scripts" / "checkpoint_to_model.py"
    export = runpy.run_path(str(script), run_name="checkpoint_to_model")["main"]
    out = tmp_path / "exported"
    assert export([str(checkpoint), str(out), "--base", str(parent)]) == 0
    defaults = json.loads((out / "model_index.json").read_text())["_radsynth_defaults"]
    assert defaults["trained_steps"] == 3  # the parent's 2 and the checkpoint's 1
    exported, ema = unet_weights(out / "unet"), unet_weights(checkpoint / "ema_unet")
    assert all(torch.equal(exported[k], ema[k]) for k in ema)
    assert TextToImagePipeline.from_pretrained(out)("PA chest radiograph").images.shape[0] == 1
    with pytest.raises(SystemExit):  # argparse's error: not a checkpoint folder
        export([str(tmp_path), str(out)])


def test_resume_continues_from_the_saved_step_exactly(data_dir: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(tiny_config(data_dir, straight, max_steps=3))
    split = tmp_path / "split"
    train(tiny_config(data_dir, split, max_steps=2))
    assert main(["--data", str(data_dir), "--out", str(split), "--preset", "tiny",
                 "--max-steps", "3", "--batch-size", "2", "--lr-warmup-steps", "0",
                 "--learning-rate", "1e-3", "--checkpoint-every", "1", "--sample-every", "0",
                 "--num-samples", "2", "--resume"]) == 0  # fmt: skip
    steps = [json.loads(line)["step"] for line in (split / "loss.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    for name in ("unet", "ema_unet"):
        a = unet_weights(straight / "checkpoints" / "step-0000003" / name)
        b = unet_weights(split / "checkpoints" / "step-0000003" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_resume_drops_loss_rows_logged_after_the_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_config(data_dir, out, max_steps=2))
    log = out / "loss.jsonl"
    kept = log.read_text().splitlines()
    # A run killed after logging steps 3 and 4 but before checkpointing them.
    stale = [json.dumps({"step": s, "loss": 99.0, "lr": 1e-3}) for s in (3, 4)]
    log.write_text("\n".join([*kept, *stale]) + "\n")
    train(tiny_config(data_dir, out, max_steps=3, resume=True))
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert rows[:2] == [json.loads(line) for line in kept]
    assert rows[2]["loss"] != 99.0
    # A log damaged by earlier resumes (a step logged twice) is read as each step's last row.
    log.write_text("\n".join([*map(json.dumps, rows), stale[0]]) + "\n")
    train(tiny_config(data_dir, out, max_steps=4, resume=True))
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4] and rows[2]["loss"] == 99.0


def test_resume_trains_at_the_learning_rate_it_is_given(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_config(data_dir, out, max_steps=2))
    weights = unet_weights(out / "checkpoints" / "step-0000002" / "unet")
    train(tiny_config(data_dir, out, max_steps=3, learning_rate=0.0, resume=True))
    rows = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [row["lr"] for row in rows] == [1e-3, 1e-3, 0.0]
    # At rate 0 the step leaves every weight as it was (AdamW's decay scales with the rate too).
    after = unet_weights(out / "checkpoints" / "step-0000003" / "unet")
    assert all(torch.equal(weights[k], after[k]) for k in weights)


def test_resume_without_checkpoint_and_bad_data_are_clear(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no checkpoint.*start without --resume"):
        train(tiny_config(data_dir, tmp_path / "fresh", resume=True))
    with pytest.raises(ValueError, match="no manifest"):
        train(tiny_config(tmp_path, tmp_path / "x"))


def test_a_folder_of_an_earlier_run_is_continued_only_with_its_own_network(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    train(tiny_config(data_dir, out, max_steps=2, checkpoint_every=2))
    # A fresh run into it pruned its own first checkpoint and crashed, then --resume took
    # the old run's checkpoint for its own.
    with pytest.raises(ValueError, match="holds an earlier run .*step-0000002.*--resume"):
        train(tiny_config(data_dir, out, max_steps=6, seed=7))
    with pytest.raises(ValueError, match="trained with --preset tiny \\(now tiny-patch\\)"):
        train(tiny_config(data_dir, out, max_steps=4, preset="tiny-patch", resume=True))
    assert json.loads((out / "training.json").read_text())["steps"] == 2  # untouched


def test_a_corrupt_or_colour_png_is_refused_before_training(tmp_path: Path) -> None:
    from PIL import Image

    folder = write_manifest_folder(tmp_path / "cases")
    record = json.loads((folder / "manifest.jsonl").read_text().splitlines()[1])
    image = folder / record["image"]
    image.write_bytes(b"junk")
    with pytest.raises(ValueError, match=f"{record['id']!r}: .* is not a readable PNG"):
        ManifestImageDataset(folder, resolution=32)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(image)
    with pytest.raises(ValueError, match="is RGB, not grayscale"):
        ManifestImageDataset(folder, resolution=32)


def test_accelerate_launch_with_two_cpu_processes(data_dir: Path, tmp_path: Path) -> None:
    # accelerate's `--cpu` flag alone starts one process; two CPU processes come from its
    # torchrun launcher (`--multi_gpu`) with ACCELERATE_USE_CPU set, talking over gloo.
    out = tmp_path / "ddp"
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--num_cpu_threads_per_process", "1",
        "-m", "radsynth.train",
        "--data", str(data_dir), "--out", str(out), "--preset", "tiny", "--max-steps", "2",
        "--batch-size", "1", "--checkpoint-every", "2", "--sample-every", "0",
        "--num-samples", "1",
    ]  # fmt: skip
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ACCELERATE_USE_CPU": "true",
        "ACCELERATE_CONFIG_FILE": str(tmp_path / "no-config.yaml"),
    }
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = out / "checkpoints" / "step-0000002"
    assert (checkpoint / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (checkpoint / "rng-0.pt").is_file() and (checkpoint / "rng-1.pt").is_file()
    record = json.loads((out / "training.json").read_text())
    assert record["machine"]["num_processes"] == 2 and record["images_seen"] == 4


def test_init_from_is_the_same_model_however_its_path_is_written(
    fine_tune: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from radsynth.train.loop import _same_model

    parent, _ = fine_tune
    copy = tmp_path / "copy"
    shutil.copytree(parent, copy)
    monkeypatch.chdir(tmp_path)
    assert _same_model("copy", str(copy))  # relative and absolute
    assert _same_model(str(parent), "copy")  # a copy holds the same weights
    assert not _same_model(str(parent), str(tmp_path / "elsewhere"))
    assert _same_model(None, None) and not _same_model(None, "copy")
