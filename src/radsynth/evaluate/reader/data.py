"""Training data for the reader: phantom cases rendered once and cached in shards.

A shard is one `.npz` (no pickle) holding, for `SHARD_SIZE` consecutive cases, the 8-bit
images, the group segmentations packed to bits, the centre heat maps as 8-bit and the label
targets. Case `i` of a split is drawn from the seed sequence (seed, split, i), so a cache can be
extended, resumed or rebuilt piece by piece and always holds the same cases.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radsynth.evaluate.reader.groups import (
    COUNTED,
    FINDINGS,
    GROUPS,
    HEADS,
    heatmap_target,
    instance_points,
    label_targets,
    lesion_target,
    segmentation_target,
)

SHARD_SIZE = 200
SPLITS = {"train": 0, "heldout": 1}
# Radiographs are what the anatomy checks read: they get most of the data; hands and wrists
# (8 carpals to separate) twice the share of another region.
MODALITY_SHARES = {"xray": 0.7, "ct": 0.1, "mri": 0.1, "us": 0.1}
REGION_BOOST = {"hand": 2.0, "wrist": 2.0, "knee": 1.5, "lumbar_spine": 1.5}


def case_choice(seed: int, split: str, index: int) -> tuple[int, str, str | None]:
    """(case seed, modality, x-ray region or None) of case `index` of a split."""
    from radsynth.vocabulary.labels import XRAY_REGIONS

    rng = np.random.default_rng([seed, SPLITS[split], index])
    modality = str(rng.choice(list(MODALITY_SHARES), p=list(MODALITY_SHARES.values())))
    region = None
    if modality == "xray":
        weights = np.array([REGION_BOOST.get(r, 1.0) for r in XRAY_REGIONS])
        region = str(rng.choice(XRAY_REGIONS, p=weights / weights.sum()))
    return int(rng.integers(2**31)), modality, region


def is_variant_case(seed: int, split: str, index: int, variant_share: float) -> bool:
    """Whether training case `index` is a variant radiograph (held-out cases never are: the
    variants are scored by `radsynth.evaluate.reader.validate`). Drawn from a stream of its own,
    so a share of 0 leaves every case as it was."""
    if split != "train" or variant_share <= 0:
        return False
    return bool(np.random.default_rng([seed, SPLITS[split], index, 1]).random() < variant_share)


def render_example(
    seed: int, split: str, index: int, size: int, variant_share: float = 0.0
) -> dict[str, np.ndarray]:
    """Render one case and turn it into reader targets (arrays only)."""
    from radsynth.phantoms.cases import make_case

    case_seed, modality, region = case_choice(seed, split, index)
    if is_variant_case(seed, split, index, variant_share):
        from radsynth.evaluate.reader.variant_cases import variant_case

        image, record = variant_case(case_seed, size)
    else:
        case = make_case(case_seed, modality=modality, region=region, size=size)
        image, record = case.image, case.labels.to_dict()
    masks = image.masks
    shape = image.image.shape
    labels = label_targets(record)
    return {
        "image": image.to_uint8(),
        "segmentation": np.packbits(segmentation_target(masks, shape), axis=0),
        "lesions": np.packbits(lesion_target(masks, shape), axis=0),
        "centres": np.round(heatmap_target(instance_points(masks), shape) * 255).astype(np.uint8),
        **{head: np.array(labels[head], dtype=np.int64) for head in HEADS},
        "findings": np.asarray(labels["findings"], dtype=np.float32),
    }


def _render_shard(args: tuple[int, str, int, int, int, float]) -> dict[str, np.ndarray]:
    seed, split, start, stop, size, variant_share = args
    examples = [render_example(seed, split, i, size, variant_share) for i in range(start, stop)]
    return {key: np.stack([e[key] for e in examples]) for key in examples[0]}


@dataclass
class ReaderCache:
    """A folder of shards for one (seed, size)."""

    folder: Path
    seed: int
    size: int
    variant_share: float = 0.0  # training cases that are variant radiographs

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta_path = self.folder / "cache.json"
        meta = {
            "seed": self.seed,
            "size": self.size,
            "shard_size": SHARD_SIZE,
            "groups": list(GROUPS),
            "counted": list(COUNTED),
            "findings": list(FINDINGS),
            "lesions": True,
        }
        if self.variant_share > 0:  # absent when 0: caches written before variants still match
            meta["variant_share"] = self.variant_share
        if meta_path.exists():
            found = json.loads(meta_path.read_text())
            if found != meta:
                raise ValueError(
                    f"the cache in {self.folder} was built for seed {found.get('seed')}, size "
                    f"{found.get('size')} and other targets; use another --cache folder or "
                    "delete this one"
                )
        else:
            meta_path.write_text(json.dumps(meta, indent=2) + "\n")

    def shard_path(self, split: str, number: int) -> Path:
        return self.folder / f"{split}_{number:05d}.npz"

    def _needed(self, n: int, number: int) -> int:
        return min(SHARD_SIZE, n - number * SHARD_SIZE)

    def missing(self, split: str, n: int) -> list[int]:
        """Shards of the first `n` cases not cached yet, or cached with fewer cases (a small
        run writes short shards; a larger one later re-renders them whole)."""
        out = []
        for number in range(-(-n // SHARD_SIZE)):
            path = self.shard_path(split, number)
            if not path.exists():
                out.append(number)
                continue
            with np.load(path) as shard:
                if len(shard["modality"]) < self._needed(n, number):
                    out.append(number)
        return out

    def build(
        self,
        split: str,
        n: int,
        workers: int = 1,
        on_shard: Callable[[int], None] | None = None,
    ) -> None:
        """Render the shards of the first `n` cases of `split` that are not cached yet
        (a shard is written whole, under a temporary name first: an interrupted build resumes)."""
        jobs = [
            (
                self.seed,
                split,
                k * SHARD_SIZE,
                k * SHARD_SIZE + self._needed(n, k),
                self.size,
                self.variant_share,
            )
            for k in self.missing(split, n)
        ]

        def write(
            job: tuple[int, str, int, int, int, float], arrays: dict[str, np.ndarray]
        ) -> None:
            path = self.shard_path(split, job[2] // SHARD_SIZE)
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez_compressed(tmp, allow_pickle=False, **arrays)
            tmp.replace(path)
            if on_shard:
                on_shard(SHARD_SIZE)

        if workers <= 1:
            for job in jobs:
                write(job, _render_shard(job))
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for job, arrays in zip(jobs, pool.map(_render_shard, jobs), strict=True):
                write(job, arrays)

    def load(self, split: str, n: int) -> dict[str, np.ndarray]:
        """The first `n` cases of `split` as arrays (segmentation still bit-packed)."""
        parts = [dict(np.load(self.shard_path(split, k))) for k in range(-(-n // SHARD_SIZE))]
        return {key: np.concatenate([p[key] for p in parts])[:n] for key in parts[0]}


def unpack(data: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    """Rows `index` of cached arrays, ready for the network (float32 images and maps)."""
    seg = np.unpackbits(data["segmentation"][index], axis=1)[:, : len(GROUPS)]
    out = {key: data[key][index] for key in (*HEADS, "findings")}
    out["image"] = data["image"][index].astype(np.float32)[:, None] / 255.0
    out["segmentation"] = seg.astype(np.float32)
    if "lesions" in data:
        lesions = np.unpackbits(data["lesions"][index], axis=1)[:, : len(FINDINGS)]
        out["lesions"] = lesions.astype(np.float32)
    out["centres"] = data["centres"][index].astype(np.float32) / 255.0
    return out
