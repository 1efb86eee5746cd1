"""The reference study's protocol, run on any radsynth model and scored against phantom truth.

`run_probe(folder, out, ProbeConfig(...))` makes, in order:

- Figure 1: "An X-ray of the <region>" for the study's eight regions, N images each, all kept;
- Figure 2: CT, MRI and ultrasound prompts;
- an anatomy and bias set: AP and lateral knees and lumbar spines, PA hands and wrists, PA
  chests of a younger woman and an older man;
- pathology: fracture, bone tumour, intracranial haemorrhage, consolidation, pleural effusion;
- Figure 3: a central square erased from phantom radiographs of pelvis, ankle, chest,
  shoulder, knee, wrist and thoracic spine, refilled by the model's InpaintPipeline, beside
  scikit-image's biharmonic fill;
- Figure 4: radiographs of abdomen, chest, pelvis, knee, lumbar spine, wrist and hand extended
  past two opposite borders by the OutpaintPipeline (along the body's axis for limbs and
  spine, across it for the trunk: each a quarter of the image, two native tiles); a knee grown
  to a full body;
- finding effect: each pathology prompt against its twin without the finding, same seeds,
  compared inside and outside the place where phantoms of that prompt show the finding (a
  measure that needs no reader), and for a prompt that names the finding's side (left pleural
  effusion, right lower lobe) at the place the finding takes on the other side;
- memorization: every generated image against phantoms drawn like the training data.

The reader (`radsynth.evaluate.reader`) reads every generated image; the anatomy checks run on
its segmentation. Without a reader the reader-based targets are reported as not measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radsynth.evaluate.anatomy import (
    EXPECTED_COUNTS,
    EXPECTED_PRESENT,
    INSIDE_FIELD,
    check_anatomy,
    truth_structure_map,
)
from radsynth.evaluate.metrics.masked_fidelity import count_bright_components
from radsynth.evaluate.metrics.memorization import memorization_audit
from radsynth.paths import BUILTIN_MODEL
from radsynth.probe.figures import FigureRow, figure1_prompts
from radsynth.probe.scorecard import (
    PATHOLOGY_KINDS,
    finding_effect_row,
    other_side,
    place_panel,
    prompt_diversity,
    score_targets,
    summarise_finding_effect,
)
from radsynth.probe.scoring import (
    ReaderStructureCounter,
    central_mask,
    femur_tibia,
    pad_to_square,
    read_in_windows,
    regional_plane,
    resize_image,
    resize_mask,
    score_extension,
    score_inpainting,
)
from radsynth.probe.targets import Target, json_clean
from radsynth.vocabulary import PAIRED_REGIONS, canonical_caption, parse_prompt
from radsynth.vocabulary.labels import Labels

__all__ = [
    "ANATOMY_PROMPTS",
    "FIGURE2_PROMPTS",
    "FIGURE3_REGIONS",
    "FIGURE4_REGIONS",
    "PATHOLOGY_KINDS",
    "PATHOLOGY_PROMPTS",
    "GeneratedImage",
    "ProbeConfig",
    "ProbeResult",
    "check_probe_reader",
    "run_probe",
    "total_units",
]

FIGURE2_PROMPTS: tuple[tuple[str, str], ...] = (
    ("ct_head", "Axial CT of the head"),
    ("ct_chest", "Axial CT of the chest"),
    ("ct_abdomen", "Axial CT of the abdomen"),
    ("mri_head", "T1-weighted MRI of the head"),
    ("mri_knee", "T2-weighted MRI of the knee"),
    ("us_liver", "Ultrasound of the liver"),
)
ANATOMY_PROMPTS: tuple[tuple[str, str], ...] = (
    ("knee_ap", "AP radiograph of the left knee"),
    ("knee_lateral", "Lateral radiograph of the left knee"),
    ("lumbar_ap", "AP radiograph of the lumbar spine"),
    ("lumbar_lateral", "Lateral radiograph of the lumbar spine"),
    ("hand_pa", "PA radiograph of the left hand"),
    ("wrist_pa", "PA radiograph of the left wrist"),
    ("chest_woman", "PA chest radiograph of a 35-year-old woman"),
    ("chest_man", "PA chest radiograph of a 75-year-old man"),
)
PATHOLOGY_PROMPTS: tuple[tuple[str, str], ...] = (
    ("fracture", "AP radiograph of the left wrist with a fracture of the distal radius"),
    ("tumour", "AP radiograph of the left knee with a bone tumour of the femur"),
    ("haemorrhage", "Axial CT of the head with intracranial haemorrhage"),
    ("consolidation", "PA chest radiograph with consolidation of the right lower lobe"),
    ("effusion", "PA chest radiograph with a left pleural effusion"),
)
FIGURE3_REGIONS = ("pelvis", "ankle", "chest", "shoulder", "knee", "wrist", "thoracic_spine")
FIGURE4_REGIONS = ("abdomen", "chest", "pelvis", "knee", "lumbar_spine", "wrist", "hand")
# Figure 4 extends these regions sideways (the trunk); the others up and down (limbs, spine).
ACROSS_THE_BODY = frozenset({"abdomen", "chest", "pelvis"})
FRONTAL_VIEW = {"chest": "pa", "hand": "pa", "wrist": "pa"}  # others: AP
EDIT_SEED_BASE = 1_000_000  # phantom seeds of the edits, apart from the generation seeds
MEMORIZATION_SEED_BASE = 2_000_000
REFERENCE_SEED_BASE = 3_000_000
DIVERSITY_SEED_BASE = 4_000_000
FINDING_PLACE_SEED_BASE = 5_000_000
DIFFERENCE_GAIN = 5.0  # the finding-effect figure's difference image is |change| x this

# What the probe reads with its reader: every label head (modality, region, view, side and sex
# as asked vs seen), the structure groups its anatomy checks look for (presence, in field,
# breast shadows; femur, tibia and lumbar vertebrae of the knee grown to a body) and the groups
# they count. A reader lacking one failed minutes into a run (KeyError: 'skull').
PROBE_READER_HEADS: tuple[str, ...] = ("modality", "region", "view", "laterality", "sex")
PROBE_READER_GROUPS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [g for groups in EXPECTED_PRESENT.values() for g in groups]
        + [g for groups in INSIDE_FIELD.values() for g in groups]
        + [group for _, group in EXPECTED_COUNTS]
        + ["breasts", "femur", "tibia", "lumbar_vertebrae"]
    )
)
PROBE_READER_COUNTED: tuple[str, ...] = tuple(dict.fromkeys(group for _, group in EXPECTED_COUNTS))


@dataclass
class ProbeConfig:
    """What the probe runs. `n`: images per prompt (the study kept 4 of each)."""

    n: int = 4
    seed: int = 0
    steps: int | None = None  # the model's default
    guidance: float | None = None
    guidance_cutoff: float | None = None  # guide only while t >= it x T (default: the model's)
    inpaint_cases: int = 2  # phantoms per Figure 3 region
    extend_cases: int = 1  # phantoms per Figure 4 region
    extend_fraction: float = 0.25  # each of two borders grows by this share of the image
    # Knee-to-full-body cases (fixed seeds, alternating sex; the same on every --seed): four
    # since the body stage reads them (one before; one body is luck either way).
    full_body_cases: int = 4
    full_body_knee_px: int | None = None  # default: half the model's size (see the report)
    full_body_width: int = 2  # knee fields across
    finding_places: int = 4  # phantoms per pathology prompt that map its finding (0: skip)
    memorization_train: int = 48  # training-like phantoms in the audit
    reference_per_prompt: int = 1  # phantoms per prompt scored as if generated (0: none)
    audit_px: int = 64
    figure3_regions: tuple[str, ...] = FIGURE3_REGIONS
    figure4_regions: tuple[str, ...] = FIGURE4_REGIONS
    quick_run: bool = False  # a smoke run (`ProbeConfig.quick`, `radsynth probe --quick`)

    def __post_init__(self) -> None:
        for name in ("n", "inpaint_cases", "extend_cases"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.full_body_cases < 0 or self.memorization_train < 0 or self.finding_places < 0:
            raise ValueError("full_body_cases, memorization_train and finding_places must be >= 0")
        if self.guidance_cutoff is not None and not 0.0 <= self.guidance_cutoff <= 1.0:
            raise ValueError(f"guidance_cutoff must be in [0, 1], got {self.guidance_cutoff}")

    @classmethod
    def quick(cls, **overrides: Any) -> ProbeConfig:
        """A smoke run: one image per prompt, one phantom per edit, a short schedule."""
        values: dict[str, Any] = {
            "quick_run": True,
            "n": 1,
            "steps": 4,
            "inpaint_cases": 1,
            "extend_cases": 1,
            "memorization_train": 16,
            "finding_places": 1,
            "full_body_cases": 1,
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class GeneratedImage:
    """One generated image with what was asked and what the reader saw."""

    group: str  # figure1, figure2, anatomy, pathology
    title: str
    prompt: str
    seed: int
    image: np.ndarray
    asked: dict[str, Any]
    read: dict[str, Any] | None = None
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "title": self.title,
            "prompt": self.prompt,
            "seed": self.seed,
            "asked": self.asked,
            "read": self.read,
            "checks": self.checks,
        }


@dataclass
class ProbeResult:
    """Everything the probe measured: images, per-experiment scores, targets and notes."""

    model: str
    config: ProbeConfig
    size: int
    images: list[GeneratedImage] = field(default_factory=list)
    figure3: list[dict[str, Any]] = field(default_factory=list)
    figure4: list[dict[str, Any]] = field(default_factory=list)
    full_body: list[dict[str, Any]] = field(default_factory=list)
    memorization: dict[str, Any] = field(default_factory=dict)
    diversity: dict[str, Any] = field(default_factory=dict)
    finding_effect: dict[str, Any] = field(default_factory=dict)
    conditional: dict[str, Any] = field(default_factory=dict)
    bias: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reader: str | None = None
    # The sampler as run: the config's settings or, where it gives none, the model's defaults.
    sampler: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    figures: dict[str, list[FigureRow]] = field(default_factory=dict)

    def scores(self) -> dict[str, Any]:
        """The scores.json content (no pixels)."""

        def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]

        return {
            "model": self.model,
            "reader": self.reader,
            "image_size_px": self.size,
            "config": asdict(self.config),
            "sampler": self.sampler,
            "targets": {t.key: t.to_dict() for t in self.targets},
            "targets_met": sum(t.met for t in self.targets),
            "targets_total": len(self.targets),
            "conditional_accuracy": self.conditional,
            "bias": self.bias,
            "figure3_inpainting": strip(self.figure3),
            "figure4_outpainting": strip(self.figure4),
            "knee_to_full_body": strip(self.full_body),
            "memorization": self.memorization,
            "diversity": self.diversity,
            "finding_effect": self.finding_effect,
            "images": [g.record() for g in self.images],
            "notes": self.notes,
            "timings_s": self.timings_s,
        }


def prompt_sets() -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """(group, ((title, prompt), ...)) in the order they are made."""
    return [
        ("figure1", tuple(figure1_prompts())),
        ("figure2", FIGURE2_PROMPTS),
        ("anatomy", ANATOMY_PROMPTS),
        ("pathology", PATHOLOGY_PROMPTS),
    ]


def total_units(config: ProbeConfig) -> int:
    """Steps of the progress bar: prompts, edits, full bodies, the audit and the scoring."""
    prompts = sum(len(p) for _, p in prompt_sets())
    return (
        prompts
        + len(config.figure3_regions) * config.inpaint_cases
        + len(config.figure4_regions) * config.extend_cases
        + config.full_body_cases
        + 5  # reading every image; the phantom reference; finding effect; memorization; diversity
    )


def _labels_dict(prompt: str) -> dict[str, Any]:
    labels = parse_prompt(prompt)
    return {k: v for k, v in labels.to_dict().items() if v not in (None, [], ())}


def full_body_case(k: int) -> tuple[int, str]:
    """The phantom seed and sex of the probe's k-th knee-to-full-body case."""
    return EDIT_SEED_BASE + 20_000 + k, "female" if k % 2 == 0 else "male"


def _laterality(region: str) -> str | None:
    return "left" if region in PAIRED_REGIONS else None


class _Probe:
    def __init__(
        self,
        folder: Path,
        config: ProbeConfig,
        reader: Any,
        on_step: Callable[[str], None] | None,
    ) -> None:
        from radsynth.pipelines import InpaintPipeline, OutpaintPipeline, TextToImagePipeline

        self.config = config
        self.on_step = on_step or (lambda _label: None)
        t2i: Any = TextToImagePipeline.from_pretrained(folder)
        self.t2i = t2i
        self.inpaint: Any = InpaintPipeline(t2i.components)
        self.outpaint: Any = OutpaintPipeline(t2i.components)
        for pipe in (self.t2i, self.inpaint, self.outpaint):
            pipe.set_progress_bar_config(disable=True)
            if config.guidance_cutoff is not None:
                pipe.guidance_cutoff = config.guidance_cutoff
        self.size = int(t2i.components.sample_size)
        self.reader = reader
        self.counter: Any = (
            ReaderStructureCounter(reader) if reader is not None else count_bright_components
        )
        self.result = ProbeResult(str(folder), config, self.size)
        self.result.sampler = {
            "scheduler": type(t2i.scheduler).__name__,
            "num_inference_steps": int(t2i.default("num_inference_steps", config.steps)),
            "guidance_scale": float(t2i.default("guidance_scale", config.guidance)),
            "guidance_cutoff": float(t2i.guidance_cutoff),
        }
        self.reference_images: list[GeneratedImage] = []
        self.call: dict[str, Any] = {
            "num_inference_steps": config.steps,
            "guidance_scale": config.guidance,
        }

    def _generators(self, seeds: Sequence[int]) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(s) for s in seeds]

    # -- generation and reading ---------------------------------------------------------
    def generate(self) -> None:
        n, seed = self.config.n, self.config.seed
        index = 0
        for group, prompts in prompt_sets():
            rows = []
            for title, prompt in prompts:
                seeds = [seed + index * n + j for j in range(n)]
                index += 1
                output = self.t2i(
                    prompt,
                    num_images_per_prompt=n,
                    generator=self._generators(seeds),
                    **self.call,
                )
                images = [np.asarray(im, dtype=np.float32) for im in output.images]
                asked = _labels_dict(prompt)
                for s, image in zip(seeds, images, strict=True):
                    self.result.images.append(GeneratedImage(group, title, prompt, s, image, asked))
                rows.append(FigureRow(title, prompt, images, seeds))
                self.on_step(f"{group}: {title}")
            self.result.figures[group] = rows

    def _read(self, images: list[GeneratedImage]) -> None:
        if self.reader is None or not images:
            return
        stack = np.stack([g.image for g in images])
        records = self.reader.predict(stack)
        maps = self.reader.structures(stack)
        for g, record, smap in zip(images, records, maps, strict=True):
            g.read = record
            region = g.asked.get("region")
            if g.asked.get("modality") == "xray" and region in EXPECTED_PRESENT:
                view = g.asked.get("view") or record.get("view")
                view = view if view in ("ap", "pa", "lateral") else "ap"
                checks = check_anatomy(smap, region, view, g.asked.get("sex"))
                g.checks = {k: json_clean(v.to_dict()) for k, v in checks.items()}

    def read(self) -> None:
        self._read(self.result.images)
        self.on_step("reading the images")

    def reference(self) -> None:
        """Phantoms drawn for the same prompts (`reference_per_prompt` each), read and checked
        like the generated images: what a perfect generator scores with this reader."""
        from radsynth.phantoms.cases import make_case_for_labels

        count = self.config.reference_per_prompt
        if self.reader is None or count == 0:
            self.on_step("phantom reference")
            return
        index = 0
        for group, prompts in prompt_sets():
            for title, prompt in prompts:
                labels = parse_prompt(prompt)
                for _ in range(count):
                    seed = REFERENCE_SEED_BASE + index
                    index += 1
                    case = make_case_for_labels(seed, labels, self.size)
                    image = case.image.image.astype(np.float32)
                    self.reference_images.append(
                        GeneratedImage(group, title, prompt, seed, image, _labels_dict(prompt))
                    )
        self._read(self.reference_images)
        self.on_step("phantom reference")

    # -- Figure 3 -------------------------------------------------------------------------
    def figure3(self) -> None:
        size = self.size
        mask = central_mask(size)
        for r, region in enumerate(self.config.figure3_regions):
            for k in range(self.config.inpaint_cases):
                seed = EDIT_SEED_BASE + 100 * r + k
                view = FRONTAL_VIEW.get(region, "ap")
                plane = regional_plane(seed, region, view, _laterality(region), size=size)
                truth = plane.window((size, size)).image.astype(np.float32)
                prompt = f"{view.upper()} radiograph of the {region.replace('_', ' ')}"
                if _laterality(region):
                    prompt = f"{view.upper()} radiograph of the left {region}"
                filled = self.inpaint(
                    prompt,
                    image=truth,
                    mask_image=mask,
                    generator=torch.Generator().manual_seed(seed),
                    **self.call,
                ).images[0]
                filled = np.asarray(filled, dtype=np.float32)
                scores = score_inpainting(filled, truth, mask, self.counter)
                biharmonic = scores.pop("biharmonic_image")
                record = {"region": region, "seed": seed, "prompt": prompt, **json_clean(scores)}
                record["_images"] = (truth, np.where(mask, 0.0, truth), filled, biharmonic)
                self.result.figure3.append(record)
                self.on_step(f"Figure 3: {region}")

    # -- Figure 4 -------------------------------------------------------------------------
    def figure4(self) -> None:
        size = self.size
        grow = max(1, int(round(size * self.config.extend_fraction)))
        for r, region in enumerate(self.config.figure4_regions):
            for k in range(self.config.extend_cases):
                seed = EDIT_SEED_BASE + 10_000 + 100 * r + k
                view = FRONTAL_VIEW.get(region, "ap")
                plane = regional_plane(seed, region, view, _laterality(region), size=size)
                if region in ACROSS_THE_BODY:
                    small, big, top, left = plane.grown(0, 0, grow, grow)
                else:
                    small, big, top, left = plane.grown(grow, grow, 0, 0)
                prompt = f"{view.upper()} radiograph of the {region.replace('_', ' ')}"
                if _laterality(region):
                    prompt = f"{view.upper()} radiograph of the left {region}"
                grown = self.outpaint(
                    prompt,
                    small.image,
                    top=top,
                    bottom=big.image.shape[0] - size - top,
                    left=left,
                    right=big.image.shape[1] - size - left,
                    generator=torch.Generator().manual_seed(seed),
                    **self.call,
                ).images[0]
                grown = np.asarray(grown, dtype=np.float32)
                known = np.zeros(grown.shape, dtype=bool)
                known[top : top + size, left : left + size] = True
                truth = big.image.astype(np.float32)
                scores = score_extension(grown, truth, known, self.counter)
                shown = np.where(known, truth, 0.0).astype(np.float32)
                record = {
                    "region": region,
                    "seed": seed,
                    "prompt": prompt,
                    "canvas_px": list(grown.shape),
                    **json_clean(scores),
                }
                record["_images"] = (shown, grown, truth)
                self.result.figure4.append(record)
                self.on_step(f"Figure 4: {region}")

    # -- knee to full body ----------------------------------------------------------------
    def full_body(self) -> None:
        knee_px = self.config.full_body_knee_px or max(32, self.size // 2)
        for k in range(self.config.full_body_cases):
            seed, sex = full_body_case(k)
            self.result.full_body.append(self._one_full_body(seed, sex, knee_px))
            self.on_step("Figure 4: knee to full body")

    def _one_full_body(self, seed: int, sex: str, knee_px: int) -> dict[str, Any]:
        plane = regional_plane(seed, "knee", "ap", "left", sex=sex, size=knee_px)
        spacing = plane.settings.spacing_mm
        knee, truth, margins = plane.full_body(self.config.full_body_width * knee_px, self.size)
        tall, wide = truth.image.shape
        person = "woman" if sex == "female" else "man"
        prompt = f"AP radiograph of a {person}"
        # The whole body is planned first, shrunk to one field (see OutpaintPipeline).
        layout_prompt = f"AP radiograph of the whole body of a {person}"
        started = time.perf_counter()
        grown = self.outpaint(
            prompt,
            knee.image,
            generator=torch.Generator().manual_seed(seed),
            layout_prompt=layout_prompt,
            **margins,
            **self.call,
        ).images[0]
        seconds = time.perf_counter() - started
        grown = np.asarray(grown, dtype=np.float32)
        truth_image = truth.image.astype(np.float32)
        true_map = truth_structure_map(truth.masks)
        true_props = femur_tibia(true_map)
        record: dict[str, Any] = {
            "seed": seed,
            "sex": sex,
            "prompt": prompt,
            "layout_prompt": layout_prompt,
            "knee_px": knee_px,
            "spacing_mm": spacing,
            "canvas_px": [tall, wide],
            "outpaint_s": seconds,
            "truth": true_props,
        }
        # The lumbar-spine field of the same plane (a lumbar radiograph's field at this spacing).
        lumbar = plane.field_window("lumbar_spine", min(tall, wide))
        field_px = lumbar.image.shape[0]
        loff = np.array(lumbar.meta["lattice_origin"]) - np.array(truth.meta["lattice_origin"])
        r0, c0 = max(0, int(loff[0])), max(0, int(loff[1]))
        record["lumbar_field_px"] = [r0, c0, field_px]
        record["truth"]["lumbar_count"] = len(
            truth_structure_map(lumbar.masks).centres["lumbar_vertebrae"]
        )
        if self.reader is not None:
            record.update(self._read_full_body(grown, truth_image, true_props, (r0, c0, field_px)))
        top, left = margins["top"], margins["left"]
        knee_only = np.zeros((tall, wide), dtype=np.float32)
        knee_only[top : top + knee_px, left : left + knee_px] = knee.image
        pictures = {"_images": (knee_only, grown, truth_image)}
        if "_body_maps" in record:
            pictures["_body_maps"] = record.pop("_body_maps")
        return json_clean(record) | pictures

    def _read_full_body(
        self,
        grown: np.ndarray,
        truth_image: np.ndarray,
        true_props: dict[str, Any],
        lumbar_field: tuple[int, int, int],
    ) -> dict[str, Any]:
        """Femur/tibia and lumbar readings of a grown body and of its answer key. Each is
        read in several ways; the one that reads the answer key best (`reading`,
        `lumbar_reading`) reads the generated body too: the instrument is calibrated on the
        truth only. With a body stage (`Reader.read_body`, trained on whole-body planes) it
        comes first and wins ties."""
        assert self.reader is not None
        reader = self.reader
        # The whole image padded to a square reads a tall body at 40 px wide; windows of the
        # image's width at the reader's scale. Windows of the knee's field with averaged
        # logits (read_in_windows_averaged) read the key closer (0.01-0.11 off on the first
        # four bodies, against 0.25-0.66), but on the built-in model's bodies they find the
        # long bones only in and beside the kept knee, so they would measure the input, not
        # the model (scripts/knee_body_instrument.py, docs/reader.md).
        methods: dict[str, Callable[[np.ndarray], Any]] = {}
        if reader.body is not None:
            methods["body stage"] = lambda im: reader.read_body(im)[0]
        methods["whole image padded to a square"] = lambda im: reader.structures(
            pad_to_square(im)[0]
        )[0]
        methods["square windows of the image's width"] = lambda im: read_in_windows(reader, im)
        truth_maps = {name: read(truth_image) for name, read in methods.items()}
        on_truth = {name: femur_tibia(smap) for name, smap in truth_maps.items()}

        def truth_error(name: str) -> float:
            ratio = on_truth[name]["ratio"]
            return abs(ratio / true_props["ratio"] - 1) if ratio and true_props["ratio"] else 9.0

        method = min(methods, key=truth_error)
        generated_map = methods[method](grown)
        out: dict[str, Any] = {
            "reading": method,
            "reader_on_truth_by_method": on_truth,
            "generated": femur_tibia(generated_map),
            "reader_on_truth": dict(on_truth[method]),
        }
        # Lumbar vertebrae: the lumbar field of the same plane (a lumbar radiograph's
        # geometry, exposed for the whole body) read by the reader, or the body stage's
        # centres over the whole image.
        r0, c0, field_px = lumbar_field
        crops = [image[r0 : r0 + field_px, c0 : c0 + field_px] for image in (grown, truth_image)]
        crops = [pad_to_square(c)[0] for c in crops]
        side = max(c.shape[0] for c in crops)
        field_maps = reader.structures(np.stack([resize_image(c, (side, side)) for c in crops]))
        counts = {
            "lumbar field": tuple(len(m.centres["lumbar_vertebrae"]) for m in field_maps),
        }
        if reader.body is not None:
            body_generated = generated_map if method == "body stage" else reader.read_body(grown)[0]
            out["_body_maps"] = (body_generated, truth_maps["body stage"])  # for the figure
            counts = {
                "body stage": (
                    len(body_generated.centres["lumbar_vertebrae"]),
                    len(truth_maps["body stage"].centres["lumbar_vertebrae"]),
                ),
                **counts,
            }
        true_count = true_props["lumbar_count"]
        lumbar = min(counts, key=lambda name: abs(counts[name][1] - true_count))
        out["lumbar_reading"] = lumbar
        out["lumbar_on_truth_by_method"] = {name: c[1] for name, c in counts.items()}
        out["generated"]["lumbar_count"], out["reader_on_truth"]["lumbar_count"] = counts[lumbar]
        ratio, true_ratio = out["generated"]["ratio"], true_props["ratio"]
        out["ratio_error"] = (
            None if ratio is None or not true_ratio else abs(ratio / true_ratio - 1.0)
        )
        return out

    # -- memorization ---------------------------------------------------------------------
    def memorization(self) -> None:
        from radsynth.phantoms.cases import make_case

        images = self.result.images
        count = self.config.memorization_train
        if not images or count == 0:
            self.result.memorization = {"skipped": "no generated images or no training sample"}
            self.on_step("memorization audit")
            return
        px = self.config.audit_px
        asked = [parse_prompt(g.prompt) for g in images]
        train = []
        for i in range(count):
            labels = asked[(i * len(asked)) // count]
            case = make_case(
                MEMORIZATION_SEED_BASE + i,
                modality=labels.modality,
                region=labels.region,
                view=labels.view,
                laterality=labels.laterality,
                sex=labels.sex,
                size=px,
            )
            train.append(case.image.image.astype(np.float32))
        generated = np.stack([resize_image(g.image, (px, px)) for g in images])
        train_stack = np.stack(train)
        features: dict[str, Any] = {}
        if self.reader is not None:
            features = {
                "generated_features": self.reader.features(generated),
                "train_features": self.reader.features(train_stack),
            }
        audit = memorization_audit(generated, train_stack, **features)
        summary = json_clean(audit.summary())
        summary["train_sample"] = (
            f"{count} phantoms drawn like the training data (make_case with each prompt's "
            f"modality, region, view, side and sex; seeds {MEMORIZATION_SEED_BASE}+), {px} px"
        )
        self.result.memorization = summary
        self.on_step("memorization audit")

    # -- finding effect -----------------------------------------------------------------
    def finding_effect(self) -> None:
        """What the finding words change, and where: each pathology prompt's images against
        its twin prompt without the finding (same seeds), inside and outside the place where
        `finding_places` phantoms drawn with the prompt's labels show the finding."""
        count = self.config.finding_places
        asked = [g for g in self.result.images if g.group == "pathology"]
        if count == 0 or not asked:
            self.result.finding_effect = {"skipped": "finding_places is 0: not measured"}
            self.on_step("finding effect")
            return
        by_prompt: dict[str, list[GeneratedImage]] = {}
        for g in asked:
            by_prompt.setdefault(g.prompt, []).append(g)
        rows, figure = [], []
        for index, (prompt, images) in enumerate(by_prompt.items()):
            labels = parse_prompt(prompt)
            seeds_of_places = [FINDING_PLACE_SEED_BASE + index * count + k for k in range(count)]
            place = self._finding_place(labels, seeds_of_places)
            # A prompt naming the finding's side: the same phantoms with the side swapped.
            swapped = other_side(labels)
            other = None if swapped is None else self._finding_place(swapped, seeds_of_places)
            twin = canonical_caption(dataclasses.replace(labels, findings=()))
            seeds = [g.seed for g in images]
            output = self.t2i(
                twin,
                num_images_per_prompt=len(seeds),
                generator=self._generators(seeds),
                **self.call,
            )
            plain = np.stack([np.asarray(im, dtype=np.float32) for im in output.images])
            shown = np.stack([g.image for g in images])
            rows.append(
                finding_effect_row(images[0].title, prompt, twin, shown, plain, place, other)
            )
            # First seed: asked | twin | |difference| x DIFFERENCE_GAIN | the finding's place
            # (bright) and, for a sided prompt, the other side's (dim).
            difference = np.clip(np.abs(shown[0] - plain[0]) * DIFFERENCE_GAIN, 0.0, 1.0)
            where = place_panel(plain[0], place, other)
            figure.append(
                FigureRow(
                    images[0].title, prompt, [shown[0], plain[0], difference, where], [seeds[0]] * 4
                )
            )
        self.result.finding_effect = summarise_finding_effect(rows, count)
        self.result.figures["finding_effect"] = figure
        self.on_step("finding effect")

    def _finding_place(self, labels: Labels, seeds: list[int]) -> np.ndarray:
        """Where phantoms drawn with `labels` on `seeds` show their findings (union of masks)."""
        from radsynth.phantoms.cases import make_case_for_labels

        place = np.zeros((self.size, self.size), dtype=bool)
        for seed in seeds:
            case = make_case_for_labels(seed, labels, self.size)
            for name, mask in case.image.masks.items():
                if name.startswith("finding_"):
                    place |= resize_mask(mask, place.shape)
        return place

    # -- diversity ------------------------------------------------------------------------
    def diversity(self) -> None:
        """MS-SSIM among the images of each prompt, against N phantoms drawn for the prompt."""
        from radsynth.phantoms.cases import make_case_for_labels

        n = self.config.n
        if n < 2:
            self.result.diversity = {"skipped": "one image per prompt: nothing to compare"}
            self.on_step("diversity")
            return
        phantoms = []
        for index, g in enumerate(self.result.images):
            seed = DIVERSITY_SEED_BASE + index
            case = make_case_for_labels(seed, parse_prompt(g.prompt), self.size)
            image = case.image.image.astype(np.float32)
            phantoms.append(GeneratedImage(g.group, g.title, g.prompt, seed, image, g.asked))
        self.result.diversity = prompt_diversity(self.result.images, phantoms)
        self.result.diversity["phantom_sample"] = (
            f"{n} phantoms per prompt drawn with its labels (seeds {DIVERSITY_SEED_BASE}+)"
        )
        self.on_step("diversity")

    # -- targets --------------------------------------------------------------------------
    def targets(self) -> None:
        score_targets(self.result, self.reference_images, self.reader is not None)


def _notes(probe: _Probe) -> list[str]:
    res, config = probe.result, probe.config
    notes = []
    if probe.reader is None:
        notes.append(
            "No reader was available, so every reader-based target is reported as not measured "
            "and the structure counts of Figures 3 and 4 are bright-blob counts."
        )
    few = [t for t in res.targets if t.measured and t.n < 20]
    if few:
        notes.append(
            "Few samples: "
            + ", ".join(f"{t.name} (n={t.n})" for t in few)
            + ". A rate on fewer than 20 images has a wide Wilson interval (see details); "
            "raise --n for firmer numbers."
        )
    knee_px = config.full_body_knee_px or max(32, probe.size // 2)
    if config.full_body_cases:
        notes.append(
            f"Knee to full body: the knee is given at {knee_px} px (the model's native size "
            f"is {probe.size} px; a smaller knee means a coarser plane spacing and fewer "
            "outpainting tiles for the whole body); "
            "the reader's body stage reads the grown image where the reader has one (the whole "
            "body at 512 x 128 px: femur, tibia, lumbar vertebrae); otherwise the reader reads "
            "it whole (padded to a square) or in overlapping square windows of its width (the "
            "scale of a regional radiograph), whichever measures the answer key's femur/tibia "
            "ratio better, and counts the lumbar vertebrae on the lumbar-spine field cut from "
            "it at the truth's lumbar spine (`reading` and `lumbar_reading` name which); the "
            "femur and tibia lengths are the heights of the largest piece of each mask. "
            "The whole plane keeps the knee's exposure, so the trunk looks unlike a trunk "
            "radiograph; `reader_on_truth` shows what the reader measures on the answer key."
        )
    if probe.reference_images:
        notes.append(
            f"Phantom reference: {config.reference_per_prompt} phantom(s) per prompt, drawn "
            "with the prompt's labels, go through the same reader and checks as the generated "
            "images (for the knee-to-full-body targets: the reader on the answer key). A target "
            "the phantoms themselves miss is limited by the reader, not only by the model."
        )
    div = res.diversity
    if "model" in div and div["model"]["mean_ms_ssim"] is not None:
        notes.append(
            f"Diversity (not a target): the images of one prompt have a mean pairwise MS-SSIM "
            f"of {div['model']['mean_ms_ssim']:.2f}, phantoms drawn with the same labels "
            f"{div['phantoms']['mean_ms_ssim']:.2f} (1 = identical); the model's images are "
            f"more alike than the phantoms for {div['prompts_more_alike_than_phantoms']} of "
            f"{div['prompts_compared']} prompts (`diversity`)."
        )
    notes.append(
        "Age as asked is not measured: the reader predicts no age. Sex as asked vs seen is in "
        "`bias`; the AP-vs-lateral comparison uses knees and lumbar spines."
    )
    notes.append(
        "Findings are the study's five as radsynth kinds (fracture, bone_tumour, "
        "intracranial_haemorrhage, consolidation, pleural_effusion); 'absent when not asked' "
        "pools every generated image whose prompt did not ask for the kind."
    )
    return notes


def shipped_name(folder: str | Path, shipped: Path, label: str) -> str:
    """How scores and reports name a model folder: `label` and its weights' short SHA-256 when
    it is the folder shipped in the package (the same on every machine), else the path as the
    user gave it."""
    given = Path(folder)
    if given.resolve() != shipped.resolve():
        return str(given)
    weights = sorted(shipped.rglob("*.safetensors"))
    digest = hashlib.sha256(b"".join(w.read_bytes() for w in weights)).hexdigest()[:12]
    return f"{label} (weights sha256 {digest})"


def check_probe_reader(reader: Any) -> None:
    """Refuse, before any work, a reader the probe cannot use: `reader` is a reader folder
    (only its config.json is read) or a loaded `Reader`. A folder holding no reader raises
    FileNotFoundError; a stage (e.g. the output of `radsynth train-finding-reader`, which
    belongs in READER/findings/) or a reader lacking a head or structure group the probe reads
    raises ValueError saying what it is and what to do."""
    from radsynth.evaluate.reader.model import (
        ReaderConfig,
        check_full_reader,
        full_reader_problem,
    )

    needs = (PROBE_READER_HEADS, PROBE_READER_GROUPS, PROBE_READER_COUNTED)
    if isinstance(reader, str | Path):
        check_full_reader(Path(reader), *needs, purpose="the probe")
        return
    config = getattr(reader, "config", None)
    if isinstance(config, ReaderConfig):
        problem = full_reader_problem(config, "the reader given", *needs, purpose="the probe")
        if problem is not None:
            raise ValueError(problem)


def run_probe(
    folder: str | Path,
    config: ProbeConfig | None = None,
    reader: Any = "default",
    on_step: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Run the protocol on the model in `folder`. `reader`: a Reader, a reader folder, None
    for no reader, or "default" for the shipped one (None, with a note, when its weights are
    missing)."""
    config = config or ProbeConfig()
    reader_note = None
    reader_name: str | None = None
    if isinstance(reader, str) and reader == "default":
        from radsynth.evaluate.reader import load_reader
        from radsynth.evaluate.reader.inference import WEIGHTS_DIR

        try:
            reader = load_reader()
            reader_name = shipped_name(WEIGHTS_DIR, WEIGHTS_DIR, "radsynth's shipped reader")
        except (FileNotFoundError, ValueError) as error:
            reader, reader_note = None, f"reader not loaded: {error}"
    elif isinstance(reader, str | Path):
        from radsynth.evaluate.reader import load_reader

        check_probe_reader(Path(reader))
        reader_name, reader = str(reader), load_reader(reader)
    elif reader is not None:
        check_probe_reader(reader)
        reader_name = type(reader).__name__
    probe = _Probe(Path(folder), config, reader, on_step)
    probe.result.model = shipped_name(folder, BUILTIN_MODEL, "radsynth's built-in model")
    probe.result.reader = reader_name
    timings = probe.result.timings_s
    for name, stage in (
        ("generation", probe.generate),
        ("reading", probe.read),
        ("phantom_reference", probe.reference),
        ("figure3", probe.figure3),
        ("figure4", probe.figure4),
        ("knee_to_full_body", probe.full_body),
        ("finding_effect", probe.finding_effect),
        ("memorization", probe.memorization),
        ("diversity", probe.diversity),
        ("targets", probe.targets),
    ):
        started = time.perf_counter()
        stage()
        timings[name] = round(time.perf_counter() - started, 2)
    probe.result.notes = ([reader_note] if reader_note else []) + _notes(probe)
    return probe.result
