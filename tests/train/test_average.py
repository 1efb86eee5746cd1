"""`radsynth average`: weight averaging of fine-tunes of one model, and its training record."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.models import DiffusionComponents, build_components
from radsynth.pipelines import TextToImagePipeline
from radsynth.train.average import average_models
from radsynth.train.report import record_chains, trained_steps

runner = CliRunner()


def words(output: str) -> str:
    """A command's output as plain words: the error box and its line breaks removed."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def tiny(folder: Path, seed: int, steps: int, preset: str = "tiny") -> Path:
    components = build_components(preset, seed=seed)
    components.defaults = {**components.defaults, "trained_steps": steps}
    return components.save_pretrained(folder)


def run_record(steps: int, parent: dict | None = None) -> dict:
    record: dict = {"steps": steps, "parent_steps": trained_steps(parent) if parent else 0}
    record["command"] = "radsynth-train --preset tiny" if parent is None else "radsynth-train"
    if parent is not None:
        record["parent"] = parent
    return record


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("avg")
    first = tiny(root / "a" / "model", seed=0, steps=5)
    second = tiny(root / "b", seed=1, steps=9)
    # A run folder's record sits beside its model (a), a shipped model's inside it (b).
    (root / "a" / "training.json").write_text(json.dumps(run_record(5)))
    (second / "training.json").write_text(json.dumps(run_record(4, run_record(5))))
    return first, second


def test_average_is_the_weighted_mean_recorded_and_usable(
    two: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = two
    args = ["average", str(first), str(second), "--weight", "1", "--weight", "3"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "soup")])
    assert result.exit_code == 0, result.output
    soup = DiffusionComponents.from_pretrained(tmp_path / "soup" / "model")
    a, b = (DiffusionComponents.from_pretrained(f).unet.state_dict() for f in two)
    for key, value in soup.unet.state_dict().items():
        torch.testing.assert_close(value, 0.25 * a[key] + 0.75 * b[key])
    assert not torch.equal(a["conv_in.weight"], b["conv_in.weight"])  # a real mean, not a copy
    # The longest training behind it; the sampler settings are the first model's.
    assert soup.defaults["trained_steps"] == 9
    record = json.loads((tmp_path / "soup" / "training.json").read_text())
    assert record["kind"] == "weight average" and record["parent_steps"] == 9
    assert [e["weight"] for e in record["averaged"]] == [0.25, 0.75]
    assert record["averaged"][0]["model"] == str(first)
    assert len(record["averaged"][1]["unet_sha256"]) == 64
    assert record["command"].startswith("radsynth average") and "--weight 3.0" in record["command"]
    chains = record_chains(record)
    assert [[r["steps"] for r in chain] for chain in chains] == [[0, 5], [0, 4, 5]]
    assert all("--preset tiny" in chain[-1]["command"] for chain in chains)
    pipe = TextToImagePipeline.from_pretrained(tmp_path / "soup" / "model")
    pipe.set_progress_bar_config(disable=True)

    def image(seed: int) -> np.ndarray:
        generator = torch.Generator().manual_seed(seed)
        output = pipe("PA chest radiograph", generator=generator, num_inference_steps=2)
        return np.asarray(output.images[0])

    assert np.array_equal(image(3), image(3)) and image(3).shape == (32, 32)


def test_equal_weights_by_default_and_an_average_of_one_model_is_itself(
    two: tuple[Path, Path],
) -> None:
    first, second = two
    mean = average_models([first, second]).unet.state_dict()
    same = average_models([first, first]).unet.state_dict()
    a, b = (DiffusionComponents.from_pretrained(f).unet.state_dict() for f in two)
    for key in mean:
        torch.testing.assert_close(mean[key], 0.5 * a[key] + 0.5 * b[key])
        torch.testing.assert_close(same[key], a[key])


def test_models_that_cannot_be_averaged_are_refused_clearly(
    two: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = two
    latent = tiny(tmp_path / "latent", seed=0, steps=1, preset="tiny-latent")

    def refused(*args: str) -> str:
        result = runner.invoke(app, ["average", *args, "--out", str(tmp_path / "out")])
        assert result.exit_code != 0 and not (tmp_path / "out" / "model").exists()
        return words(result.output)

    assert "differs from" in refused(str(first), str(latent))
    assert "2 weights for 3 models" in refused(
        str(first), str(second), str(first), "--weight", "1", "--weight", "1"
    )
    assert "non-negative" in refused(str(first), str(second), "--weight", "-1", "--weight", "2")
    assert "at least two" in refused(str(first))
    assert "no model folder" in refused(str(first), str(tmp_path / "nowhere"))
    (tmp_path / "taken" / "model").mkdir(parents=True)
    taken = ["average", str(first), str(second), "--out", str(tmp_path / "taken")]
    result = runner.invoke(app, taken)
    assert result.exit_code != 0 and "exists" in words(result.output)


def test_a_fine_tune_of_an_average_continues_every_chain() -> None:
    base = run_record(5)
    soup = {
        "kind": "weight average",
        "steps": 0,
        "parent_steps": 9,
        "averaged": [{"record": base}, {"record": run_record(4, base)}, {"record": None}],
    }
    tune = run_record(2, soup)
    assert trained_steps(tune) == 11
    chains = record_chains(tune)
    assert [[r["steps"] for r in chain] for chain in chains] == [[2, 0, 5], [2, 0, 4, 5]]
    assert max(sum(r["steps"] for r in chain) for chain in chains) == 11


def test_other_pipeline_defaults_are_named_when_the_first_models_are_kept(
    two: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = two
    changed = tmp_path / "free"
    components = DiffusionComponents.from_pretrained(second)
    components.defaults = {**components.defaults, "free_text_prompts": True}
    components.save_pretrained(changed)
    with pytest.warns(UserWarning, match="free_text_prompts True \\(kept: None\\)"):
        averaged = average_models([first, changed])
    assert "free_text_prompts" not in averaged.defaults
