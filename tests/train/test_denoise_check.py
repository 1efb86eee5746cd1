"""scripts/denoise_check.py: the x0 prediction of a model handed an almost clean image, scored
inside named structures and outside them."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from manifest_folder import write_manifest_folder
from PIL import Image

from radsynth.io.manifest import read_manifest
from radsynth.io.masks import write_masks
from radsynth.models import build_components

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "denoise_check.py"


def load_script() -> dict:
    """The names of scripts/denoise_check.py (run as a module, not as the command)."""
    return runpy.run_path(str(SCRIPT), run_name="denoise_check")


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon", "v_prediction"])
def test_an_oracle_denoiser_gives_the_image_back_for_every_prediction_type(
    prediction_type: str,
) -> None:
    script = load_script()
    components = build_components("tiny", seed=0)
    components.scheduler.register_to_config(prediction_type=prediction_type)
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    clean = components.image_to_model(images)
    bars = torch.as_tensor(
        script["DDPMScheduler"].from_config(components.scheduler.config).alphas_cumprod
    )

    class Oracle(torch.nn.Module):
        """Knows the clean sample: answers with what the prediction type asks for."""

        def __init__(self) -> None:
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device

        def forward(self, noisy: torch.Tensor, t: torch.Tensor, **_: object) -> object:
            a = bars[t].sqrt().view(-1, 1, 1, 1)
            s = (1 - bars[t]).sqrt().view(-1, 1, 1, 1)
            eps = (noisy - a * clean) / s
            answer = {"sample": clean, "epsilon": eps, "v_prediction": a * eps - s * clean}
            return type("Out", (), {"sample": answer[prediction_type]})()

    components.unet = Oracle()
    masks = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    masks[:, :, 8:16, 8:16] = True
    rows, predictions = script["denoise_errors"](
        components, images, ["PA chest radiograph"] * 2, masks, [0, 10, 500]
    )
    assert predictions.shape == (3, 2, 32, 32)
    for row in rows:
        assert row["inside"] < 1e-4 and row["outside"] < 1e-4
        assert row["detail_kept"] == pytest.approx(1.0, abs=1e-3)


def test_detail_kept_is_one_for_a_copy_and_zero_for_a_blur() -> None:
    script = load_script()
    clean = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    inside = torch.zeros_like(clean, dtype=torch.bool)
    inside[..., 8:24, 8:24] = True
    assert script["detail_kept"](clean, clean, inside) == pytest.approx(1.0)
    assert script["detail_kept"](0.5 * clean, clean, inside) == pytest.approx(0.5, abs=1e-5)
    smooth = clean - script["fine_detail"](clean)  # the box blur: no fine detail left
    assert abs(script["detail_kept"](smooth, clean, inside)) < 0.05


def test_bad_input_is_refused() -> None:
    script = load_script()
    components = build_components("tiny", seed=0)
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    masks[:, :, :16] = True
    with pytest.raises(ValueError, match="in none of the images"):
        script["denoise_errors"](components, images, ["x"] * 2, torch.zeros_like(masks), [10])
    with pytest.raises(ValueError, match="timestep 1000 outside"):
        script["denoise_errors"](components, images, ["PA chest radiograph"] * 2, masks, [1000])
    with pytest.raises(ValueError, match="no record with region 'hand'"):
        script["select_records"]([{"labels": {"region": "knee", "view": "ap"}}], "hand", None, 2)


def test_the_command_scores_a_saved_model_on_a_manifest_and_writes_the_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script()
    folder = write_manifest_folder(tmp_path / "cases")
    records = read_manifest(folder)
    for i, record in enumerate(records):
        femur = np.zeros((40, 48), dtype=bool)
        femur[5:25, 10:30] = True
        write_masks(folder / f"masks-{i}.npz", {"femur": femur, "body": np.ones_like(femur)})
        record["masks"] = f"masks-{i}.npz"
        record["labels"] = {"region": "knee" if i % 2 else "chest", "view": "ap"}
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    model = tmp_path / "model"
    build_components("tiny", seed=0).save_pretrained(model)
    out = tmp_path / "check.png"
    script["main"](
        [
            "--model", str(model), "--data", str(folder), "--region", "knee",
            "--structures", "fem*", "--timesteps", "0,100", "--out", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "2 images, structures fem*" in printed
    assert len([line for line in printed.splitlines() if line.strip()[:1].isdigit()]) == 3
    with Image.open(out) as grid:  # 2 images x (clean + 2 timesteps) tiles of 32 px
        assert grid.size == (3 * 32 + 2 * 2, 2 * 32 + 2)
