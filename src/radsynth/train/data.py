"""Training images from a manifest folder, as square float tensors in [0, 1]."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from radsynth.io.manifest import read_manifest
from radsynth.io.masks import load_masks
from radsynth.models import normalise_prompts
from radsynth.models.text_encoders import as_written


def load_gray(path: Path) -> np.ndarray:
    """A grayscale image file as float32 in [0, 1]: 8- and 16-bit PNG directly, other formats
    (DICOM, NIfTI, TIFF) through radsynth.io.reader with their display window."""
    if path.suffix.lower() == ".png":
        with Image.open(path) as image:
            if image.mode in SIXTEEN_BIT_PNG_MODES:
                return np.asarray(image, dtype=np.float32) / 65535.0
            if image.mode != "L":
                raise ValueError(f"{path} is {image.mode}, not grayscale; convert it to 8/16-bit")
            return np.asarray(image, dtype=np.float32) / 255.0
    from radsynth.io.reader import read_image

    return np.asarray(read_image(path).windowed(), dtype=np.float32)


SIXTEEN_BIT_PNG_MODES = ("I;16", "I;16B", "I;16L", "I")
GRAY_PNG_MODES = ("L", *SIXTEEN_BIT_PNG_MODES)


def _check_png_header(path: Path, record_id: str) -> None:
    """Before training: a PNG's header must open and be grayscale (a corrupt or colour file
    stopped a run with a traceback at the first batch that drew it, hours in)."""
    if path.suffix.lower() != ".png":
        return
    try:
        with Image.open(path) as image:
            mode = image.mode
    except (OSError, SyntaxError) as error:
        raise ValueError(
            f"manifest record {record_id!r}: {path} is not a readable PNG ({error})"
        ) from None
    if mode not in GRAY_PNG_MODES:
        raise ValueError(
            f"manifest record {record_id!r}: {path} is {mode}, not grayscale; convert it to "
            "8/16-bit grayscale"
        )


def square_resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square (the model's native shape), then resize to size x size."""
    rows, cols = pixels.shape
    side = min(rows, cols)
    top, left = (rows - side) // 2, (cols - side) // 2
    crop = pixels[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(crop)
    image = Image.fromarray(crop.astype(np.float32), mode="F")
    resized = image.resize(
        (size, size), Image.Resampling.BICUBIC if side < size else Image.Resampling.BOX
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def read_image(folder: Path, record: dict, size: int) -> np.ndarray:
    """Record `record`'s image as a (size, size) float32 array in [0, 1]."""
    return square_resize(load_gray(folder / record["image"]), size)


def read_mask_unions(
    folder: Path, record: dict, size: int, selectors: Sequence[Callable[[str], bool]]
) -> list[np.ndarray]:
    """For each selector, the union of `record`'s masks whose names it selects, as a (size,
    size) float32 array cropped and resized like its image; zeros without a masks file or
    without such a mask. The masks file is read once for all selectors."""
    empty = [np.zeros((size, size), dtype=np.float32) for _ in selectors]
    if not record.get("masks"):
        return empty
    path = folder / str(record["masks"])
    if not path.is_file():
        raise ValueError(
            f"manifest record {record['id']!r} names masks {record['masks']}, which is not in "
            f"{folder}; fix the manifest or copy the file"
        )
    masks = load_masks(path)
    shape: tuple[int, int] | None = None
    unions = []
    for selector, zeros in zip(selectors, empty, strict=True):
        chosen = [m for name, m in masks.items() if selector(name)]
        if not chosen:
            unions.append(zeros)
            continue
        union = np.logical_or.reduce(chosen).astype(np.float32)
        if shape is None:
            with Image.open(folder / record["image"]) as image:
                cols, rows = image.size
            shape = (rows, cols)
        rows, cols = shape
        if abs(union.shape[0] * cols - union.shape[1] * rows) > max(rows, cols):
            raise ValueError(
                f"manifest record {record['id']!r}: masks of {union.shape[0]} x "
                f"{union.shape[1]} px do not have the shape of its {rows} x {cols} px image"
            )
        unions.append(square_resize(union, size))
    return unions


def is_finding(name: str) -> bool:
    """Whether a mask name is a finding's (`finding_*`, as radsynth's phantoms write them)."""
    return name.startswith("finding_")


def structure_selector(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Whether a mask name matches one of the shell `patterns` (`l[1-5]`, `*_fibula`)."""
    return lambda name: any(fnmatchcase(name, p) for p in patterns)


def read_structure_mask(
    folder: Path, record: dict, size: int, patterns: Sequence[str]
) -> np.ndarray:
    """Where `record` shows the structures named by `patterns` (shell patterns over mask names,
    such as `l[1-5]` or `*_fibula`), as a (size, size) float32 array cropped and resized like
    its image; zeros without one."""
    return read_mask_unions(folder, record, size, [structure_selector(patterns)])[0]


Masks = tuple[np.ndarray | None, np.ndarray | None]
# A kind of loss mask: its per-record cache (None: read, and empty) and which mask names it joins.
MaskKind = tuple[dict[int, torch.Tensor | None], Callable[[str], bool]]


def _read_for_cache(
    job: tuple[Path, dict, int, bool, tuple[str, ...]],
) -> tuple[np.ndarray, Masks]:
    """One record's image and (None when not asked or empty) its finding and structure masks,
    in a worker; the masks file is read once for both."""
    folder, record, size, with_mask, structures = job
    asked: list[Callable[[str], bool]] = [is_finding] if with_mask else []
    if structures:
        asked.append(structure_selector(structures))
    unions = read_mask_unions(folder, record, size, asked) if asked else []
    nonempty = [mask if mask.any() else None for mask in unions]
    finding = nonempty.pop(0) if with_mask else None
    structure = nonempty.pop(0) if structures else None
    return read_image(folder, record, size), (finding, structure)


def training_caption(caption: str) -> tuple[str, bool]:
    """The caption a model is trained on, and whether the vocabulary understood it.

    A caption in radsynth's radiology terms is brought to its canonical wording, so synonyms and
    abbreviations train the same embedding that a prompt meaning the same thing gets at
    inference. A caption the vocabulary cannot read (a free-text report from a user's archive)
    is kept as written: training must not fail on one odd caption among thousands.
    """
    try:
        return normalise_prompts([caption])[0], True
    except ValueError:
        return as_written(caption), False


class ManifestImageDataset:
    """Images and captions of a manifest folder; images read lazily, resized to `resolution`."""

    def __init__(
        self,
        folder: str | Path,
        resolution: int,
        cache: bool = False,
        structures: Sequence[str] = (),
    ) -> None:
        self.folder = Path(folder)
        # With `cache`, each image and mask is decoded once and kept (see TrainConfig).
        self.cache = cache
        # Shell patterns over mask names whose union `structure_mask` gives.
        self.structures = tuple(structures)
        self._images: dict[int, torch.Tensor] = {}
        self._masks: dict[int, torch.Tensor | None] = {}
        self._structure_masks: dict[int, torch.Tensor | None] = {}
        self.records = read_manifest(self.folder)
        if not self.records:
            raise ValueError(f"{self.folder / 'manifest.jsonl'} has no records; add images first")
        self.resolution = resolution
        understood = [training_caption(str(record["caption"])) for record in self.records]
        self.captions = [caption for caption, _ in understood]
        # Records whose captions are kept as written (not in radsynth's vocabulary).
        self.free_text = [
            r["id"] for r, (_, ok) in zip(self.records, understood, strict=True) if not ok
        ]
        for record in self.records:
            if not (self.folder / record["image"]).is_file():
                raise ValueError(
                    f"manifest record {record['id']!r} names {record['image']}, which is not in "
                    f"{self.folder}; fix the manifest or copy the file"
                )
            _check_png_header(self.folder / record["image"], str(record["id"]))

    def preload(self, workers: int, with_masks: bool) -> None:
        """Fill the cache with every image (with `with_masks`, finding mask; and structure mask
        where the dataset names structures), decoded in `workers` processes: the first epoch of
        a fast GPU otherwise waits on one core decoding PNGs."""
        if not self.cache:
            raise ValueError("preload needs a dataset made with cache=True")
        todo = [i for i in range(len(self)) if i not in self._images]
        jobs = [
            (self.folder, self.records[i], self.resolution, with_masks, self.structures)
            for i in todo
        ]
        if workers <= 1 or len(todo) < 2 * workers:
            results = map(_read_for_cache, jobs)
            self._store(todo, results, with_masks)
            return
        # Fresh interpreters (spawn): forking a process that runs threads is unsafe.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            chunk = max(1, min(64, len(jobs) // (4 * workers)))
            self._store(todo, pool.map(_read_for_cache, jobs, chunksize=chunk), with_masks)

    def _store(
        self,
        indices: list[int],
        results: Iterable[tuple[np.ndarray, Masks]],
        with_masks: bool,
    ) -> None:
        def tensor(mask: np.ndarray | None) -> torch.Tensor | None:
            return None if mask is None else torch.from_numpy(mask)[None]

        for index, (image, (finding, structure)) in zip(indices, results, strict=True):
            self._images[index] = torch.from_numpy(image)[None]
            if with_masks:
                self._masks[index] = tensor(finding)
            if self.structures:
                self._structure_masks[index] = tensor(structure)

    def __len__(self) -> int:
        return len(self.records)

    def caption(self, index: int) -> str:
        """Caption `index` as trained on (see `training_caption`)."""
        return self.captions[index]

    def image(self, index: int) -> torch.Tensor:
        """Image `index` as a (1, resolution, resolution) float32 tensor in [0, 1]."""
        cached = self._images.get(index)
        if cached is not None:
            return cached.clone()
        pixels = read_image(self.folder, self.records[index], self.resolution)
        image = torch.from_numpy(pixels)[None]
        if self.cache:
            self._images[index] = image.clone()
        return image

    def finding_mask(self, index: int) -> torch.Tensor:
        """Where record `index` shows a finding, as a (1, resolution, resolution) float32 tensor:
        the union of its masks named `finding_*` (radsynth's phantoms write them), cropped and
        resized like its image, so an edge pixel holds the share of the finding in it. Zeros for
        a record without a `masks` file or without a finding mask."""
        return self._masks_of(index, [(self._masks, is_finding)])[0]

    def structure_mask(self, index: int) -> torch.Tensor:
        """Where record `index` shows the dataset's `structures` (the union of its masks whose
        names match one of the patterns), like `finding_mask`."""
        if not self.structures:
            raise ValueError("structure_mask needs a dataset made with structures")
        return self._masks_of(index, [self._structure_kind()])[0]

    def loss_masks(self, index: int, finding: bool) -> list[torch.Tensor]:
        """What a training step weights for record `index`: its `finding_mask` when `finding`,
        then its `structure_mask` when the dataset names structures; the masks file is read
        once for both (a training step without the cache would otherwise read it twice)."""
        kinds: list[MaskKind] = [(self._masks, is_finding)] if finding else []
        if self.structures:
            kinds.append(self._structure_kind())
        return self._masks_of(index, kinds)

    def _structure_kind(self) -> MaskKind:
        return self._structure_masks, structure_selector(self.structures)

    def _masks_of(
        self,
        index: int,
        kinds: list[MaskKind],
    ) -> list[torch.Tensor]:
        """Record `index`'s mask union for each (cache, selector) of `kinds`: from the cache
        where it holds one, else from the masks file, read once for all the others."""
        size = self.resolution
        missing = [k for k, (cache, _) in enumerate(kinds) if index not in cache]
        selectors = [kinds[k][1] for k in missing]
        record = self.records[index]
        unions = read_mask_unions(self.folder, record, size, selectors) if missing else []
        fresh = dict(zip(missing, unions, strict=True))
        masks = []
        for k, (cache, _) in enumerate(kinds):
            if k in fresh:
                mask = torch.from_numpy(fresh[k])[None]
                if self.cache:
                    # Most records have no such mask: they cost no memory.
                    cache[index] = mask.clone() if bool(mask.any()) else None
            else:
                cached = cache[index]
                mask = torch.zeros(1, size, size) if cached is None else cached.clone()
            masks.append(mask)
        return masks

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, list[str]]:
        """Images (B, 1, R, R) and captions for `indices`."""
        return torch.stack([self.image(i) for i in indices]), [self.caption(i) for i in indices]
