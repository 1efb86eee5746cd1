"""The reader: targets from phantom masks, a 2-step training run of a tiny reader, save/load
(safetensors only), features, the command line, and the shipped weights on a few phantoms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.evaluate.reader import (
    COUNTED,
    GROUPS,
    Reader,
    ReaderConfig,
    ReaderNet,
    count_peaks,
    load_reader,
    load_reader_net,
    save_reader,
)
from radsynth.evaluate.reader.data import ReaderCache
from radsynth.evaluate.reader.groups import (
    FINDINGS,
    group_of,
    heatmap_target,
    instance_points,
    label_targets,
    lesion_target,
    segmentation_target,
)
from radsynth.evaluate.reader.inference import WEIGHTS_DIR, as_batch
from radsynth.evaluate.reader.training import TrainReaderConfig, reader_loss, train_reader
from radsynth.phantoms.cases import make_case
from radsynth.vocabulary.labels import Finding

TINY = {"widths": (8, 16, 32), "decoder_width": 8, "full_res_width": 4, "final_width": 4}


def tiny_net(size: int = 64) -> ReaderNet:
    torch.manual_seed(0)
    return ReaderNet(ReaderConfig(size=size, **TINY)).eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reader")
    config = TrainReaderConfig(out=out, n=4, heldout=2, steps=2, size=64, batch_size=2, **TINY)
    train_reader(config)
    return out


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("left_capitate", "carpals"),
        ("right_metacarpal_5_distal_fragment", "metacarpals"),
        ("left_distal_phalanx_3_extra", "phalanges"),
        ("left_toe_distal_phalanx_3", "foot_digits"),
        ("l3", "lumbar_vertebrae"),
        ("t12", "thoracic_vertebrae"),
        ("right_rib_7", "ribs"),
        ("left_costal_cartilage_7", None),
        ("disc_l3", None),
        ("left_breast", "breasts"),
    ],
)
def test_structures_map_to_groups(name: str, group: str | None) -> None:
    assert group_of(name) == group


def test_hand_targets_mark_eight_carpals_five_metacarpals_fourteen_phalanges() -> None:
    case = make_case(4, modality="xray", region="hand", view="pa", findings_=(), size=160)
    masks, shape = case.image.masks, case.image.image.shape
    heat = heatmap_target(instance_points(masks), shape)
    counts = {g: len(count_peaks(heat[k])) for k, g in enumerate(COUNTED)}
    assert counts["carpals"] == 8
    assert counts["metacarpals"] == 5
    assert counts["phalanges"] == 14
    seg = segmentation_target(masks, shape)
    assert seg[GROUPS.index("carpals")].any()
    assert not seg[GROUPS.index("lungs")].any()


def test_label_targets() -> None:
    case = make_case(3, modality="xray", region="knee", findings_=(), size=64)
    targets = label_targets(case.labels.to_dict())
    assert targets["modality"] == 0
    assert float(np.sum(targets["findings"])) == 0.0


def test_count_peaks_known_answers() -> None:
    heat = np.zeros((20, 20), dtype=np.float32)
    heat[5, 5] = heat[5, 9] = 1.0
    heat[15, 15] = heat[15, 16] = 0.8  # a plateau is one peak
    heat[2, 17] = 0.2  # below the threshold
    assert sorted(count_peaks(heat)) == [(5, 5), (5, 9), (15, 16)] or sorted(count_peaks(heat)) == [
        (5, 5),
        (5, 9),
        (15, 15),
    ]
    assert count_peaks(np.zeros((8, 8))) == []


def test_forward_shapes_and_features() -> None:
    net = tiny_net()
    out = net(torch.rand(2, 1, 64, 64))
    assert out["segmentation"].shape == (2, len(GROUPS), 64, 64)
    assert out["centres"].shape == (2, len(COUNTED), 64, 64)
    reader = Reader(net)
    features = reader.features(np.random.default_rng(0).random((3, 80, 80)))
    assert features.shape == (3, TINY["widths"][-1])
    assert len(reader.predict(np.zeros((64, 64), dtype=np.uint8))) == 1


def test_lesion_targets_mark_each_finding_kind_where_its_masks_lie() -> None:
    case = make_case(
        0,
        modality="xray",
        region="shoulder",
        findings_=(Finding("plate_and_screws", "humerus"),),
        size=96,
    )
    masks, shape = case.image.masks, case.image.image.shape
    target = lesion_target(masks, shape)
    assert target.shape == (len(FINDINGS), *shape)
    plate = target[FINDINGS.index("plate_and_screws")]
    parts = [m for name, m in masks.items() if name.startswith("finding_plate_and_screws")]
    assert len(parts) >= 2  # the plate and the screws: one kind
    assert np.array_equal(plate, np.logical_or.reduce(parts))
    others = np.delete(target, FINDINGS.index("plate_and_screws"), axis=0)
    assert not others.any()
    clean = make_case(0, modality="xray", region="shoulder", findings_=(), size=96)
    assert not lesion_target(clean.image.masks, shape).any()
    # Bilateral effusions: the second one's mask ("finding_pleural_effusion_2") counts too.
    both = (
        Finding("pleural_effusion", "left_hemithorax"),
        Finding("pleural_effusion", "right_hemithorax"),
    )
    chest = make_case(0, modality="xray", region="chest", findings_=both, size=96)
    effusions = [chest.image.masks[n] for n in chest.image.meta["finding_structures"]]
    fluid = lesion_target(chest.image.masks, shape)[FINDINGS.index("pleural_effusion")]
    assert len(effusions) == 2 and np.array_equal(fluid, effusions[0] | effusions[1])


def test_lesion_maps_feed_the_findings_and_their_loss() -> None:
    torch.manual_seed(0)
    net = ReaderNet(ReaderConfig(size=64, lesion_maps=True, **TINY)).eval()
    images = torch.rand(2, 1, 64, 64)
    out = net(images)
    assert out["lesions"].shape == (2, len(FINDINGS), 64, 64)
    assert out["segmentation"].shape == (2, len(GROUPS), 64, 64)
    assert out["centres"].shape == (2, len(COUNTED), 64, 64)
    # A finding's logit rises with the peak of its lesion map: raise one map's bias.
    with torch.no_grad():
        assert net.segment.bias is not None
        net.segment.bias[len(GROUPS) + FINDINGS.index("fracture")] += 3.0
        raised = net(images)["findings"] - out["findings"]
    assert torch.allclose(raised[:, FINDINGS.index("fracture")], torch.full((2,), 3.0), atol=1e-4)
    assert raised[:, FINDINGS.index("pacemaker")].abs().max() < 1e-5
    batch = {
        "image": images,
        **{h: torch.zeros(2, dtype=torch.long) for h in ("modality", "region", "view")},
        **{h: torch.zeros(2, dtype=torch.long) for h in ("laterality", "sex")},
        "findings": torch.zeros(2, len(FINDINGS)),
        "segmentation": torch.zeros(2, len(GROUPS), 64, 64),
        "centres": torch.zeros(2, len(COUNTED), 64, 64),
        "lesions": torch.zeros(2, len(FINDINGS), 64, 64),
    }
    batch["findings"][0, 0] = 1.0
    plain = reader_loss(out, batch, finding_pos_weight=1.0)["findings"]
    weighted = reader_loss(out, batch, finding_pos_weight=5.0)["findings"]
    # the one positive weighs five times as much
    assert float(weighted.detach()) > float(plain.detach())
    assert "lesions" in reader_loss(out, batch)
    del batch["lesions"]
    with pytest.raises(ValueError, match="no lesion maps"):
        reader_loss(out, batch)


def test_readers_saved_without_lesion_maps_still_load(tmp_path: Path) -> None:
    net = tiny_net()
    save_reader(net, tmp_path)
    record = json.loads((tmp_path / "config.json").read_text())
    del record["config"]["lesion_maps"]  # as written before lesion maps existed
    (tmp_path / "config.json").write_text(json.dumps(record))
    loaded = load_reader_net(tmp_path)
    assert not loaded.config.lesion_maps
    assert "lesions" not in loaded(torch.rand(1, 1, 64, 64))


def test_a_cache_built_for_other_targets_is_refused(tmp_path: Path) -> None:
    ReaderCache(tmp_path, seed=0, size=64)
    meta = json.loads((tmp_path / "cache.json").read_text())
    del meta["lesions"]  # a cache from before lesion maps
    (tmp_path / "cache.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="another --cache folder"):
        ReaderCache(tmp_path, seed=0, size=64)


def test_as_batch_resizes_and_rejects_bad_shapes() -> None:
    assert as_batch(np.zeros((100, 120), dtype=np.uint16), 64).shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="grayscale"):
        as_batch(np.zeros((2, 3, 64, 64)), 64)


def test_config_rejects_sizes_the_encoder_cannot_halve() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        ReaderConfig(size=100, **TINY)


def test_save_load_round_trip_is_safetensors_only(tmp_path: Path) -> None:
    net = tiny_net()
    save_reader(net, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "reader.safetensors"]
    loaded = load_reader_net(tmp_path)
    images = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        a, b = net(images), loaded(images)
    assert torch.allclose(a["features"], b["features"], atol=2e-2)
    assert torch.equal(a["modality"].argmax(1), b["modality"].argmax(1))


def test_missing_reader_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train-reader"):
        load_reader_net(tmp_path)


def test_two_step_training_writes_reader_and_figures(trained: Path) -> None:
    names = {p.name for p in trained.iterdir()}
    assert {"reader.safetensors", "config.json", "heldout.json", "checkpoint.safetensors"} <= names
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".bin"))]
    record = json.loads((trained / "heldout.json").read_text())
    assert record["train"]["steps"] == 2
    assert set(record["heldout"]["accuracy"]) == {"modality", "region", "view", "laterality", "sex"}
    assert set(record["heldout"]["dice"]) == set(GROUPS)
    assert set(record["heldout"]["findings"]) == set(FINDINGS)
    assert {"recall", "lesion_dice"} <= set(record["heldout"]["findings"]["fracture"])
    reader = load_reader(trained)
    assert reader.features(np.zeros((64, 64))).shape == (1, TINY["widths"][-1])


def test_training_resumes_from_its_checkpoint(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    config = TrainReaderConfig(out=out, n=4, heldout=2, steps=3, size=64, batch_size=2, **TINY)
    steps: list[int] = []
    record = train_reader(config, on_step=lambda step, total, terms: steps.append(step))
    assert steps == [3]  # steps 1 and 2 came from the checkpoint
    assert record["train"]["steps"] == 3


def test_bad_counts_and_a_finished_checkpoint_are_refused_before_rendering(
    trained: Path, tmp_path: Path
) -> None:
    # --checkpoint-every 0 and --threads 0 crashed and --batch-size 0 trained on NaN, each
    # after the cases were rendered; a rerun with fewer steps recorded them over a network
    # that had trained more.
    base = {"out": tmp_path / "r", "n": 4, "heldout": 2, "steps": 2, "size": 64, **TINY}
    for change, flag in (
        ({"checkpoint_every": 0}, "--checkpoint-every"),
        ({"threads": 0}, "--threads"),
        ({"batch_size": 0}, "--batch-size"),
    ):
        with pytest.raises(ValueError, match=f"needs {flag} >= 1"):
            train_reader(TrainReaderConfig(**{"batch_size": 2, **base, **change}))
    assert not (tmp_path / "r" / "cache").exists()  # nothing rendered
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    fewer = TrainReaderConfig(**{**base, "out": out, "steps": 1, "batch_size": 2})
    with pytest.raises(ValueError, match="checkpoint at step 2, beyond --steps 1"):
        train_reader(fewer)
    other = TrainReaderConfig(out=out, n=4, heldout=2, steps=3, size=64, batch_size=2)
    with pytest.raises(ValueError, match="a checkpoint of another network"):
        train_reader(other)


def test_train_reader_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "train-reader",
            "--out",
            str(tmp_path),
            "--n",
            "4",
            "--heldout",
            "2",
            "--steps",
            "2",
            "--size",
            "64",
            "--batch-size",
            "2",
            "--tiny",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reader.safetensors").is_file()


@pytest.mark.skipif(
    not (WEIGHTS_DIR / "reader.safetensors").is_file(), reason="no shipped reader weights"
)
def test_shipped_reader_reads_modality_and_region() -> None:
    reader = load_reader()
    asks = [
        ("xray", "knee"),
        ("xray", "chest"),
        ("xray", "hand"),
        ("xray", "lumbar_spine"),
        ("ct", "head"),
        ("mri", "knee"),
        ("us", "liver"),
        ("xray", "pelvis"),
    ]
    cases = [make_case(90_000 + i, modality=m, region=r, size=160) for i, (m, r) in enumerate(asks)]
    predicted = reader.predict(np.stack([c.image.image for c in cases]))
    assert [p["modality"] for p in predicted] == [m for m, _ in asks]
    assert sum(p["region"] == r for p, (_, r) in zip(predicted, asks, strict=True)) >= 7


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("missing_carpal", lambda counts, masks: counts["carpals"] == 7),
        ("fused_carpals", lambda counts, masks: counts["carpals"] == 7),
        ("extra_ray", lambda counts, masks: counts["metacarpals"] == 6),
        ("extra_lumbar", lambda counts, masks: counts["lumbar_vertebrae"] == 6),
        ("no_fibula", lambda counts, masks: not any(k.endswith("fibula") for k in masks)),
        ("no_patella", lambda counts, masks: not any(k.endswith("patella") for k in masks)),
        ("no_breasts", lambda counts, masks: not any(k.endswith("breast") for k in masks)),
    ],
)
def test_variant_cases_change_the_anatomy_their_targets_show(kind: str, check: object) -> None:
    from radsynth.evaluate.reader.variant_cases import variant_case

    image, labels = variant_case(3, 96, kind=kind)
    points = instance_points(image.masks)
    counts = {group: len(found) for group, found in points.items()}
    assert image.meta["variant_kind"] == kind
    assert labels["modality"] == "xray" and labels["findings"] == []
    assert check(counts, image.masks)  # type: ignore[operator]
    if kind == "no_breasts":
        assert labels["sex"] == "female"


def test_variant_share_puts_variants_in_training_cases_only(tmp_path: Path) -> None:
    from radsynth.evaluate.reader.data import is_variant_case, render_example

    flags = [is_variant_case(0, "train", i, 0.25) for i in range(400)]
    assert 60 < sum(flags) < 140
    assert not any(is_variant_case(0, "heldout", i, 0.25) for i in range(100))
    assert not any(is_variant_case(0, "train", i, 0.0) for i in range(100))
    index = flags.index(True)
    plain, changed = (render_example(0, "train", index, 64, share) for share in (0.0, 0.25))
    assert not np.array_equal(plain["image"], changed["image"])
    assert changed["modality"] == 0 and not changed["findings"].any()  # an x-ray, no finding
    normal = flags.index(False)
    same = (render_example(0, "train", normal, 64, share) for share in (0.0, 0.25))
    assert np.array_equal(*(e["image"] for e in same))  # other cases stay as they were
    ReaderCache(tmp_path, seed=0, size=64)
    with pytest.raises(ValueError, match="another --cache folder"):
        ReaderCache(tmp_path, seed=0, size=64, variant_share=0.25)


def test_lesion_sides_follow_the_radiological_convention() -> None:
    from radsynth.evaluate.reader.inference import lesion_sides

    logits = torch.full((3, 2, 16, 16), -5.0)
    logits[0, 0, 4:8, 10:14] = 5.0  # the image's right half: the patient's left
    logits[1, 0, 4:8, 2:6] = 5.0
    logits[1, 0, 4:6, 10:12] = 5.0  # 16 px against 4: still the patient's right
    logits[2, 0, 4:8, 6:10] = 5.0  # across the midline: no one side
    logits[2, 1, 0, 0] = 5.0  # one pixel: too little to tell
    sides = lesion_sides(logits, ["a", "b"])
    assert sides == [{"a": "left", "b": None}, {"a": "right", "b": None}, {"a": None, "b": None}]


def test_the_shipped_reader_places_a_sided_effusion_on_its_side() -> None:
    reader = load_reader()
    images, asked = [], []
    for side in ("left", "right"):
        finding = Finding("pleural_effusion", f"{side}_hemithorax")
        for seed in (0, 1):
            case = make_case(seed, modality="xray", region="chest", view="pa", findings_=(finding,))
            images.append(case.image.image)
            asked.append(side)
    records = reader.predict(np.stack(images))
    assert [r["finding_sides"]["pleural_effusion"] for r in records] == asked
    lateral = make_case(0, modality="xray", region="chest", view="lateral", findings_=(finding,))
    (record,) = reader.predict(lateral.image.image)
    assert set(record["finding_sides"].values()) == {None}  # a lateral view shows no side


def test_as_images_scales_uint8_and_uint16_and_keeps_float_in_range() -> None:
    from radsynth.evaluate.reader.inference import as_images

    ramp = np.linspace(0.0, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    np.testing.assert_allclose(as_images(ramp)[0], ramp)
    eight = np.round(ramp * 255).astype(np.uint8)
    np.testing.assert_allclose(as_images(eight)[0], eight / 255.0, atol=1e-7)
    sixteen = np.round(ramp * 65535).astype(np.uint16)
    np.testing.assert_allclose(as_images(sixteen[None, None])[0], sixteen / 65535.0, atol=1e-7)
    # A rounding overshoot (an interpolation's) is clipped, not refused.
    assert as_images(ramp * (1 + 1e-5) - 1e-6).min() == 0.0
    assert as_images(torch.from_numpy(ramp).to(torch.bfloat16)).dtype == np.float32
    # A batch of three grayscale images is three images, not one colour image.
    assert as_images(np.zeros((3, 64, 64), dtype=np.float32)).shape == (3, 64, 64)


def test_as_images_refuses_colour_other_integers_and_floats_off_the_scale() -> None:
    from radsynth.evaluate.reader.inference import as_images

    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    for colour in (rgb, rgb[..., :2].repeat(2, -1), rgb[None]):
        with pytest.raises(ValueError, match="RGB.*convert to grayscale"):
            as_images(colour)
    for dtype in (np.int16, np.int32, np.int64):
        with pytest.raises(ValueError, match=r"float images in \[0, 1\], uint8, uint16"):
            as_images(np.full((64, 64), 3, dtype=dtype))
    for values in (np.full((64, 64), 255.0), np.full((64, 64), -0.5)):
        with pytest.raises(ValueError, match=r"in \[0, 1\]; these reach.*rescale them first"):
            as_images(values)
    with pytest.raises(ValueError, match="NaN or infinite"):
        as_images(np.full((64, 64), np.nan))


def test_the_side_of_an_ap_knee_is_read_from_where_the_fibula_lies() -> None:
    """The shipped reader's laterality head read most AP knees as left (8 of 16 right on
    phantoms); the fibula lies lateral to the tibia, so its place on the reader's own bone map
    tells the side. Lateral views keep the head's answer."""
    if not (WEIGHTS_DIR / "config.json").is_file():
        pytest.skip("no shipped reader weights in this checkout")
    reader = load_reader(WEIGHTS_DIR)
    cases = [
        make_case(seed, modality="xray", region=region, view="ap", laterality=side, size=256)
        for seed, (region, side) in enumerate(
            [("knee", "right"), ("knee", "left"), ("ankle", "right")] * 2
        )
    ]
    lateral = make_case(9, modality="xray", region="knee", view="lateral", size=256)
    records = reader.predict(np.stack([c.image.image for c in [*cases, lateral]]))
    assert [r["laterality"] for r in records[:-1]] == [c.labels.laterality for c in cases]
    assert all(r["laterality_from"] == "fibula and tibia" for r in records[:-1])
    assert all(r["laterality_head"] in ("left", "right") for r in records[:-1])
    assert "laterality_from" not in records[-1]


@pytest.mark.parametrize("stage", ["findings", "carpals", "body"])
def test_load_reader_refuses_a_stage_folder(stage: str) -> None:
    """A stage on its own loaded as a reader without label heads, and failed later at the
    first check that reads them; load_reader now says where the stage belongs."""
    if not (WEIGHTS_DIR / stage / "config.json").is_file():
        pytest.skip(f"no shipped {stage} stage in this checkout")
    with pytest.raises(ValueError, match=f"belongs in a subfolder .* READER/{stage}"):
        load_reader(WEIGHTS_DIR / stage)
