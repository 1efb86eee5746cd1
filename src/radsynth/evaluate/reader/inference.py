"""Using a trained reader: labels, structure maps and features of any grayscale image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from radsynth.evaluate.reader.model import (
    ReaderNet,
    full_reader_problem,
    load_reader_net,
    read_reader_config,
    stage_kind,
)

if TYPE_CHECKING:
    from radsynth.evaluate.reader.body import BodyStage
    from radsynth.evaluate.reader.carpals import CarpalStage
    from radsynth.evaluate.reader.findings import FindingStage

WEIGHTS_DIR = Path(__file__).parent / "weights"
PEAK_THRESHOLD = 0.3  # a centre peak counts as a bone above this probability
# Where a lesion map lies: views that show the patient's left on the image's right (the
# radiological convention of frontal radiographs and of axial and coronal slices).
FRONTAL_VIEWS = frozenset({"ap", "pa", "axial", "coronal"})
SIDE_MARGIN = 2.0  # one half of the image holds this many times the other's lesion pixels
SIDE_MIN_PIXELS = 2  # lesion pixels (p >= 0.5, at the reader's size) a side is read from


def lesion_sides(lesions: torch.Tensor, kinds: Sequence[str]) -> list[dict[str, str | None]]:
    """Per image, the side of the patient each kind's lesion map lies on, from lesion logits
    (B, K, S, S) of a frontal image (see FRONTAL_VIEWS): "left" where the image's right half
    holds SIDE_MARGIN times the lesion pixels of its left half, "right" for the reverse, None
    where neither does or the map has fewer than SIDE_MIN_PIXELS."""
    seen = (lesions >= 0.0).float()  # p >= 0.5
    half = seen.shape[-1] // 2
    image_left = seen[..., :half].sum((-2, -1))
    image_right = seen[..., seen.shape[-1] - half :].sum((-2, -1))
    sides = []
    for left_px, right_px in zip(image_left.tolist(), image_right.tolist(), strict=True):
        row: dict[str, str | None] = {}
        for kind, a, b in zip(kinds, left_px, right_px, strict=True):
            side = None
            if a + b >= SIDE_MIN_PIXELS:
                side = "left" if b >= SIDE_MARGIN * a else "right" if a >= SIDE_MARGIN * b else None
            row[kind] = side
        sides.append(row)
    return sides


def frontal_sides(record: dict[str, Any], sides: dict[str, str | None]) -> dict[str, str | None]:
    """`sides` (of `lesion_sides`) where the reader reads the image as frontal (its `view` in
    FRONTAL_VIEWS), else no side for any kind: a lateral view shows none."""
    frontal = record.get("view") in FRONTAL_VIEWS
    return {kind: side if frontal else None for kind, side in sides.items()}


def count_peaks(heat: np.ndarray, threshold: float = PEAK_THRESHOLD) -> list[tuple[int, int]]:
    """Local maxima (3x3 neighbourhood) of a centre heat map above `threshold`: one per bone.
    Plateaus (equal neighbours) count once."""
    peaks = (heat >= threshold) & (heat == ndimage.maximum_filter(heat, size=3))
    labelled, count = ndimage.label(peaks)
    if count == 0:
        return []
    centres = ndimage.center_of_mass(peaks, labelled, range(1, count + 1))
    return [(int(round(r)), int(round(c))) for r, c in centres]


@dataclass
class StructureMap:
    """What the reader sees of the anatomy: a boolean mask per structure group and, per counted
    group, the centre of each bone (row, col in the map's pixels)."""

    masks: dict[str, np.ndarray]
    centres: dict[str, list[tuple[int, int]]]
    instance_areas: dict[str, list[int]] | None = None  # known for the answer key only

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.masks.values())).shape


# Pixels of the reader's map a bone needs before its place tells a side (at its 160 px).
MIN_BONE_PIXELS = 20
# Float images may stray this far outside [0, 1] (rounding of a resize or a blend) and are
# clipped; further out they are refused as data on another scale.
FLOAT_TOLERANCE = 1e-3


def as_images(images: Any) -> np.ndarray:
    """Images -> float32 (B, H, W) in [0, 1] at their own size. Accepts one (H, W) or a
    (B, H, W) (or (B, 1, H, W)) array or tensor of grayscale images: float in [0, 1], uint8
    (/255), uint16 (/65535) or bool. Colour images (a trailing axis of 3 or 4 channels), other
    integer types and floats outside [0, 1] are refused: convert or scale them first."""
    if isinstance(images, torch.Tensor):
        tensor = images.detach().cpu()
        array = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    else:
        array = np.asarray(images)
    if array.ndim in (3, 4) and array.shape[-1] in (3, 4):
        raise ValueError(
            f"the reader takes grayscale images; got shape {array.shape}, whose last axis looks "
            "like RGB(A) channels: convert to grayscale first (e.g. PIL .convert('L'))"
        )
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(
            f"the reader takes grayscale images shaped (H, W) or (B, H, W); got {array.shape}"
        )
    if array.dtype == np.uint8:
        return (array / 255.0).astype(np.float32)
    if array.dtype == np.uint16:
        return (array / 65535.0).astype(np.float32)
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"the reader takes float images in [0, 1], uint8, uint16 or bool; got {array.dtype}: "
            "scale the images to float in [0, 1] first"
        )
    array = array.astype(np.float32)
    if not array.size:
        return array
    if not np.isfinite(array).all():
        raise ValueError("the images hold NaN or infinite values; the reader takes [0, 1]")
    low, high = float(array.min()), float(array.max())
    if low < -FLOAT_TOLERANCE or high > 1.0 + FLOAT_TOLERANCE:
        raise ValueError(
            f"the reader takes float images in [0, 1]; these reach {low:.4g}..{high:.4g}: "
            "rescale them first"
        )
    return np.clip(array, 0.0, 1.0)


def as_batch(images: Any, size: int) -> torch.Tensor:
    """Images -> float32 (B, 1, size, size) in [0, 1] (see `as_images`); resized (bilinear,
    antialiased) when needed."""
    tensor = torch.from_numpy(as_images(images))[:, None]
    if tensor.shape[-2:] != (size, size):
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True)
    return tensor


class Reader:
    """A trained reader: `predict` labels, `structures` (segmentation and bone centres),
    `features` (pooled encoder output, the feature space of the distribution metrics).
    With a carpal stage (`radsynth.evaluate.reader.carpals`), the carpal centres come from its
    closer look at the image, in a box placed by the reader's carpal mask. With finding stages
    (`radsynth.evaluate.reader.findings`), the probabilities of a stage's kinds in images the
    reader reads as radiographs (of the stage's regions, if it has any) come from the stage; a
    later stage answers over an earlier one where both answer. A body stage
    (`radsynth.evaluate.reader.body`) reads whole-body AP radiographs (`read_body`); the
    reader's own readings do not change with it."""

    def __init__(
        self,
        net: ReaderNet,
        carpals: CarpalStage | None = None,
        findings: FindingStage | Sequence[FindingStage] | None = None,
        body: BodyStage | None = None,
    ) -> None:
        self.net = net.eval()
        self.config = net.config
        self.carpals = carpals
        self.body = body
        if findings is None:
            self.finding_stages: tuple[FindingStage, ...] = ()
        elif isinstance(findings, Sequence):
            self.finding_stages = tuple(findings)
        else:
            self.finding_stages = (findings,)

    @torch.no_grad()
    def _run(self, images: Any, batch_size: int = 32) -> list[dict[str, torch.Tensor]]:
        batch = as_batch(images, self.config.size)
        return [self.net(batch[i : i + batch_size]) for i in range(0, len(batch), batch_size)]

    def features(self, images: Any) -> np.ndarray:
        """Float32 (B, widths[-1]) pooled features of the images."""
        return np.concatenate([o["features"].numpy() for o in self._run(images)])

    def predict(self, images: Any) -> list[dict[str, Any]]:
        """Per image: the most likely value and its probability per label head, and the
        probability of each finding kind."""
        results: list[dict[str, Any]] = []
        for out in self._run(images):
            start = len(results)
            probs = {h: torch.softmax(out[h], 1).numpy() for h in self.config.heads}
            findings = torch.sigmoid(out["findings"]).numpy()
            for i in range(len(findings)):
                record: dict[str, Any] = {}
                for head, classes in self.config.heads.items():
                    k = int(probs[head][i].argmax())
                    value = classes[k]
                    record[head] = None if value == "none" else value
                    record[f"{head}_probability"] = float(probs[head][i, k])
                record["findings"] = {
                    kind: float(findings[i, j]) for j, kind in enumerate(self.config.findings)
                }
                results.append(record)
            self._anatomical_sides(results[start:], out["segmentation"])
            if "lesions" in out:
                sides = lesion_sides(out["lesions"], self.config.findings)
                for record, row in zip(results[start:], sides, strict=True):
                    record["finding_sides"] = frontal_sides(record, row)
        return self.refine_findings(images, results)

    def _anatomical_sides(self, records: list[dict[str, Any]], segmentation: torch.Tensor) -> None:
        """The side of an AP knee or ankle from the reader's own bone maps: the fibula lies
        lateral to the tibia, so on the image's left of it in a right leg (the patient's right
        on the image's left). The laterality head is right on about half of the phantoms' AP
        knees (it reads most as left) and this rule on 14 of 14 (docs/reader.md); where both
        bones are seen it replaces the head's answer (kept as `laterality_head`)."""
        groups = self.config.groups
        if "fibula" not in groups or "tibia" not in groups or "laterality" not in records[0]:
            return
        fibula, tibia = groups.index("fibula"), groups.index("tibia")
        for i, record in enumerate(records):
            if record.get("region") not in ("knee", "ankle") or record.get("view") != "ap":
                continue
            fibula_cols = np.nonzero((segmentation[i, fibula] > 0).numpy())[1]
            tibia_cols = np.nonzero((segmentation[i, tibia] > 0).numpy())[1]
            if min(len(fibula_cols), len(tibia_cols)) < MIN_BONE_PIXELS:
                continue
            record["laterality_head"] = record["laterality"]
            record["laterality"] = "right" if fibula_cols.mean() < tibia_cols.mean() else "left"
            record["laterality_from"] = "fibula and tibia"

    def refine_findings(self, images: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`records` (the reader's own `predict` records of `images`) with each finding
        stage's probabilities of the kinds it reads, on the images it answers for (see
        `FindingStage.answers`), in the order of the stages; unchanged without stages. Changes
        `records` in place."""
        if not self.finding_stages:
            return records
        pictures = as_images(images)
        for stage in self.finding_stages:
            chosen = [i for i, r in enumerate(records) if stage.answers(r)]
            if not chosen:
                continue
            probabilities, sides = stage.read(pictures[chosen])
            for i, row, side in zip(chosen, probabilities, sides, strict=True):
                records[i]["findings"].update(
                    {kind: float(p) for kind, p in zip(stage.kinds, row, strict=True)}
                )
                records[i].setdefault("finding_sides", {}).update(frontal_sides(records[i], side))
        return records

    def segmentation_logits(self, images: Any) -> np.ndarray:
        """Float32 (B, groups, size, size) logits of the structure groups (a group is seen
        where its logit is above 0), for callers that combine several readings of an image."""
        return np.concatenate([o["segmentation"].numpy() for o in self._run(images)])

    def structures(self, images: Any) -> list[StructureMap]:
        """Per image, the structure groups it shows and the centres of countable bones, at
        the reader's size (`config.size` pixels square)."""
        maps = []
        for out in self._run(images):
            seg = (out["segmentation"] > 0).numpy()
            heat = torch.sigmoid(out["centres"]).numpy()
            for i in range(len(seg)):
                masks = {g: seg[i, k] for k, g in enumerate(self.config.groups)}
                centres = {g: count_peaks(heat[i, k]) for k, g in enumerate(self.config.counted)}
                maps.append(StructureMap(masks, centres))
        return self.refine_carpals(images, maps)

    def refine_carpals(self, images: Any, maps: list[StructureMap]) -> list[StructureMap]:
        """`maps` (the reader's own, of `images`) with the carpal centres of the carpal stage
        wherever the map shows carpals; unchanged without a stage. Changes `maps` in place."""
        if self.carpals is not None and "carpals" in self.config.counted:
            for image, smap in zip(as_images(images), maps, strict=True):
                found = self.carpals.centres(image, smap.masks["carpals"])
                if found is not None:
                    smap.centres["carpals"] = found
        return maps

    def read_body(self, images: Any) -> list[StructureMap]:
        """Per whole-body AP radiograph ((H, W) or (B, H, W), any size), the body stage's
        femur, tibia, fibula, pelvis, sacrum, thoracic and lumbar vertebra masks and lumbar
        centres, in the stage's pixels (`body.BODY_SHAPE`). A reader without a body stage is
        an error: its own 160 px square does not read a whole body (docs/reader.md)."""
        if self.body is None:
            raise ValueError(
                "this reader has no body stage (a `body/` subfolder written by "
                "`radsynth train-body-reader`)"
            )
        return self.body.structures(images)


CARPAL_STAGE = "carpals"  # a reader folder's subfolder holding its carpal stage, if any
FINDING_STAGE = "findings"  # ... its finding stage, then those of `findings_<name>/` subfolders
BODY_STAGE = "body"  # ... its body stage, if any


def finding_stage_folders(folder: Path) -> list[Path]:
    """A reader folder's finding stages in the order they answer: `findings/`, then the
    `findings_<name>/` subfolders by name (a later one answers over an earlier one)."""
    named = sorted(p for p in folder.glob(f"{FINDING_STAGE}_*") if p.is_dir())
    return [p for p in [folder / FINDING_STAGE, *named] if (p / "config.json").is_file()]


@lru_cache(maxsize=4)
def _cached(folder: str) -> Reader:
    path = Path(folder)
    if (path / "config.json").is_file() and (path / "reader.safetensors").is_file():
        # Once per folder (a refusal is not cached): a stage on its own is no reader.
        config = read_reader_config(path)
        if stage_kind(config) is not None:
            raise ValueError(full_reader_problem(config, folder, (), (), (), "load_reader"))
    carpals = Path(folder) / CARPAL_STAGE
    carpal_stage = None
    if (carpals / "config.json").is_file():
        from radsynth.evaluate.reader.carpals import CarpalStage

        carpal_stage = CarpalStage(load_reader_net(carpals))
    from radsynth.evaluate.reader.findings import FindingStage

    stages = [FindingStage.load(p) for p in finding_stage_folders(Path(folder))]
    body = Path(folder) / BODY_STAGE
    body_stage = None
    if (body / "config.json").is_file():
        from radsynth.evaluate.reader.body import BodyStage

        body_stage = BodyStage(load_reader_net(body))
    return Reader(load_reader_net(Path(folder)), carpal_stage, stages, body_stage)


def load_reader(folder: str | Path | None = None) -> Reader:
    """The reader shipped with radsynth (or one written by `radsynth train-reader --out`);
    loaded offline from safetensors, cached per folder. A `carpals/` subfolder (written by
    `radsynth train-carpal-reader`) adds the carpal stage, a `findings/` subfolder and any
    `findings_<name>/` ones (written by `radsynth train-finding-reader`) the finding stages, a
    `body/` subfolder (written by `radsynth train-body-reader`) the body stage. A folder that
    holds such a stage on its own is refused, saying where it belongs (it loaded as a reader
    without label heads, and failed later at the first check that reads them)."""
    return _cached(str(Path(folder) if folder is not None else WEIGHTS_DIR))


def pad_to_square(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad the shorter side (equally both ends) with the image's border median; returns the
    square image and the (row, column) offset of the original in it."""
    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape
    side = max(h, w)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    square = np.full((side, side), float(np.median(border)), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = image
    return square, (top, left)
