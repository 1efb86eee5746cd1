"""Every pipeline on CPU with tiny random models: shapes, kept pixels, seeds, round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from radsynth.models import DiffusionComponents
from radsynth.pipelines import (
    EditPipeline,
    InpaintPipeline,
    OutpaintPipeline,
    TextToImagePipeline,
)

PROMPT = "AP radiograph of the left knee"


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_text_to_image_gives_grayscale_batches(components: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(components)
    images = pipe([PROMPT, ""], num_images_per_prompt=2, generator=seeded(0)).images
    assert isinstance(images, np.ndarray)
    assert images.shape == (4, 32, 32) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std(axis=(1, 2)).min() > 0.0  # not blank
    assert not np.array_equal(images[0], images[1])  # one noise draw per image


def test_text_to_image_other_size_and_pil_output(tiny: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(tiny)
    images = pipe(PROMPT, height=16, width=48, generator=seeded(0), output_type="pil").images
    assert isinstance(images[0], Image.Image)
    assert images[0].mode == "L" and images[0].size == (48, 16)


def test_same_seed_same_images_other_seed_other_images(tiny: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(tiny)
    first = pipe(PROMPT, generator=seeded(7)).images
    again = pipe(PROMPT, generator=seeded(7)).images
    other = pipe(PROMPT, generator=seeded(8)).images
    assert np.array_equal(first, again)
    assert np.abs(first - other).mean() > 1e-3


def test_prompt_and_guidance_change_the_image(tiny: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(tiny)
    base = pipe(PROMPT, guidance_scale=3.0, generator=seeded(1)).images
    other_prompt = pipe("axial CT of the head", guidance_scale=3.0, generator=seeded(1)).images
    unguided = pipe(PROMPT, guidance_scale=1.0, generator=seeded(1)).images
    assert not np.array_equal(base, other_prompt)
    assert not np.array_equal(base, unguided)


def test_a_prompt_past_the_kept_tokens_is_named_in_a_warning(
    tiny: DiffusionComponents, caplog: pytest.LogCaptureFixture
) -> None:
    pipe = TextToImagePipeline(tiny)
    pipe.set_progress_bar_config(disable=True)
    long = "Axial CT of the head of a 37-year-old man with a right intracranial haemorrhage"
    with caplog.at_level("WARNING", logger="radsynth.pipelines"):
        pipe(["PA chest radiograph", long, long], num_inference_steps=1)
    # The tiny model keeps 16 tokens: the short prompt fits, the long one is named once with
    # the words it loses, the finding among them.
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "keeps 16 tokens" in message and "haemorrhage" in message
    assert "chest" not in message


def test_inpaint_keeps_unmasked_pixels_bit_identical(
    components: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    pipe = InpaintPipeline(components)
    result = pipe(PROMPT, image, box_mask, num_images_per_prompt=2, generator=seeded(0)).images
    assert result.shape == (2, 32, 32)
    outside = box_mask == 0
    for out in result:
        assert np.array_equal(out[outside], image[outside])
        assert np.abs(out[~outside] - image[~outside]).mean() > 1e-3


def test_inpaint_pil_in_pil_out_keeps_pixels(
    tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    original = Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L")
    mask = Image.fromarray((box_mask * 255).astype(np.uint8), mode="L")
    out = InpaintPipeline(tiny)(PROMPT, original, mask, generator=seeded(0), output_type="pil")
    kept = np.asarray(out.images[0])[box_mask == 0]
    assert np.array_equal(kept, np.asarray(original)[box_mask == 0])


def test_inpaint_is_reproducible(
    tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    pipe = InpaintPipeline(tiny)
    first = pipe(PROMPT, image, box_mask, generator=seeded(3)).images
    assert np.array_equal(first, pipe(PROMPT, image, box_mask, generator=seeded(3)).images)
    assert not np.array_equal(first, pipe(PROMPT, image, box_mask, generator=seeded(4)).images)


def test_outpaint_extends_and_keeps_the_original(
    components: DiffusionComponents, image: np.ndarray
) -> None:
    pipe = OutpaintPipeline(components)
    result = pipe(PROMPT, image, left=8, right=40, bottom=16, generator=seeded(0)).images
    assert result.shape == (1, 48, 80)
    assert np.array_equal(result[0, 0:32, 8:40], image)
    new = np.ones((48, 80), dtype=bool)
    new[0:32, 8:40] = False
    assert result[0][new].std() > 0.0  # the extension was generated, not left blank


def test_outpaint_is_repeatable_far_past_the_native_size(
    tiny: DiffusionComponents, image: np.ndarray
) -> None:
    pipe = OutpaintPipeline(tiny)
    once = pipe(PROMPT, image, top=64, generator=seeded(2)).images[0]
    assert once.shape == (96, 32)
    twice = pipe(PROMPT, once, right=16, generator=seeded(2)).images[0]
    assert twice.shape == (96, 48)
    assert np.array_equal(twice[:, :32], once)
    assert np.array_equal(twice[64:, :32], image)


def test_outpaint_layout_pass_plans_the_whole_canvas(
    tiny: DiffusionComponents, image: np.ndarray
) -> None:
    pipe = OutpaintPipeline(tiny)
    plain = pipe(PROMPT, image, top=64, generator=seeded(2)).images[0]
    call = {"top": 64, "layout_prompt": "AP radiograph of the whole body", "layout_strength": 0.5}
    planned = pipe(PROMPT, image, generator=seeded(2), **call).images[0]
    assert planned.shape == (96, 32)
    assert np.array_equal(planned[64:], image)  # the original comes back exactly
    assert np.array_equal(planned, pipe(PROMPT, image, generator=seeded(2), **call).images[0])
    assert np.abs(planned[:64] - plain[:64]).mean() > 1e-3  # the tiles started from the plan
    # A canvas that fits one tile has nothing to plan: the layout prompt changes nothing.
    small = pipe(PROMPT, image[:, :16], right=16, generator=seeded(3)).images
    same = pipe(PROMPT, image[:, :16], right=16, generator=seeded(3), layout_prompt="x").images
    assert np.array_equal(small, same)
    with pytest.raises(ValueError, match="layout_strength"):
        pipe(PROMPT, image, top=64, layout_prompt="AP radiograph", layout_strength=0.0)


def test_outpaint_layout_is_drawn_around_the_shrunk_original(tiny: DiffusionComponents) -> None:
    """The plan keeps the known pixels where they are: a bright known block (shrunk, kept
    exactly at the small scale, enlarged back) is still bright where the original was."""
    pipe = OutpaintPipeline(tiny)
    canvas = torch.zeros(1, 1, 128, 64)
    known = torch.zeros(128, 64, dtype=torch.bool)
    canvas[:, :, 64:128, 0:64] = 0.9
    known[64:128, 0:64] = True
    embeds = pipe.encode_prompt(["AP radiograph of the whole body"], 1, False)
    guess = pipe.layout(canvas, known, embeds, 2, 1.0, seeded(0))
    assert guess.shape == (1, 1, 128, 64)
    assert torch.allclose(guess[0, 0, 72:120, 8:56], torch.tensor(0.9), atol=1e-4)


def test_edit_changes_only_the_mask(
    components: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    edited = EditPipeline(components)(
        "fracture", image, box_mask, strength=0.5, num_images_per_prompt=2, generator=seeded(0)
    ).images
    inside = box_mask == 1
    for out in edited:
        assert np.array_equal(out[~inside], image[~inside])
        assert np.abs(out[inside] - image[inside]).mean() > 1e-3


def test_edit_strength_sets_how_far_the_image_moves(
    tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    pipe = EditPipeline(tiny)
    inside = box_mask == 1

    def change(strength: float) -> float:
        edited = pipe(
            "fracture",
            image,
            box_mask,
            strength=strength,
            num_inference_steps=10,
            generator=seeded(0),
        ).images[0]
        return float(np.abs(edited[inside] - image[inside]).mean())

    assert 0.0 < change(0.1) < change(1.0)


def test_edit_without_mask_edits_the_whole_image(
    tiny: DiffusionComponents, image: np.ndarray
) -> None:
    edited = EditPipeline(tiny)("fracture", image, strength=0.5, generator=seeded(0)).images[0]
    assert edited.shape == image.shape
    assert np.abs(edited - image).mean() > 1e-3


def test_guidance_cutoff_limits_guidance_to_high_noise_steps(tiny: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(tiny)
    assert pipe.guidance_cutoff == 0.0  # the tiny preset guides every step
    guided = pipe(PROMPT, guidance_scale=3.0, num_inference_steps=4, generator=seeded(2)).images
    unguided = pipe(PROMPT, guidance_scale=1.0, num_inference_steps=4, generator=seeded(2)).images
    try:
        # Cutoff 1: no timestep reaches T, so no step is guided: the unguided images, exactly.
        pipe.guidance_cutoff = 1.0
        none = pipe(PROMPT, guidance_scale=3.0, num_inference_steps=4, generator=seeded(2)).images
        # Cutoff 0.5: the first (noisiest) steps are guided, the rest are not: a third result.
        pipe.guidance_cutoff = 0.5
        half = pipe(PROMPT, guidance_scale=3.0, num_inference_steps=4, generator=seeded(2)).images
    finally:
        pipe.guidance_cutoff = 0.0
    assert np.array_equal(none, unguided)
    assert not np.array_equal(half, guided) and not np.array_equal(half, unguided)
    with pytest.raises(ValueError, match="guidance_cutoff"):
        pipe.guidance_cutoff = 1.5


def test_guidance_cutoff_is_saved_with_the_model(tmp_path: Path) -> None:
    from radsynth.models import build_components

    components = build_components("tiny", seed=0)
    components.defaults["guidance_cutoff"] = 0.25
    components.save_pretrained(tmp_path / "model")
    assert TextToImagePipeline.from_pretrained(tmp_path / "model").guidance_cutoff == 0.25


def test_pipelines_lay_the_unet_out_channels_last_without_changing_the_images() -> None:
    from radsynth.models import build_components

    components = build_components("tiny-patch", seed=0)
    assert not components.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    sample = torch.randn(2, components.model_channels, 16, 16, generator=seeded(1))
    text = torch.randn(2, 6, components.prompt_encoder.hidden_size, generator=seeded(2))
    steps = torch.tensor([10, 500])
    with torch.no_grad():
        # The layout a plain load gives (NCHW), timed by the benchmark's --compare-layout.
        contiguous = components.unet(sample, steps, encoder_hidden_states=text).sample
        pipe = TextToImagePipeline(components)
        assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
        last = pipe.unet(sample, steps, encoder_hidden_states=text).sample
    assert last.shape == contiguous.shape
    assert torch.allclose(last, contiguous, atol=1e-5)
    # The whole sampler: the same images as with the weights contiguous, up to float rounding.
    images = pipe(PROMPT, num_images_per_prompt=2, generator=seeded(3)).images
    pipe.unet.to(memory_format=torch.contiguous_format)
    again = pipe(PROMPT, num_images_per_prompt=2, generator=seeded(3)).images
    assert np.abs(np.asarray(images) - np.asarray(again)).max() < 1e-4


def test_save_load_round_trip_gives_identical_images(
    components: DiffusionComponents, tmp_path: Path, image: np.ndarray, box_mask: np.ndarray
) -> None:
    pipe = InpaintPipeline(components)
    pipe.save_pretrained(tmp_path / "model")
    loaded = InpaintPipeline.from_pretrained(tmp_path / "model")
    before = pipe(PROMPT, image, box_mask, generator=seeded(5)).images
    after = loaded(PROMPT, image, box_mask, generator=seeded(5)).images
    assert np.array_equal(before, after)
    t2i = TextToImagePipeline(components)(PROMPT, generator=seeded(5)).images
    assert np.array_equal(
        t2i, TextToImagePipeline(loaded.components)(PROMPT, generator=seeded(5)).images
    )


def test_scheduler_can_be_swapped(tiny: DiffusionComponents) -> None:
    from diffusers import DDIMScheduler

    pipe = TextToImagePipeline(tiny)
    default = pipe(PROMPT, generator=seeded(0)).images
    saved = pipe.scheduler
    try:
        pipe.scheduler = DDIMScheduler.from_config(saved.config)
        ddim = pipe(PROMPT, num_inference_steps=3, generator=seeded(0)).images
    finally:
        pipe.scheduler = saved
    assert ddim.shape == default.shape and not np.array_equal(ddim, default)


def test_stable_diffusion_folder_runs_in_grayscale(
    sd_folder: Path, image: np.ndarray, box_mask: np.ndarray, tmp_path: Path
) -> None:
    t2i = TextToImagePipeline.from_pretrained(sd_folder)
    assert t2i.vae.config.in_channels == 3
    images = t2i(PROMPT, num_inference_steps=2, generator=seeded(0)).images
    assert images.shape == (1, 32, 32)
    inpaint = InpaintPipeline(t2i.components)
    out = inpaint(PROMPT, image, box_mask, num_inference_steps=2, generator=seeded(0)).images
    assert np.array_equal(out[0][box_mask == 0], image[box_mask == 0])
    # Gray in, RGB inside: the three decoder channels are folded back with luma weights.
    rgb = t2i.components.image_to_model(torch.from_numpy(image)[None, None])
    assert rgb.shape == (1, 4, 16, 16)
    t2i.save_pretrained(tmp_path / "copy")
    again = TextToImagePipeline.from_pretrained(tmp_path / "copy")
    assert np.array_equal(images, again(PROMPT, num_inference_steps=2, generator=seeded(0)).images)


def test_a_stable_diffusion_folder_takes_its_prompts_as_written(sd_folder: Path) -> None:
    # radsynth's vocabulary refused ordinary English ("a photo of a cat": "did you mean
    # 'ct'?") and rewrote prompts it could read ("Big right-sided pleural effusion" reached
    # CLIP as "Image with a right pleural effusion") for a model that never learnt it.
    pipe = TextToImagePipeline.from_pretrained(sd_folder)
    encoder = pipe.components.prompt_encoder
    for prompt in ("a photo of a cat", "Big right-sided pleural effusion, mild"):
        embeds = pipe.encode_prompt([prompt], 1, do_guidance=False)
        torch.testing.assert_close(embeds, encoder.encode([prompt], pipe.device))
    images = pipe("chest x-ray, high quality", num_inference_steps=2, generator=seeded(0))
    assert images.images.shape == (1, 32, 32)
