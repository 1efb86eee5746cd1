"""Folders of images as metric input: read, scale to [0, 1] and bring to one size.

A folder is either a radsynth data folder (a `manifest.jsonl` naming the images, with captions
and labels) or any folder of image files (DICOM, PNG, TIFF, JPEG, NIfTI), searched recursively.
A folder that radsynth wrote (a `dataset build` or `phantoms` folder) but whose manifest is
missing is refused rather than searched: it holds each image several times (images/, display/,
dicom/) besides grids and previews, and the message says how to get the manifest back.
Display values in [0, 1]: PNG, TIFF and JPEG pixels divided by the largest stored value (so a
16-bit phantom PNG keeps its intensities), DICOM and NIfTI through their header window (else
their own minimum to maximum), as `MedicalImage.windowed()` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from radsynth.io.errors import ImageReadError
from radsynth.io.manifest import MANIFEST_NAME, read_manifest
from radsynth.io.reader import ColorPolicy, MedicalImage, read_image

__all__ = [
    "EvaluateError",
    "ImageSet",
    "harmonise_sizes",
    "load_image_folder",
    "radsynth_layout",
]

OnError = Literal["fail", "skip"]
# Files in a plain folder that are never images (masks, manifests, notes).
NOT_IMAGES = {
    ".json", ".jsonl", ".npz", ".npy", ".csv", ".parquet", ".txt", ".md", ".html", ".py",
    ".yaml", ".yml", ".toml",
}  # fmt: skip
# What radsynth's own folders hold beside manifest.jsonl (radsynth.datasets.build and
# .journal, .export and .summary; radsynth.cli.phantoms_command and .checks): the names are
# written out here because the evaluate layer may not import the data-set builder or the CLI.
# (Not manifest.csv or summary.html alone: a user's own archive may hold such files.)
DATASET_MARKERS = ("spec.json", "journals")
PHANTOMS_MARKERS = ("phantoms.json",)
DEFAULT_SIZE = 128  # px a side, when the images differ in size and no size is given


class EvaluateError(ValueError):
    """Input that the evaluation cannot use; the message says what to change."""


@dataclass
class ImageSet:
    """Images of one folder as float32 (N, H, W) in [0, 1], with what the folder says of them."""

    folder: Path
    images: np.ndarray  # float32 (N, S, S) after harmonise_sizes; before, 2-D images of any size
    names: list[str]  # file paths relative to the folder
    captions: list[str | None]  # from manifest.jsonl, else None
    labels: list[dict[str, Any] | None]  # from manifest.jsonl, else None
    skipped: list[str] = field(default_factory=list)  # "file: reason" for unreadable files
    notes: list[str] = field(default_factory=list)
    # The prompt each image was made from (a data set's manifest.jsonl `prompt`), else None:
    # a prompt's images share it where each image has a caption of its own.
    prompts: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)


def _display(image: MedicalImage) -> np.ndarray:
    if image.format in ("png", "tiff", "jpeg") and image.value_range is not None:
        high = image.value_range[1]
        return np.clip(image.pixels / high, 0.0, 1.0).astype(np.float32)
    return image.windowed()


Entry = tuple[Path, str | None, dict[str, Any] | None, str | None]  # file, caption, labels, prompt


def radsynth_layout(folder: Path) -> str | None:
    """Which radsynth command wrote `folder`, judged by the files it writes beside the
    manifest: "dataset" (`radsynth dataset build`), "phantoms" (`radsynth phantoms`), "data"
    (images/ and display/ copies of each image, written by either), or None (not radsynth's)."""
    if any((folder / name).exists() for name in DATASET_MARKERS):
        return "dataset"
    if any((folder / name).exists() for name in PHANTOMS_MARKERS):
        return "phantoms"
    if not (folder / "images").is_dir():
        return None
    if (folder / "preview.png").is_file():
        return "phantoms"
    return "data" if (folder / "display").is_dir() else None


def _missing_manifest(folder: Path, layout: str) -> EvaluateError:
    """The error for a radsynth folder whose manifest.jsonl is gone: how to get it back."""
    if layout == "dataset":
        restore = (
            f"rebuild it from the journals with `radsynth dataset build SPEC --out {folder} "
            "--resume` and the SPEC file the set was built from (nothing is drawn again)"
        )
    elif (folder / PHANTOMS_MARKERS[0]).is_file():
        restore = (
            f"redraw it with `radsynth phantoms --out {folder} --resume --n N` and the options "
            "in its phantoms.json (N: the number of cases in images/; the cases come out the "
            "same)"
        )
    else:
        restore = "redraw the cases into a new folder with the options they were drawn with"
    return EvaluateError(
        f"{folder} is a radsynth {layout} folder but its {MANIFEST_NAME} is missing, so its "
        f"captions and labels are unknown and each image would count several times (images/, "
        f"display/, dicom/, grids, previews); {restore}, or give {folder / 'images'} to score "
        "the images without captions"
    )


def _entries(folder: Path) -> list[Entry]:
    if (folder / MANIFEST_NAME).is_file():
        try:
            records = read_manifest(folder)
        except ValueError as error:
            raise EvaluateError(f"{folder}: {error}") from None
        return [
            (folder / r["image"], r.get("caption"), r.get("labels"), _prompt(r)) for r in records
        ]
    layout = radsynth_layout(folder)
    if layout is not None:
        raise _missing_manifest(folder, layout)
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and "".join(path.suffixes[-1:]).lower() not in NOT_IMAGES
    )
    return [(path, None, None, None) for path in files]


def _prompt(record: dict[str, Any]) -> str | None:
    prompt = record.get("prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def load_image_folder(
    folder: str | Path,
    *,
    on_error: OnError = "fail",
    advance: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    color: ColorPolicy = "error",
) -> ImageSet:
    """Read every image of `folder` (see the module doc). Unreadable files stop the run with an
    `EvaluateError` naming them (`on_error="fail"`) or are listed in `skipped` ("skip").
    `color="luminance"` converts colour images to grayscale (ITU-R BT.601) instead of refusing
    them. `on_total(n)` and `advance(1)` report progress."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluateError(f"{folder} does not exist or is not a folder")
    entries = _entries(folder)
    if not entries:
        raise EvaluateError(f"{folder} holds no image files; give a folder of PNG/DICOM images")
    if on_total is not None:
        on_total(len(entries))
    images, names, captions, labels, skipped, prompts = [], [], [], [], [], []
    volumes: list[str] = []  # 3-D NIfTI files, each read as its middle axial slice
    for path, caption, label, prompt in entries:
        name = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
        try:
            image = read_image(path, color=color)
            if image.format == "nifti" and image.n_frames > 1:
                volumes.append(name)
            pixels = _display(image)
        except (ImageReadError, FileNotFoundError, IsADirectoryError) as error:
            reason = error.problem if isinstance(error, ImageReadError) else "file not found"
            if on_error == "fail":
                raise EvaluateError(
                    f"{path}: {reason}; remove the file or pass --on-error skip"
                ) from None
            skipped.append(f"{name}: {reason}")
        else:
            images.append(pixels)
            names.append(name)
            captions.append(caption)
            labels.append(label)
            prompts.append(prompt)
        if advance is not None:
            advance(1)
    if not images:
        raise EvaluateError(f"{folder}: none of its {len(entries)} files could be read as images")
    stack = np.empty(len(images), dtype=object)
    stack[:] = images
    result = ImageSet(folder, stack, names, captions, labels, skipped, prompts=prompts)
    if volumes:
        more = f" and {len(volumes) - 5} more" if len(volumes) > 5 else ""
        shown = ", ".join(volumes[:5]) + more
        result.notes.append(
            f"{len(volumes)} NIfTI volume(s) read as one image each, their middle axial slice "
            f"({shown}); export the slices to score as images"
        )
    return result


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    # Pillow's bilinear filter widens its support when shrinking, so downsizing is antialiased.
    resized = Image.fromarray(np.asarray(image, dtype=np.float32), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def harmonise_sizes(sets: list[ImageSet], size: int | None = None) -> int:
    """Stack every set's images into (N, S, S) float32 in place and return S.

    With `size` None, images that all share one square shape keep it; otherwise every image is
    resized to `size` (default 128) px square, and each set gets a note saying from which sizes.
    """
    shapes = Counter(image.shape for s in sets for image in s.images)
    keep = size is None and len(shapes) == 1 and next(iter(shapes))[0] == next(iter(shapes))[1]
    side = int(next(iter(shapes))[0]) if keep else int(size or DEFAULT_SIZE)
    if side < 32:
        raise EvaluateError(f"images must be at least 32 px a side for the metrics, got {side}")
    for image_set in sets:
        own = Counter(f"{h}x{w}" for h, w in (image.shape for image in image_set.images))
        changed = sum(n for shape, n in own.items() if shape != f"{side}x{side}")
        if changed:
            sizes = ", ".join(f"{n} of {shape}" for shape, n in sorted(own.items()))
            image_set.notes.append(
                f"resized {changed} of {len(image_set)} images ({sizes}) to {side}x{side} px"
                " (bilinear; aspect ratio not kept)"
            )
        image_set.images = np.stack(
            [im if im.shape == (side, side) else _resize(im, side) for im in image_set.images]
        ).astype(np.float32)
    return side
