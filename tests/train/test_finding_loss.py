"""--finding-loss-weight and --structure-loss-weight: masks read like their images, and the
loss they weight."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from manifest_folder import write_manifest_folder

from radsynth.io.manifest import read_manifest
from radsynth.io.masks import write_masks
from radsynth.models import DiffusionComponents, build_components
from radsynth.train import TrainConfig, train
from radsynth.train.data import ManifestImageDataset
from radsynth.train.loop import diffusion_loss, mask_weights
from radsynth.train.main import parse_args

ROWS, COLS = 40, 48  # the test images' shape (write_manifest_folder)


def add_masks(folder: Path) -> Path:
    """Masks for cases 0 and 1 of the folder: case 0 a finding block in its top-left quarter of
    the centre crop plus an anatomy mask, case 1 an anatomy mask only; cases 2, 3 none."""
    records = read_manifest(folder)
    finding = np.zeros((ROWS, COLS), dtype=bool)
    finding[0:20, 4:24] = True  # the centre crop is columns 4..43: its top-left quarter
    anatomy = np.ones((ROWS, COLS), dtype=bool)
    write_masks(folder / "masks-0.npz", {"finding_fracture": finding, "femur": anatomy})
    write_masks(folder / "masks-1.npz", {"femur": anatomy})
    records[0]["masks"], records[1]["masks"] = "masks-0.npz", "masks-1.npz"
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


@pytest.fixture(scope="module")
def masked_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return add_masks(write_manifest_folder(tmp_path_factory.mktemp("masked") / "cases"))


def corner_error_loss(
    tmp_path: Path,
    batch: slice,
    finding_masks: torch.Tensor | None,
    structure_masks: torch.Tensor | None = None,
    **weights: float,
) -> float:
    """`diffusion_loss` on `batch` of two random 32 px images, for a denoiser wrong only in the
    top-left sixteenth of image 0 (error 0.5, squared 0.25), with uniform timestep weights so
    the spatial weights alone differ; `weights` are TrainConfig's loss weights."""
    components = build_components("tiny", seed=0)
    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type="sample")
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    clean = components.image_to_model(images)
    region = torch.zeros_like(clean)
    region[0, :, : clean.shape[-2] // 4, : clean.shape[-1] // 4] = 1.0

    class WrongInCorner(torch.nn.Module):
        def forward(self, noisy: torch.Tensor, t: torch.Tensor, **_: object) -> object:
            return type("Out", (), {"sample": (clean + 0.5 * region)[batch]})()

    structure = weights.get("structure_loss_weight", 1.0)
    config = TrainConfig(
        tmp_path,
        tmp_path,
        preset="tiny",
        loss_structures=("l[1-5]",) if structure != 1.0 else (),
        **weights,
    )
    config.snr_gamma = None
    return float(
        diffusion_loss(
            components,
            WrongInCorner(),
            scheduler,
            images[batch],
            ["PA chest radiograph"] * len(range(2)[batch]),
            torch.Generator().manual_seed(1),
            config,
            finding_masks,
            structure_masks,
        )
    )


def train_two_steps(folder: Path, out: Path, **overrides: object) -> dict[str, torch.Tensor]:
    """Train the tiny preset 2 steps of 4 on `folder` (lr 1e-3, no warm-up, no samples) with
    TrainConfig `overrides`; the saved model's UNet weights."""
    config = TrainConfig(
        folder,
        out,
        preset="tiny",
        max_steps=2,
        batch_size=4,
        lr_warmup_steps=0,
        learning_rate=1e-3,
        sample_every=0,
        num_samples=0,
        **overrides,
    )
    train(config)
    return dict(DiffusionComponents.from_pretrained(out / "model").unet.state_dict())


def test_finding_masks_are_cropped_and_resized_like_the_image(masked_dir: Path) -> None:
    dataset = ManifestImageDataset(masked_dir, resolution=32)
    mask = dataset.finding_mask(0)
    assert mask.shape == (1, 32, 32) and mask.dtype == torch.float32
    # The finding filled the top-left quarter of the 40 x 40 crop: 16 x 16 px at 32 px.
    assert float(mask[0, :16, :16].min()) == 1.0
    assert float(mask.sum()) == pytest.approx(16 * 16, abs=1e-3)
    # No finding mask (only anatomy), or no masks file at all: nothing weighted.
    assert float(dataset.finding_mask(1).abs().sum()) == 0.0
    assert float(dataset.finding_mask(2).abs().sum()) == 0.0


def test_masks_of_another_shape_or_missing_are_clear_errors(tmp_path: Path) -> None:
    folder = add_masks(write_manifest_folder(tmp_path / "cases"))
    write_masks(folder / "masks-0.npz", {"finding_fracture": np.ones((40, 20), dtype=bool)})
    dataset = ManifestImageDataset(folder, resolution=32)
    with pytest.raises(ValueError, match="masks of 40 x 20 px do not have the shape"):
        dataset.finding_mask(0)
    (folder / "masks-1.npz").unlink()
    with pytest.raises(ValueError, match="names masks masks-1.npz, which is not in"):
        dataset.finding_mask(1)


def test_finding_weights_follow_the_share_of_finding_pixels() -> None:
    masks = torch.zeros(1, 1, 32, 32)
    masks[0, 0, :8, :8] = 1.0  # one full 8 x 8 patch
    masks[0, 0, 8:12, :8] = 1.0  # half the patch below it
    weights = mask_weights(masks, (4, 4), 10.0)
    assert weights.shape == (1, 1, 4, 4)
    assert float(weights[0, 0, 0, 0]) == pytest.approx(10.0)
    assert float(weights[0, 0, 1, 0]) == pytest.approx(5.5)
    assert float(weights[0, 0, 2:, :].max()) == 1.0 and float(weights[0, 0, :, 1:].max()) == 1.0


def test_the_loss_weights_errors_inside_findings(tmp_path: Path) -> None:
    """A denoiser wrong only inside the finding: the weighted loss counts that error more; an
    image without a finding keeps its loss."""
    masks = torch.zeros(2, 1, 32, 32)
    masks[0, 0, :8, :8] = 1.0

    def loss(weight: float, with_masks: bool, batch: slice) -> float:
        finding = masks[batch] if with_masks else None
        return corner_error_loss(tmp_path, batch, finding, finding_loss_weight=weight)

    plain = loss(1.0, True, slice(0, 1))
    weighted = loss(10.0, True, slice(0, 1))
    # Error 0.25 on 1/16 of the positions: plain 0.25/16; weighted 0.25*10/(1 + 9/16).
    assert plain == pytest.approx(0.25 / 16, rel=1e-5)
    assert weighted == pytest.approx(0.25 * 10 / 16 / (1 + 9 / 16), rel=1e-5)
    assert loss(10.0, False, slice(0, 1)) == pytest.approx(plain, rel=1e-6)
    assert loss(10.0, True, slice(1, 2)) == pytest.approx(0.0, abs=1e-10)


def test_training_with_the_finding_weight_runs_and_is_recorded(
    masked_dir: Path, tmp_path: Path
) -> None:
    def run(weight: float, out: Path) -> dict[str, torch.Tensor]:
        return train_two_steps(masked_dir, out, finding_loss_weight=weight)

    weighted = run(10.0, tmp_path / "weighted")
    plain = run(1.0, tmp_path / "plain")
    record = json.loads((tmp_path / "weighted" / "training.json").read_text())
    assert record["config"]["finding_loss_weight"] == 10.0
    losses = [json.loads(x)["loss"] for x in (tmp_path / "weighted" / "loss.jsonl").open()]
    assert len(losses) == 2 and all(np.isfinite(losses))
    # Same seed, same batches: only the weighting differs, and it changes the weights.
    assert any(not torch.equal(weighted[k], plain[k]) for k in weighted)


def test_the_command_line_takes_and_checks_the_weight(tmp_path: Path) -> None:
    args = ["--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert parse_args([*args, "--finding-loss-weight", "10"]).finding_loss_weight == 10.0
    assert parse_args(args).finding_loss_weight == 1.0
    with pytest.raises(SystemExit):
        parse_args([*args, "--finding-loss-weight", "0"])
    with pytest.raises(ValueError, match="finding_loss_weight must be a positive number"):
        TrainConfig(tmp_path, tmp_path, finding_loss_weight=float("nan"))


def test_a_cached_dataset_reads_each_file_once_and_gives_the_same_tensors(tmp_path: Path) -> None:
    folder = add_masks(write_manifest_folder(tmp_path / "cases"))
    plain = ManifestImageDataset(folder, resolution=32)
    cached = ManifestImageDataset(folder, resolution=32, cache=True)
    first = [(cached.image(i), cached.finding_mask(i)) for i in range(4)]
    # Once read, the files are no longer needed: the cache answers.
    for record in read_manifest(folder):
        (folder / record["image"]).unlink()
        if record.get("masks"):
            (folder / record["masks"]).unlink()
    for i in range(4):
        image, mask = cached.image(i), cached.finding_mask(i)
        assert torch.equal(image, first[i][0]) and torch.equal(mask, first[i][1])
        # A caller changing its tensor in place leaves the cache as it was.
        image.add_(1.0)
        assert torch.equal(cached.image(i), first[i][0])
    assert float(first[0][1].sum()) == pytest.approx(16 * 16, abs=1e-3)
    with pytest.raises(FileNotFoundError):
        plain.image(0)  # without the cache the files are read every time


def test_preload_in_two_processes_fills_the_cache_with_what_lazy_reads_give(
    tmp_path: Path,
) -> None:
    folder = add_masks(write_manifest_folder(tmp_path / "cases", count=8))
    lazy = ManifestImageDataset(folder, resolution=32)
    expected = [(lazy.image(i), lazy.finding_mask(i)) for i in range(8)]
    cached = ManifestImageDataset(folder, resolution=32, cache=True)
    cached.preload(workers=2, with_masks=True)
    for record in read_manifest(folder):  # everything now comes from memory
        (folder / record["image"]).unlink()
        if record.get("masks"):
            (folder / record["masks"]).unlink()
    for i, (image, mask) in enumerate(expected):
        assert torch.equal(cached.image(i), image) and torch.equal(cached.finding_mask(i), mask)
    assert float(expected[0][1].sum()) > 0  # case 0 has a finding: masks were compared too
    with pytest.raises(ValueError, match="cache=True"):
        lazy.preload(workers=2, with_masks=False)


def test_structure_masks_are_the_union_of_the_masks_the_patterns_name(masked_dir: Path) -> None:
    dataset = ManifestImageDataset(masked_dir, resolution=32, structures=("fem*", "tibia"))
    # Case 1's femur mask covers the whole image; case 0's too (its finding is not named).
    assert float(dataset.structure_mask(1).min()) == 1.0
    assert float(dataset.structure_mask(0).sum()) == pytest.approx(32 * 32)
    assert float(dataset.structure_mask(2).abs().sum()) == 0.0  # no masks file
    only_finding = ManifestImageDataset(masked_dir, resolution=32, structures=("finding_*",))
    assert torch.equal(only_finding.structure_mask(0), dataset.finding_mask(0))
    assert float(only_finding.structure_mask(1).abs().sum()) == 0.0
    with pytest.raises(ValueError, match="needs a dataset made with structures"):
        ManifestImageDataset(masked_dir, resolution=32).structure_mask(0)


def test_structure_and_finding_weights_add(tmp_path: Path) -> None:
    """A denoiser wrong only in the top-left sixteenth: a structure mask there weights the error
    like a finding mask of the same weight, and the two together add their extra weights."""
    corner = torch.zeros(1, 1, 32, 32)
    corner[0, 0, :8, :8] = 1.0

    def loss(finding: float, structure: float) -> float:
        return corner_error_loss(
            tmp_path,
            slice(0, 1),
            corner,
            corner,
            finding_loss_weight=finding,
            structure_loss_weight=structure,
        )

    assert loss(1.0, 10.0) == pytest.approx(loss(10.0, 1.0), rel=1e-6)
    # Both: weight 1 + 9 + 9 = 19 in the corner, normalised by 1 + 18/16.
    assert loss(10.0, 10.0) == pytest.approx(0.25 * 19 / 16 / (1 + 18 / 16), rel=1e-5)
    assert loss(1.0, 1.0) == pytest.approx(0.25 / 16, rel=1e-5)


def test_training_with_a_structure_weight_preloads_runs_and_is_recorded(
    tmp_path: Path,
) -> None:
    folder = add_masks(write_manifest_folder(tmp_path / "cases", count=8))
    femur = np.zeros((ROWS, COLS), dtype=bool)
    femur[:, :20] = True  # a weight over all of an image changes nothing: give it a part
    write_masks(folder / "masks-1.npz", {"femur": femur})
    lazy = ManifestImageDataset(folder, resolution=32, structures=("femur",))
    cached = ManifestImageDataset(folder, resolution=32, cache=True, structures=("femur",))
    cached.preload(workers=2, with_masks=False)
    for i in range(8):
        assert torch.equal(cached.structure_mask(i), lazy.structure_mask(i))
    assert float(lazy.structure_mask(1).sum()) > 0  # case 1 has the femur: masks compared

    def run(weight: float, out: Path) -> dict[str, torch.Tensor]:
        return train_two_steps(
            folder,
            out,
            structure_loss_weight=weight,
            loss_structures=("femur",) if weight != 1.0 else (),
            cache_images=True,
        )

    weighted = run(6.0, tmp_path / "weighted")
    plain = run(1.0, tmp_path / "plain")
    record = json.loads((tmp_path / "weighted" / "training.json").read_text())
    assert record["config"]["structure_loss_weight"] == 6.0
    assert record["config"]["loss_structures"] == ["femur"]
    assert TrainConfig(**record["config"]).loss_structures == ("femur",)
    assert any(not torch.equal(weighted[k], plain[k]) for k in weighted)


def test_the_command_line_takes_structures_and_their_weight_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data", str(tmp_path), "--out", str(tmp_path / "o")]
    config = parse_args(
        [*args, "--structure-loss-weight", "4", "--loss-structures", "l[1-5], disc_l*,"]
    )
    assert config.structure_loss_weight == 4.0
    assert config.loss_structures == ("l[1-5]", "disc_l*")
    for wrong in (
        ["--structure-loss-weight", "4"],
        ["--loss-structures", "l1"],
        ["--structure-loss-weight", "-1", "--loss-structures", "l1"],
        ["--structure-loss-weight", "4", "--loss-structures", " , "],
    ):
        with pytest.raises(SystemExit):
            parse_args([*args, *wrong])
    errors = capsys.readouterr().err
    assert "--structure-loss-weight and --loss-structures go together" in errors
    assert "--structure-loss-weight must be a positive number, got -1.0" in errors
    with pytest.raises(ValueError, match="go together"):
        TrainConfig(tmp_path, tmp_path, structure_loss_weight=3.0)
    with pytest.raises(ValueError, match="structure_loss_weight must be a positive number"):
        TrainConfig(tmp_path, tmp_path, structure_loss_weight=float("inf"), loss_structures=("a",))


def test_a_step_reads_each_masks_file_once_for_both_kinds(
    masked_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import radsynth.train.data as data

    reads: list[Path] = []
    real_load_masks = data.load_masks

    def counted(path: Path) -> dict[str, np.ndarray]:
        reads.append(Path(path))
        return real_load_masks(path)

    monkeypatch.setattr(data, "load_masks", counted)
    lazy = ManifestImageDataset(masked_dir, resolution=32, structures=("fem*",))
    expected = [(lazy.finding_mask(i), lazy.structure_mask(i)) for i in range(4)]
    assert len(reads) == 4  # two records have masks files, each read once per kind
    reads.clear()
    for i, (finding, structure) in enumerate(expected):
        both = lazy.loss_masks(i, finding=True)
        assert len(both) == 2
        assert torch.equal(both[0], finding) and torch.equal(both[1], structure)
        only_structure = lazy.loss_masks(i, finding=False)
        assert len(only_structure) == 1 and torch.equal(only_structure[0], structure)
    assert float(expected[0][0].sum()) > 0 and float(expected[1][1].sum()) > 0
    assert sorted(p.name for p in reads) == ["masks-0.npz"] * 2 + ["masks-1.npz"] * 2
    # With the cache, the first step fills it and later steps read nothing.
    cached = ManifestImageDataset(masked_dir, resolution=32, cache=True, structures=("fem*",))
    reads.clear()
    first = [cached.loss_masks(i, finding=True) for i in range(4)]
    assert len(reads) == 2
    again = [cached.loss_masks(i, finding=True) for i in range(4)]
    assert len(reads) == 2
    for got, want, (finding, structure) in zip(first, again, expected, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        assert torch.equal(got[0], finding) and torch.equal(got[1], structure)
