"""The diffusers call conventions every pipeline offers: return_dict, output_type "pt",
negative_prompt, callback_on_step_end, latents, tensor images, set_progress_bar_config, the
guidance cutoff kept with the components, and Stable Diffusion folders diffusers loads back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import radsynth.pipelines.pipeline_base as pipeline_base
from radsynth.models import DiffusionComponents, build_components
from radsynth.pipelines import (
    EditPipeline,
    InpaintPipeline,
    OutpaintPipeline,
    RadiologyPipeline,
    TextToImagePipeline,
)

PROMPT = "AP radiograph of the left knee"
NEGATIVE = "PA chest radiograph"
STEPS = 3


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_caller(
    kind: str, components: DiffusionComponents, image: np.ndarray, mask: np.ndarray
) -> tuple[RadiologyPipeline, Callable[..., Any]]:
    """A pipeline of `kind` and a function calling it on the test image with seed 0."""
    call: dict[str, Any] = {"num_inference_steps": STEPS, "guidance_scale": 3.0}
    pipe: Any
    if kind == "text-to-image":
        pipe = TextToImagePipeline(components)
        args: tuple[Any, ...] = (PROMPT,)
    elif kind == "inpaint":
        pipe = InpaintPipeline(components)
        args = (PROMPT, image, mask)
    elif kind == "edit":
        pipe = EditPipeline(components)
        args = (PROMPT, image, mask)
        call["strength"] = 1.0  # every step runs, as in the others
    else:
        pipe = OutpaintPipeline(components)
        args = (PROMPT, image)
        call["right"] = 32  # a 32 x 64 canvas: two tiles to fill
    pipe.set_progress_bar_config(disable=True)

    def run(**kwargs: Any) -> Any:
        options = {**call, **kwargs}
        options.setdefault("generator", seeded(0))
        return pipe(*args, **options)

    return pipe, run


KINDS = ["text-to-image", "inpaint", "edit", "outpaint"]


# -- 1. return_dict and output_type -----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_return_dict_false_gives_a_tuple_of_the_images(
    kind: str, tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    _, run = make_caller(kind, tiny, image, box_mask)
    as_dict = run().images
    as_tuple = run(return_dict=False)
    assert isinstance(as_tuple, tuple)
    assert np.array_equal(as_tuple[0], as_dict)


@pytest.mark.parametrize("kind", KINDS)
def test_output_type_pt_is_the_numpy_images_as_a_float_tensor(
    kind: str, tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    _, run = make_caller(kind, tiny, image, box_mask)
    arrays = run().images
    tensor = run(output_type="pt").images
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    assert tensor.shape == (arrays.shape[0], 1, *arrays.shape[1:])
    assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0
    assert np.array_equal(tensor[:, 0].numpy(), arrays)
    pil = run(output_type="pil", return_dict=False)[0]
    assert isinstance(pil[0], Image.Image) and pil[0].size == arrays.shape[:0:-1]


def test_an_unknown_output_type_lists_the_choices(tiny: DiffusionComponents) -> None:
    with pytest.raises(ValueError, match="'np'.*'pil'.*'pt'.*got 'latent'"):
        TextToImagePipeline(tiny)(PROMPT, output_type="latent")  # type: ignore[call-overload]


# -- 2. negative_prompt -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_negative_prompt_changes_guided_images_only(
    kind: str,
    tiny: DiffusionComponents,
    image: np.ndarray,
    box_mask: np.ndarray,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, run = make_caller(kind, tiny, image, box_mask)
    plain = run().images
    assert not np.array_equal(run(negative_prompt=NEGATIVE).images, plain)
    # The empty negative prompt is the default unconditional input: the same images, exactly.
    assert np.array_equal(run(negative_prompt="").images, plain)
    unguided = run(guidance_scale=1.0).images
    with caplog.at_level("WARNING", logger="radsynth.pipelines"):
        negated = run(guidance_scale=1.0, negative_prompt=NEGATIVE).images
    assert np.array_equal(negated, unguided)
    assert any(
        "no effect without classifier-free guidance" in r.getMessage() for r in caplog.records
    )


def test_negative_prompts_are_read_like_prompts_one_per_prompt(tiny: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(tiny)
    pipe.set_progress_bar_config(disable=True)
    call: dict[str, Any] = {"num_inference_steps": STEPS, "guidance_scale": 3.0}
    # The vocabulary reads both wordings as "PA X-ray of the chest": the same images.
    one = pipe(PROMPT, negative_prompt="PA chest radiograph", generator=seeded(1), **call)
    other = pipe(PROMPT, negative_prompt="chest PA radiograph", generator=seeded(1), **call)
    assert np.array_equal(one.images, other.images)
    with pytest.raises(ValueError, match="unknown term 'kneee'"):
        pipe(PROMPT, negative_prompt="X-ray of the kneee", **call)
    # One per prompt: the second image alone gets a negative prompt.
    pair = pipe([PROMPT, PROMPT], negative_prompt=["", NEGATIVE], generator=seeded(1), **call)
    alone = pipe(PROMPT, generator=seeded(1), **call).images[0]
    # (A batch of two rounds differently from one image alone: close, not bit-identical.)
    np.testing.assert_allclose(pair.images[0], alone, atol=1e-5)
    assert np.abs(pair.images[1] - pair.images[0]).max() > 1e-2
    with pytest.raises(ValueError, match="negative_prompt has 2 prompts but prompt has 1"):
        pipe(PROMPT, negative_prompt=[NEGATIVE, NEGATIVE], **call)
    with pytest.raises(ValueError, match="negative_prompt must be a string"):
        pipe(PROMPT, negative_prompt=3, **call)  # type: ignore[call-overload]


# -- 3. callback_on_step_end --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_step_end_callback_runs_once_per_step_and_its_latents_are_used(
    kind: str, tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    pipe, run = make_caller(kind, tiny, image, box_mask)
    calls: list[tuple[int, float, list[str]]] = []

    def record(p: Any, step: int, t: torch.Tensor, kwargs: dict[str, Any]) -> dict[str, Any]:
        assert p is pipe
        calls.append((step, float(t), sorted(kwargs)))
        return kwargs

    plain = run().images
    assert np.array_equal(run(callback_on_step_end=record).images, plain)
    passes = 2 if kind == "outpaint" else 1  # the outpainting canvas is two tiles
    assert [c[0] for c in calls] == list(range(STEPS)) * passes
    assert all(names == ["latents"] for _, _, names in calls)
    timesteps = [c[1] for c in calls[:STEPS]]
    assert timesteps == sorted(timesteps, reverse=True) and len(set(timesteps)) == STEPS

    def flatten(p: Any, step: int, t: torch.Tensor, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"latents": torch.zeros_like(kwargs["latents"])}

    assert not np.array_equal(run(callback_on_step_end=flatten).images, plain)


def test_the_step_end_callback_gets_and_sets_the_embeddings(tiny: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(tiny)
    pipe.set_progress_bar_config(disable=True)
    seen: dict[str, Any] = {}
    names = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def look(p: Any, step: int, t: torch.Tensor, kwargs: dict[str, Any]) -> dict[str, Any]:
        seen.update(kwargs)
        return {}

    call: dict[str, Any] = {"num_inference_steps": STEPS, "num_images_per_prompt": 2}
    look_all: dict[str, Any] = {"callback_on_step_end_tensor_inputs": names}
    pipe(PROMPT, guidance_scale=3.0, callback_on_step_end=look, **call, **look_all)
    assert sorted(seen) == sorted(names)
    assert seen["prompt_embeds"].shape == seen["negative_prompt_embeds"].shape
    assert seen["prompt_embeds"].shape[0] == 2 and seen["latents"].shape[0] == 2
    seen.clear()
    pipe(PROMPT, guidance_scale=1.0, callback_on_step_end=look, **call, **look_all)
    assert seen["negative_prompt_embeds"] is None  # no unconditional input without guidance

    # Swapping the unconditional embedding after the first step is a negative prompt from then.
    negative = pipe.encode_prompt([NEGATIVE], 1, True)[1:]

    def negate(p: Any, step: int, t: torch.Tensor, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"negative_prompt_embeds": negative} if step == 0 else {}

    call = {"num_inference_steps": STEPS, "guidance_scale": 3.0}
    plain = pipe(PROMPT, generator=seeded(0), **call).images
    swapped = pipe(
        PROMPT,
        generator=seeded(0),
        callback_on_step_end=negate,
        callback_on_step_end_tensor_inputs=["negative_prompt_embeds"],
        **call,
    ).images
    assert not np.array_equal(swapped, plain)


def test_step_end_callback_errors(tiny: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(tiny)
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match="tensor_inputs must be a list of names among"):
        pipe(PROMPT, callback_on_step_end_tensor_inputs=["noise_pred"], num_inference_steps=1)
    with pytest.raises(TypeError, match="must return a dict"):
        pipe(PROMPT, callback_on_step_end=lambda *a: None, num_inference_steps=1)  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="keep the shape"):
        pipe(
            PROMPT,
            callback_on_step_end=lambda p, i, t, k: {"latents": k["latents"][:, :, :4]},
            num_inference_steps=1,
        )


# -- 4. latents ---------------------------------------------------------------------------------


def test_given_latents_are_the_initial_noise(components: DiffusionComponents) -> None:
    pipe = TextToImagePipeline(components)
    pipe.set_progress_bar_config(disable=True)
    shape = pipe.model_shape(2, 32, 32)
    noise = torch.randn(shape, generator=seeded(5))
    drawn = pipe(
        PROMPT, num_images_per_prompt=2, generator=seeded(5), num_inference_steps=STEPS
    ).images
    given = pipe(
        PROMPT, num_images_per_prompt=2, latents=noise.clone(), num_inference_steps=STEPS
    ).images
    assert np.array_equal(given, drawn)
    other = pipe(
        PROMPT, num_images_per_prompt=2, latents=noise.flip(0), num_inference_steps=STEPS
    ).images
    assert not np.allclose(drawn[0], drawn[1], atol=1e-2)
    np.testing.assert_allclose(other[::-1], drawn, atol=1e-5)  # each image its own noise
    with pytest.raises(ValueError, match=rf"latents must have shape \(2, {shape[1]},.*got"):
        pipe(PROMPT, num_images_per_prompt=2, latents=noise[:, :, :4])
    with pytest.raises(ValueError, match="latents must have shape"):
        pipe(PROMPT, latents=noise)  # one prompt, one image: a batch of 1
    with pytest.raises(ValueError, match="latents must be a torch tensor"):
        pipe([PROMPT, ""], latents=noise.numpy())  # type: ignore[call-overload]


# -- 5. Tensors and (1, H, W) arrays as images and masks ---------------------------------------


def test_tensor_and_batched_axis_images_and_masks_are_read_as_the_2d_array(
    tiny: DiffusionComponents, image: np.ndarray, box_mask: np.ndarray
) -> None:
    pipe = InpaintPipeline(tiny)
    pipe.set_progress_bar_config(disable=True)

    def inpaint(img: Any, mask: Any) -> np.ndarray:
        out = pipe(PROMPT, img, mask, num_inference_steps=STEPS, generator=seeded(0))
        return np.asarray(out.images)

    expected = inpaint(image, box_mask)
    t_image, t_mask = torch.from_numpy(image), torch.from_numpy(box_mask)
    for shape in ((32, 32), (1, 32, 32), (1, 1, 32, 32)):
        assert np.array_equal(inpaint(t_image.reshape(shape), t_mask.reshape(shape)), expected)
    assert np.array_equal(inpaint(image[None], box_mask[None]), expected)
    assert np.array_equal(inpaint(image[..., None], box_mask[..., None]), expected)  # (H, W, 1)
    assert np.array_equal(
        inpaint(t_image.half(), t_mask.bool()), inpaint(image.astype(np.float16), box_mask > 0.5)
    )
    edited = EditPipeline(tiny)(PROMPT, t_image[None, None], strength=0.5, generator=seeded(0))
    assert edited.images.shape == (1, 32, 32)
    outpainted = OutpaintPipeline(tiny)(PROMPT, t_image[None], right=16, generator=seeded(0))
    assert np.array_equal(outpainted.images[0][:, :32], image)
    with pytest.raises(ValueError, match=r"\(1, 1, H, W\) or \(H, W, 1\).*\(2, 32, 32\)"):
        inpaint(torch.stack([t_image, t_image]), box_mask)
    with pytest.raises(ValueError, match=r"values must be finite and in \[0, 1\]"):
        inpaint(t_image * 255.0, box_mask)
    with pytest.raises(ValueError, match="mask_image.*2-D grayscale"):
        inpaint(image, torch.zeros(32, 32, 3))


# -- 6. set_progress_bar_config -------------------------------------------------------------------


def test_progress_bar_config_takes_diffusers_keywords(
    tiny: DiffusionComponents, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    drawn: list[dict[str, Any]] = []

    def fake_track(sequence: Any, **kwargs: Any) -> Any:
        drawn.append(kwargs)
        return sequence

    monkeypatch.setattr(pipeline_base, "track", fake_track)
    monkeypatch.setattr(pipeline_base.Console, "is_terminal", property(lambda self: True))
    pipe = TextToImagePipeline(tiny)
    pipe(PROMPT, num_inference_steps=1)
    assert drawn[-1]["description"] == "Denoising" and drawn[-1]["transient"] is True
    assert drawn[-1]["disable"] is False
    pipe.set_progress_bar_config(desc="Sampling knees", leave=True)
    pipe(PROMPT, num_inference_steps=1)
    assert drawn[-1]["description"] == "Sampling knees" and drawn[-1]["transient"] is False
    pipe.set_progress_bar_config(disable=True)  # replaces the previous configuration
    pipe(PROMPT, num_inference_steps=1)
    assert drawn[-1]["disable"] is True and drawn[-1]["description"] == "Denoising"
    assert pipe.progress_bar_disabled
    with caplog.at_level("WARNING", logger="radsynth.pipelines"):
        pipe.set_progress_bar_config(disable=False, position=1, ncols=80)
    assert "ncols, position have no effect" in caplog.records[-1].getMessage()
    with pytest.raises(TypeError, match="unknown keyword.*colour_scheme"):
        pipe.set_progress_bar_config(colour_scheme="dark")


# -- 7. guidance_cutoff belongs to the components and is saved ------------------------------------


def test_a_guidance_cutoff_set_on_a_pipeline_is_shared_and_saved(tmp_path: Path) -> None:
    components = build_components("tiny", seed=0)
    components.defaults["guidance_cutoff"] = 0.5
    pipe = TextToImagePipeline(components)
    pipe.guidance_cutoff = 0.25
    assert InpaintPipeline(pipe.components).guidance_cutoff == 0.25
    pipe.save_pretrained(tmp_path / "model")
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert index["_radsynth_defaults"]["guidance_cutoff"] == 0.25
    assert index["_class_name"] == "TextToImagePipeline"
    reloaded = TextToImagePipeline.from_pretrained(tmp_path / "model")
    assert reloaded.guidance_cutoff == 0.25
    for bad in (1.5, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match="guidance_cutoff must be a number in"):
            pipe.guidance_cutoff = bad  # type: ignore[assignment]


# -- 8. Stable Diffusion folders stay loadable by diffusers --------------------------------------


def test_a_resaved_stable_diffusion_folder_loads_in_diffusers(
    sd_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import diffusers

    pipe = TextToImagePipeline.from_pretrained(sd_folder)
    pipe.guidance_cutoff = 0.3
    pipe.save_pretrained(tmp_path / "resaved")
    index = json.loads((tmp_path / "resaved" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    loaded = diffusers.DiffusionPipeline.from_pretrained(tmp_path / "resaved")
    assert isinstance(loaded, diffusers.StableDiffusionPipeline)
    assert torch.equal(loaded.unet.conv_in.weight, pipe.unet.conv_in.weight.contiguous())
    # radsynth reads it back with the cutoff, and still takes its prompts as written: a
    # sampling default does not make it a radsynth-trained model with a vocabulary.
    again = TextToImagePipeline.from_pretrained(tmp_path / "resaved")
    again.set_progress_bar_config(disable=True)
    assert again.guidance_cutoff == 0.3
    assert not again.components.trained_by_radsynth
    image = again("a banana on a beach", negative_prompt="a blurry photo", num_inference_steps=2)
    assert np.asarray(image.images).shape == (1, 32, 32)


def test_an_edit_strength_below_one_step_says_what_runs(
    tiny: DiffusionComponents, image: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    # At 6 steps strengths 0.05, 0.1 and 0.2 all ran one step and gave the same image, unsaid.
    # Strengths are rounded to whole steps; one below half a step is said to run a whole one.
    pipe = EditPipeline(tiny)
    pipe.set_progress_bar_config(disable=True)

    def edit(strength: float) -> np.ndarray:
        out = pipe(PROMPT, image, strength=strength, num_inference_steps=6, generator=seeded(0))
        return np.asarray(out.images)

    with caplog.at_level("WARNING", logger="radsynth.pipelines"):
        coarse, fine = edit(0.05), edit(0.2)
    assert np.array_equal(coarse, fine)
    said = [r.getMessage() for r in caplog.records if "effective strength" in r.getMessage()]
    assert said == [
        "strength 0.05 runs 1 of 6 steps, an effective strength of 0.17: strengths are "
        "rounded to whole steps; raise num_inference_steps for a finer one"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="radsynth.pipelines"):
        edit(0.6)  # the default: 4 of 6 steps, rounded, not said
    assert not [r for r in caplog.records if "effective strength" in r.getMessage()]
