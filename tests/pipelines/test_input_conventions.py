"""How the pipelines read masks, images, devices and sampling arguments (user-testing defects)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from radsynth.models import DiffusionComponents
from radsynth.pipelines import (
    EditPipeline,
    InpaintPipeline,
    OutpaintPipeline,
    TextToImagePipeline,
    image_to_tensor,
    run_at_model_scale,
)
from radsynth.pipelines.pipeline_base import mask_to_tensor

PROMPT = "PA chest radiograph"


# -- 1. Masks: 0/1 label maps of any integer type, white on black, bool, float ------------------


def _box(dtype: type, value: int | float | bool) -> np.ndarray:
    mask = np.zeros((32, 32), dtype=dtype)
    mask[8:20, 10:26] = value
    return mask


MASKS = {
    "uint8 0/1 label map": _box(np.uint8, 1),
    "uint16 0/1 label map": _box(np.uint16, 1),
    "int32 0/1 label map": _box(np.int32, 1),
    "int64 0/1 label map": _box(np.int64, 1),
    "bool": _box(np.bool_, True),
    "uint8 white": _box(np.uint8, 255),
    "uint16 white": _box(np.uint16, 65535),
    "int64 white 255": _box(np.int64, 255),
    "int32 white 65535": _box(np.int32, 65535),
    "float": _box(np.float32, 1.0),
    "PIL L 0/1": Image.fromarray(_box(np.uint8, 1)),
    "PIL L white": Image.fromarray(_box(np.uint8, 255)),
    "PIL I 0/1": Image.fromarray(_box(np.int32, 1)),
    "PIL 1": Image.fromarray(_box(np.uint8, 255)).convert("1"),
    "PIL I;16 0/1": Image.fromarray(_box(np.uint16, 1)),
}


@pytest.mark.parametrize("kind", sorted(MASKS))
def test_every_mask_convention_selects_the_box(kind: str) -> None:
    selected = mask_to_tensor(MASKS[kind], 32, 32)
    assert selected.dtype == torch.bool
    assert torch.equal(selected[0, 0], torch.from_numpy(_box(np.bool_, True)))


def test_integer_masks_below_half_white_select_nothing() -> None:
    # 0/2 is no label map and 2/255 is below half white: nothing is selected, and the error says
    # which conventions a mask follows.
    with pytest.raises(ValueError, match=r"selects no pixels.*0/1 label map.*255 in uint8"):
        mask_to_tensor(_box(np.int64, 2), 32, 32)
    # uint16 white is 65535: 255 is dark on that scale.
    with pytest.raises(ValueError, match="selects no pixels"):
        mask_to_tensor(_box(np.uint16, 255), 32, 32)


def test_unusable_masks_are_refused_with_what_is_accepted() -> None:
    with pytest.raises(ValueError, match=r"bool, float in \[0, 1\], or an integer type"):
        mask_to_tensor(_box(np.complex64, 1), 32, 32)
    with pytest.raises(ValueError, match=r"values -1\.\.1"):
        mask_to_tensor(_box(np.int32, -1) + _box(np.int32, 1).T, 32, 32)
    with pytest.raises(ValueError, match="0..65535"):
        mask_to_tensor(_box(np.int64, 70000), 32, 32)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        mask_to_tensor(_box(np.float32, 255.0), 32, 32)


def test_inpainting_with_a_uint8_label_map_matches_the_float_mask(
    tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    pipe = InpaintPipeline(tiny)
    pipe.set_progress_bar_config(disable=True)
    runs = [
        pipe(PROMPT, image, mask, num_inference_steps=2, generator=torch.Generator().manual_seed(3))
        for mask in (
            box_mask,
            box_mask.astype(np.uint8),
            Image.fromarray(box_mask.astype(np.uint8)),
        )
    ]
    reference = np.asarray(runs[0].images)
    for run in runs[1:]:
        np.testing.assert_array_equal(np.asarray(run.images), reference)
    kept = box_mask == 0
    np.testing.assert_array_equal(reference[0][kept], image[kept])
    assert not np.array_equal(reference[0][~kept], image[~kept])


# -- 2. PIL float ("F") and 32-bit integer ("I") images ---------------------------------------


def test_pil_float_images_read_as_float_arrays(image: np.ndarray) -> None:
    read = image_to_tensor(Image.fromarray(image, mode="F"))[0, 0].numpy()
    np.testing.assert_array_equal(read, image)
    assert read.max() > 0.5  # not truncated to black by a conversion to "L"
    with pytest.raises(ValueError, match=r"finite and in \[0, 1\]"):
        image_to_tensor(Image.fromarray(image * 255.0, mode="F"))


def test_pil_mode_i_reads_as_16_bit_only_where_it_fits(
    image: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    sixteen = np.round(image * 65535).astype(np.int32)
    read = image_to_tensor(Image.fromarray(sixteen, mode="I"))[0, 0].numpy()
    np.testing.assert_allclose(read, sixteen / 65535.0, atol=1e-7)
    with pytest.raises(ValueError, match=r"mode \"I\".*outside 16-bit 0\.\.65535"):
        image_to_tensor(Image.fromarray(sixteen * 2, mode="I"))
    with pytest.raises(ValueError, match="outside 16-bit"):
        image_to_tensor(Image.fromarray(sixteen - 20000, mode="I"))
    # An 8-bit image converted to "I" is read on the 16-bit scale, with a warning saying so.
    eight = Image.fromarray(np.round(image * 255).astype(np.uint8)).convert("I")
    with caplog.at_level(logging.WARNING, logger="radsynth.pipelines"):
        image_to_tensor(eight)
    assert "look like 8-bit data" in caplog.text


# -- 3. .to(dtype) ----------------------------------------------------------------------------


def test_to_accepts_devices_and_float32_and_refuses_half_precision(
    tiny: DiffusionComponents,
) -> None:
    pipe = TextToImagePipeline(tiny)
    pipe.set_progress_bar_config(disable=True)
    for dtype in (torch.float16, torch.bfloat16):
        with pytest.raises(ValueError, match="compute in float32"):
            pipe.to(dtype)
        with pytest.raises(ValueError, match="compute in float32"):
            pipe.to("cpu", dtype)
        with pytest.raises(ValueError, match="compute in float32"):
            pipe.to(device="cpu", dtype=dtype)
    assert pipe.to("cpu") is pipe
    assert pipe.to(torch.float32) is pipe and pipe.to("cpu", torch.float32) is pipe
    assert next(pipe.unet.parameters()).dtype == torch.float32
    images = pipe(PROMPT, num_inference_steps=1).images
    assert np.isfinite(np.asarray(images)).all()


# -- 4. Sampling arguments ---------------------------------------------------------------------


def test_sampling_arguments_are_validated(tiny: DiffusionComponents, image: np.ndarray) -> None:
    t2i = TextToImagePipeline(tiny)
    train_steps = int(t2i.scheduler.config.num_train_timesteps)
    with pytest.raises(ValueError, match=f"between 1 and the scheduler's {train_steps}"):
        t2i(PROMPT, num_inference_steps=train_steps + 1)
    with pytest.raises(ValueError, match="num_inference_steps must be an integer, got 2.7"):
        t2i(PROMPT, num_inference_steps=2.7)  # type: ignore[arg-type]
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="guidance_scale must be a finite number >= 0"):
            t2i(PROMPT, guidance_scale=bad)
    with pytest.raises(ValueError, match="num_images_per_prompt"):
        t2i(PROMPT, num_images_per_prompt=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"prompt must be a string.*got NoneType"):
        t2i(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt must be a string"):
        InpaintPipeline(tiny)(None, image, image > 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt must be a string"):
        EditPipeline(tiny)(None, image)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt must be a string"):
        OutpaintPipeline(tiny)(None, image, left=8)  # type: ignore[arg-type]


def test_zero_or_fractional_sizes_are_refused(tiny: DiffusionComponents) -> None:
    t2i = TextToImagePipeline(tiny)
    with pytest.raises(ValueError, match="is 0x32 pixels"):
        t2i(PROMPT, height=0)
    with pytest.raises(ValueError, match="is 32x0 pixels"):
        t2i(PROMPT, width=0)
    with pytest.raises(ValueError, match="must be integers"):
        t2i(PROMPT, height=32.0)  # type: ignore[arg-type]
    t2i.set_progress_bar_config(disable=True)
    images = np.asarray(t2i(PROMPT, num_inference_steps=1).images)
    assert images.shape == (1, tiny.sample_size, tiny.sample_size)  # None: the native size


# -- 5. 12-bit data in uint16 ------------------------------------------------------------------


def test_twelve_bit_data_in_uint16_warn_and_are_not_rescaled(
    image: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    twelve = np.round(image * 4095).astype(np.uint16)
    with caplog.at_level(logging.WARNING, logger="radsynth.pipelines"):
        read = image_to_tensor(twelve)
    assert "look like 12-bit data" in caplog.text and "/ 4095" in caplog.text
    np.testing.assert_allclose(read[0, 0].numpy(), twelve / 65535.0, atol=1e-7)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="radsynth.pipelines"):
        image_to_tensor(np.round(image * 65535).astype(np.uint16))
    assert caplog.text == ""


# -- 6. run_at_model_scale without a mask --------------------------------------------------------


def test_fitted_inpainting_refuses_a_whole_image_mask_on_non_square_images(
    tiny: DiffusionComponents,
) -> None:
    wide = np.random.default_rng(0).random((24, 48)).astype(np.float32)
    pipe = InpaintPipeline(tiny)
    with pytest.raises(ValueError, match="covers the whole image"):
        run_at_model_scale(pipe, wide, None, prompt=PROMPT, num_inference_steps=1)
    with pytest.raises(ValueError, match="covers the whole image"):
        run_at_model_scale(pipe, wide, np.ones_like(wide), prompt=PROMPT, num_inference_steps=1)
    # Editing the whole image stays allowed.
    edit = EditPipeline(tiny)
    edit.set_progress_bar_config(disable=True)
    output, _ = run_at_model_scale(edit, wide, None, prompt=PROMPT, num_inference_steps=2)
    assert np.asarray(output.images).shape == (1, 24, 48)


# -- save_pretrained(weights_dtype) stores a CLIP text encoder in it -----------------------------


def test_half_precision_save_includes_the_clip_text_encoder(
    sd_folder: Path, tmp_path: Path
) -> None:
    pipe = TextToImagePipeline.from_pretrained(sd_folder)
    pipe.save_pretrained(tmp_path / "half", weights_dtype=torch.float16)
    for part in ("unet", "text_encoder"):
        (weights,) = (tmp_path / "half" / part).glob("*.safetensors")
        with safe_open(str(weights), "pt") as stored:
            names = stored.keys()
            assert {stored.get_tensor(name).dtype for name in names} == {torch.float16}
    encoder = pipe.components.prompt_encoder.text_encoder  # type: ignore[attr-defined]
    assert next(encoder.parameters()).dtype == torch.float32  # the pipeline's copy is untouched
    reloaded = TextToImagePipeline.from_pretrained(tmp_path / "half")
    text_encoder = reloaded.components.prompt_encoder.text_encoder  # type: ignore[attr-defined]
    assert {p.dtype for p in text_encoder.parameters()} == {torch.float32}
    reloaded.set_progress_bar_config(disable=True)
    assert np.isfinite(np.asarray(reloaded(PROMPT, num_inference_steps=1).images)).all()
