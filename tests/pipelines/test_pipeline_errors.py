"""Bad inputs and bad model folders give errors that say what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from radsynth.models import DiffusionComponents
from radsynth.pipelines import (
    EditPipeline,
    InpaintPipeline,
    OutpaintPipeline,
    TextToImagePipeline,
)

PROMPT = "PA chest radiograph"


def test_wrong_mask_size(tiny: DiffusionComponents, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="same size"):
        InpaintPipeline(tiny)(PROMPT, image, np.ones((16, 16), dtype=np.float32))


def test_empty_and_full_masks(tiny: DiffusionComponents, image: np.ndarray) -> None:
    pipe = InpaintPipeline(tiny)
    with pytest.raises(ValueError, match="selects no pixels"):
        pipe(PROMPT, image, np.zeros_like(image))
    with pytest.raises(ValueError, match="whole image.*TextToImagePipeline"):
        pipe(PROMPT, image, np.ones_like(image))
    with pytest.raises(ValueError, match="selects no pixels"):
        EditPipeline(tiny)(PROMPT, image, np.zeros_like(image))


def test_bad_images(tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray) -> None:
    pipe = InpaintPipeline(tiny)
    with pytest.raises(ValueError, match="multiples of 2"):
        pipe(PROMPT, image[:31, :31], box_mask[:31, :31])
    with pytest.raises(ValueError, match="2-D grayscale"):
        pipe(PROMPT, np.stack([image] * 3, axis=-1), box_mask)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        pipe(PROMPT, image * 255.0, box_mask)
    with pytest.raises(ValueError, match="2-D numpy array or a PIL image"):
        pipe(PROMPT, image.tolist(), box_mask)  # type: ignore[arg-type]


def test_bad_arguments(tiny: DiffusionComponents, image: np.ndarray) -> None:
    t2i = TextToImagePipeline(tiny)
    with pytest.raises(ValueError, match="output_type"):
        t2i(PROMPT, output_type="tensor")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_inference_steps"):
        t2i(PROMPT, num_inference_steps=0)
    with pytest.raises(ValueError, match="prompt must be"):
        t2i([])
    with pytest.raises(ValueError, match="strength"):
        EditPipeline(tiny)(PROMPT, image, strength=0.0)
    with pytest.raises(ValueError, match="at least one > 0"):
        OutpaintPipeline(tiny)(PROMPT, image)
    with pytest.raises(ValueError, match="left/right/top/bottom"):
        OutpaintPipeline(tiny)(PROMPT, image, left=-4)


def test_unknown_and_incomplete_model_folders(tiny: DiffusionComponents, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no model folder.*nothing is downloaded"):
        TextToImagePipeline.from_pretrained(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no model_index.json"):
        TextToImagePipeline.from_pretrained(tmp_path / "empty")
    folder = tiny.save_pretrained(tmp_path / "model")
    shutil.rmtree(folder / "unet")
    with pytest.raises(ValueError, match="lacks unet/"):
        TextToImagePipeline.from_pretrained(folder)


def test_pickle_only_weights_are_refused(tiny: DiffusionComponents, tmp_path: Path) -> None:
    folder = tiny.save_pretrained(tmp_path / "model")
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ValueError, match=r"pickle weights.*convert them to \.safetensors"):
        TextToImagePipeline.from_pretrained(folder)


def test_sd_folder_missing_tokenizer(sd_folder: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(sd_folder, tmp_path / "sd"))
    shutil.rmtree(copy / "tokenizer")
    with pytest.raises(ValueError, match="lacks tokenizer/"):
        TextToImagePipeline.from_pretrained(copy)


def test_text_max_length_is_refused_for_a_clip_text_encoder(
    sd_folder: Path, tmp_path: Path
) -> None:
    from radsynth.train import TrainConfig
    from radsynth.train.loop import initial_components

    clip = TextToImagePipeline.from_pretrained(sd_folder).components.prompt_encoder
    assert clip.kept_tokens == 16  # the tiny tokenizer's model_max_length
    assert clip.token_counts(["knee", "chest"]) == [6, 7]  # one token a character, + start, end
    # 16 tokens keep the start, 14 characters ("lateralkneewit") and the end token.
    assert clip.cut_text("knee") == ""
    assert clip.cut_text("lateral knee with effusion") == "h effusion"
    config = TrainConfig(data_dir=tmp_path, output_dir=tmp_path, init_from=sd_folder)
    assert initial_components(config).prompt_encoder.kept_tokens == 16
    config.text_max_length = 16  # what it keeps already: nothing to change
    assert initial_components(config).prompt_encoder.kept_tokens == 16
    config.text_max_length = 32
    with pytest.raises(ValueError, match="MiniLM text encoder; this model's CLIPPromptEncoder"):
        initial_components(config)


def test_model_index_naming_no_unet(tiny: DiffusionComponents, tmp_path: Path) -> None:
    folder = tiny.save_pretrained(tmp_path / "model")
    index = json.loads((folder / "model_index.json").read_text())
    index["unet"] = [None, None]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="names no unet"):
        TextToImagePipeline.from_pretrained(folder)


def test_unparseable_prompts_say_what_was_not_understood(tiny: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(tiny)
    with pytest.raises(ValueError, match="unknown term 'kneee'.*did you mean 'knee'"):
        pipe("An X-ray of the kneee")
    with pytest.raises(ValueError, match="unknown terms 'banana', 'beach'"):
        pipe("a banana on a beach")
    with pytest.raises(ValueError, match="does not fit the hand; use: ring, bracelet"):
        pipe("An X-ray of the hand with a necklace")
    with pytest.raises(ValueError, match="unknown term"):
        InpaintPipeline(tiny)("remove the pacemakr", np.zeros((32, 32)), np.eye(32))


def test_users_stable_diffusion_folders_that_cannot_be_read_say_why(
    sd_folder: Path, tmp_path: Path
) -> None:
    # Each was a traceback (OSError, RuntimeError, OverflowError at the first prompt) or an
    # error giving the wrong reason.
    def broken(name: str, change) -> Path:  # type: ignore[no-untyped-def]
        copy = Path(shutil.copytree(sd_folder, tmp_path / name))
        change(copy)
        return copy

    def fp16_only(folder: Path) -> None:
        weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
        weights.rename(weights.with_name("diffusion_pytorch_model.fp16.safetensors"))

    def truncated(folder: Path) -> None:
        weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:200])

    def xl(folder: Path) -> None:
        index = json.loads((folder / "model_index.json").read_text())
        index["_class_name"] = "StableDiffusionXLPipeline"
        (folder / "model_index.json").write_text(json.dumps(index))

    cases = [
        ("fp16", fp16_only, "only half-precision variant weights"),
        ("noconfig", lambda f: (f / "unet" / "config.json").unlink(), "lacks unet/config.json"),
        (
            "nosched",
            lambda f: (f / "scheduler" / "scheduler_config.json").unlink(),
            "lacks scheduler/scheduler_config.json",
        ),
        ("truncated", truncated, "could not be loaded"),
        ("tok", lambda f: [p.unlink() for p in (f / "tokenizer").iterdir()], "neither tokenizer"),
        ("xl", xl, "is a StableDiffusionXLPipeline folder"),
    ]
    for name, change, message in cases:
        with pytest.raises(ValueError, match=message):
            TextToImagePipeline.from_pretrained(broken(name, change))
    single = tmp_path / "model.safetensors"
    single.write_bytes(b"")
    with pytest.raises(ValueError, match="is a single-file checkpoint"):
        TextToImagePipeline.from_pretrained(single)
    # A tokenizer without tokenizer_config.json ("no limit") pads to the encoder's positions.
    loose = broken("loose", lambda f: (f / "tokenizer" / "tokenizer_config.json").unlink())
    pipe = TextToImagePipeline.from_pretrained(loose)
    assert pipe("knee", num_inference_steps=2).images.shape == (1, 32, 32)
