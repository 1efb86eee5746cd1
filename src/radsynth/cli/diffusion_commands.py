"""`radsynth train | average | generate | inpaint | outpaint | edit`: the diffusion commands.

Each command parses its options and calls the library. Input images are read with
`radsynth.io.read_image` (DICOM, NIfTI, PNG, TIFF, JPEG): PNG, TIFF and JPEG values as stored
(8-bit / 255, 16-bit / 65535; 12-bit data in 16-bit samples, told by a PNG's sBIT chunk or by
values reaching at most 4095, / 4095), so kept pixels come back unchanged; DICOM, NIfTI and
float TIFF through their display window (a note says so: the output keeps display values, not
HU). Outputs are grayscale PNGs (16-bit when the input was a 16-bit PNG or TIFF, on its scale,
else 8-bit) carrying the prompt, seed and model in text chunks and marked "Synthetic: YES", or
with `--format dicom` synthetic DICOM Secondary Capture files (`radsynth.io.dicom_writer`). A
known pixel spacing is kept in either. From a DICOM input the output carries none of the
patient's identifying attributes unless `--keep-patient` is given.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from radsynth.cli.checks import PHANTOMS_SETTINGS_NAME, check_out
from radsynth.cli.vocabulary_command import with_vocabulary_hint
from radsynth.io.reader import MedicalImage
from radsynth.paths import BUILTIN_MODEL

ModelOption = Annotated[
    Path | None, typer.Option("--model", help="model folder (default: the built-in model)")
]
OutOption = Annotated[Path, typer.Option("--out", help="output folder")]
MAX_SEED = 2**63 - 1  # seeds are int64 in manifests and DICOM
SeedOption = Annotated[
    int,
    typer.Option("--seed", min=0, max=MAX_SEED, help="seed of the first image; +1 per image"),
]
CountOption = Annotated[int, typer.Option("-n", "--num-images", min=1, help="images to make")]
StepsOption = Annotated[int | None, typer.Option("--steps", help="denoising steps")]
GuidanceOption = Annotated[float | None, typer.Option("--guidance", help="guidance scale")]
CutoffOption = Annotated[
    float | None,
    typer.Option(
        "--guidance-cutoff",
        min=0.0,
        max=1.0,
        help="guide only while t >= CUTOFF x T, the noisiest steps (0: every step; default: "
        "the model's, 0.5 for the built-in model)",
    ),
]
FormatOption = Annotated[
    str,
    typer.Option(
        "--format", help="png, or dicom (synthetic Secondary Capture, SyntheticData = YES)"
    ),
]
KeepPatientOption = Annotated[
    bool,
    typer.Option(
        "--keep-patient",
        help="with --format dicom and a DICOM input: keep its patient and study identifiers "
        "(for use inside the hospital only; default: none carried over)",
    ),
]
FrameOption = Annotated[
    int | None,
    typer.Option("--frame", help="frame of a multi-frame DICOM or TIFF, volume of a 4-D NIfTI"),
]
SliceOption = Annotated[
    int | None,
    typer.Option(
        "--slice", help="slice of a 3-D NIfTI along --axis, counted from 0 (default: the middle)"
    ),
]
AxisOption = Annotated[
    str,
    typer.Option(
        "--axis",
        help="plane of a NIfTI slice: axial, coronal or sagittal (patient space), or 0-2",
    ),
]
FitOption = Annotated[
    bool,
    typer.Option(
        "--fit",
        help="work on a copy shrunk to the model's size (long side 256 px for the built-in "
        "model) and paste the new pixels back at full size: for images of any size",
    ),
]
ColorOption = Annotated[
    str,
    typer.Option("--color", help="error: refuse colour input; luminance: convert to grayscale"),
]


def _model_dir(model: Path | None) -> Path:
    if model is not None:
        return model
    if not (BUILTIN_MODEL / "model_index.json").is_file():
        raise typer.BadParameter(f"no built-in model at {BUILTIN_MODEL}; pass --model DIR")
    return BUILTIN_MODEL


@dataclass(frozen=True)
class _Input:
    """An input image: display values in [0, 1] and what was read (spacing, DICOM header)."""

    pixels: np.ndarray  # float32 (rows, columns) in [0, 1]
    image: MedicalImage
    png_bits: int  # bit depth of PNG output: 16 for a 16-bit PNG or TIFF input, else 8
    top: float = 255.0  # the stored value of 1.0, in and out (4095 for 12-bit data in 16 bits)


def _significant_bits(path: Path) -> int | None:
    """The grayscale significant bits a PNG's sBIT chunk declares (12 for 12-bit data stored in
    16-bit samples), or None without one."""
    import struct

    with path.open("rb") as handle:
        if handle.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        while header := handle.read(8):
            if len(header) < 8:
                return None
            length, kind = struct.unpack(">I4s", header)
            if kind in (b"IDAT", b"IEND"):
                return None
            data = handle.read(length)
            handle.seek(4, 1)  # CRC
            if kind == b"sBIT" and data:
                return int(data[0])
    return None


def _note(text: str) -> None:
    typer.echo(f"note: {text}", err=True)


def _read_input(
    path: Path,
    color: str = "error",
    frame: int | None = None,
    slice_index: int | None = None,
    axis: str = "axial",
) -> _Input:
    """Read an input image with radsynth.io; a user's mistake is a usage error, not a
    traceback. PNG, TIFF and JPEG come as stored (kept pixels stay exact)."""
    from radsynth.io.reader import read_image

    if color not in ("error", "luminance"):
        raise typer.BadParameter(f"--color must be error or luminance, got {color!r}")
    plane: str | int = int(axis) if axis in ("0", "1", "2") else axis
    if plane not in ("axial", "coronal", "sagittal", 0, 1, 2):
        raise typer.BadParameter(f"--axis must be axial, coronal, sagittal or 0-2, got {axis!r}")
    try:
        image = read_image(
            path,
            color=color,  # type: ignore[arg-type]
            frame=frame,
            slice_index=slice_index,
            axis=plane,  # type: ignore[arg-type]
        )
    except ValueError as error:  # ImageReadError names the file and the problem
        raise typer.BadParameter(str(error)) from None
    if image.format != "nifti" and (slice_index is not None or axis != "axial"):
        raise typer.BadParameter("--slice and --axis pick a slice of a NIfTI volume")
    if image.format == "nifti":
        _note(
            f"{path.name}: {image.attributes.get('axis', axis)} slice {image.frame_index} of "
            f"{image.n_frames} (0 to {image.n_frames - 1}"
            + ("; the middle one, --slice picks another)" if slice_index is None else ")")
        )
    unsigned = image.value_range is None or image.value_range[0] >= 0
    if image.format in ("png", "tiff", "jpeg") and image.bits_stored <= 16 and unsigned:
        bits = image.bits_stored
        if bits == 16:
            declared = _significant_bits(path) if image.format == "png" else None
            highest = float(image.pixels.max())
            if declared is not None and 8 <= declared < 16:
                # The PNG standard scales such samples to the full 16 bits (values reach
                # 65520 for 12 bits); only unscaled data stays below 2^bits.
                bits = declared if highest <= 2**declared - 1 else 16
            elif highest <= 4095:
                bits = 12
                _note(
                    f"{path.name}: 16-bit samples whose values reach at most 4095 are read as "
                    "12-bit data (0-4095), in and out; rescale the file to the full 16-bit "
                    "range if it is a dark 16-bit image"
                )
        top = float(2**bits - 1)
        pixels = np.clip(image.pixels.astype(np.float32) / top, 0.0, 1.0)
        png_bits = 16 if image.bits_stored == 16 and image.format != "jpeg" else 8
        return _Input(pixels, image, png_bits, top if png_bits == 16 else 255.0)
    pixels = np.asarray(image.windowed(), dtype=np.float32)
    if image.window is not None:
        centre, width = image.window
        how = f"its header's window (centre {centre:g}, width {width:g}), clipped outside it"
    else:
        how = "its own minimum to maximum"
    _note(
        f"{path.name} ({image.format}) is read as display values through {how}; the model "
        "works on those, and the output keeps them (an 8-bit PNG; --format dicom records "
        "how they map back onto the stored units), not the stored values"
    )
    return _Input(pixels, image, 8)


def _read_mask(path: Path) -> np.ndarray:
    """A mask file as float32 in [0, 1], 1 = the area to change: white on black (8- or 16-bit),
    or a 0/1 label map."""
    from radsynth.io.reader import read_image

    try:
        image = read_image(path)
    except ValueError as error:
        text = str(error)
        if "is a colour image" in text:  # the image's --color does not apply to masks
            text = f"{path.name} is a colour image"
        raise typer.BadParameter(
            f"{text}; a mask must be a grayscale image, white (or 1) where to change"
        ) from None
    values = image.pixels
    if image.bits_stored <= 16 and values.size and set(np.unique(values)) <= {0, 1}:
        return values.astype(np.float32)  # a label map: 1 = change
    top = float(2**image.bits_stored - 1) if image.bits_stored <= 16 else float(values.max() or 1)
    mask = np.clip(values.astype(np.float32) / top, 0.0, 1.0)
    if not (mask > 0.5).any():
        raise typer.BadParameter(
            f"{path.name} selects no pixels: mark the area to change white (255 in 8-bit, "
            "65535 in 16-bit) or 1 in a 0/1 label map; values up to half of white are kept"
        )
    return mask


@dataclass(frozen=True)
class _Output:
    """How to write the results: format, bit depth, and the input they were made from."""

    format: str = "png"
    keep_patient: bool = False
    source: _Input | None = None

    def check(self) -> None:
        if self.format not in ("png", "dicom"):
            raise typer.BadParameter(f"--format must be png or dicom, got {self.format!r}")
        if self.keep_patient and self.format != "dicom":
            raise typer.BadParameter("--keep-patient applies to --format dicom only")
        if self.keep_patient and (self.source is None or self.source.image.format != "dicom"):
            raise typer.BadParameter(
                "--keep-patient keeps the patient of a DICOM input; this command has none"
            )

    @property
    def spacing(self) -> tuple[float, float] | None:
        return self.source.image.pixel_spacing_mm if self.source is not None else None


@dataclass
class _Run:
    """Images made by one command, with what made them."""

    images: list[np.ndarray]
    seeds: list[int]
    folder: Path
    steps: int
    guidance: float
    cutoff: float
    fit: str | None = None  # how --fit scaled the image, recorded in the PNG text
    operation: str = "generate"
    inputs: dict[str, Any] | None = None  # the operation's input files (hashed) and options


def _identity(path: Path) -> dict[str, str]:
    """A file as provenance names it: its name and SHA-256."""
    from radsynth.datasets.weights import file_sha256

    return {"file": path.name, "sha256": file_sha256(path)}


def _nifti_slice(source: _Input) -> dict[str, Any]:
    """The slice a NIfTI input was cut at ({"slice": "axial 2"}), for provenance and the
    manifest; empty for other formats."""
    image = source.image
    if image.format != "nifti":
        return {}
    return {"slice": f"{image.attributes.get('axis', 'axial')} {image.frame_index}"}


def _inputs(image: Path, frame: int | None, **options: Any) -> dict[str, Any]:
    """The provenance `inputs` of a masked command: the image, its frame, and the options
    given (a mask file by its identity); options left at None are left out."""
    given: dict[str, Any] = {"image": _identity(image)}
    if frame is not None:
        given["frame"] = frame
    for name, value in options.items():
        if isinstance(value, Path):
            given[name] = _identity(value)
        elif value is not None:
            given[name] = value
    return given


def _provenance(prompt: str, run: _Run, seed: int) -> Any:
    from radsynth.datasets.weights import model_name, weights_sha256
    from radsynth.io.provenance import Provenance

    return Provenance(
        model_name=model_name(run.folder),
        weights_sha256=weights_sha256(run.folder),
        prompt=prompt,
        seed=seed,
        num_inference_steps=run.steps,
        guidance_scale=run.guidance,
        guidance_cutoff=run.cutoff,
        processing=f"Fit: {run.fit}" if run.fit is not None else None,
        operation=run.operation,
        inputs=run.inputs,
    )


def _write_png_images(out: Path, stem: str, prompt: str, run: _Run, output: _Output) -> list[Path]:
    from radsynth.io.png import write_png
    from radsynth.io.provenance import png_text_chunks

    bits = output.source.png_bits if output.source is not None else 8
    top = output.source.top if output.source is not None else 255.0
    paths = []
    for image, seed in zip(run.images, run.seeds, strict=True):
        pixels = np.round(np.clip(image, 0.0, 1.0) * top).astype(
            np.uint16 if bits == 16 else np.uint8
        )
        text = png_text_chunks(_provenance(prompt, run, seed), pixel_spacing_mm=output.spacing)
        text.update({"Prompt": prompt, "Model": str(run.folder), "Seed": str(seed)})
        if run.fit is not None:
            text["Fit"] = run.fit
        paths.append(write_png(out / f"{stem}-seed{seed}.png", pixels, text))
    return paths


def _write_dicom_images(
    out: Path, stem: str, prompt: str, run: _Run, output: _Output
) -> list[Path]:
    import highdicom as hd

    from radsynth.io.dicom_writer import synthetic_patient_id, write_synthetic_dicom

    source = output.source.image if output.source is not None else None
    from_dicom = source is not None and source.format == "dicom"
    # One run is one series of one synthetic patient (a kept patient's own study and ID where
    # the source has them), numbered.
    header = source.dataset if from_dicom and source is not None else None
    kept_study = header.get("StudyInstanceUID") if output.keep_patient and header else None
    series = {
        "series_instance_uid": hd.UID(),
        "study_instance_uid": None if kept_study else hd.UID(),
        "patient_id": synthetic_patient_id(),  # used where no kept Patient ID stands
    }
    described: dict[str, Any] = {}
    if not from_dicom:
        described = _dicom_description(prompt)
    paths = []
    for number, (image, seed) in enumerate(zip(run.images, run.seeds, strict=True), start=1):
        try:
            paths.append(
                write_synthetic_dicom(
                    out / f"{stem}-seed{seed}.dcm",
                    np.clip(image, 0.0, 1.0).astype(np.float32),
                    provenance=_provenance(prompt, run, seed),
                    source=source if from_dicom else None,
                    keep_patient=output.keep_patient,
                    pixel_spacing_mm=output.spacing,
                    instance_number=number,
                    display_range=source.display_range() if from_dicom and source else None,
                    **series,
                    **described,
                )
            )
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    return paths


def _dicom_description(prompt: str) -> dict[str, Any]:
    """Modality and laterality for a DICOM header, from what the prompt says (if anything)."""
    from radsynth.datasets.records import DICOM_BODY_PART, DICOM_MODALITY
    from radsynth.vocabulary import parse_prompt_lenient

    try:
        labels, _ = parse_prompt_lenient(prompt)
    except ValueError:  # a combination the vocabulary refuses: describe nothing
        return {}
    return {
        "modality": DICOM_MODALITY.get(labels.modality or "", "OT"),
        "body_part": DICOM_BODY_PART.get(labels.region or ""),
        "laterality": {"left": "L", "right": "R"}.get(labels.laterality or ""),
    }


class _PlainProgress:
    """Where stderr is not a terminal (a batch job's log) the progress bars are off: one line
    per image instead, so a long outpainting is not minutes of silence."""

    def __init__(self, total: int) -> None:
        self.total, self.count, self.start = total, 0, time.monotonic()
        self.enabled = not sys.stderr.isatty()

    def done(self, seed: int) -> None:
        self.count += 1
        if self.enabled:
            elapsed = time.monotonic() - self.start
            typer.echo(
                f"image {self.count} of {self.total} (seed {seed}): {elapsed:.0f} s", err=True
            )


def _note_outside_training(folder: Path, prompt: str, reads_vocabulary: bool) -> None:
    """Notes on how a radsynth model reads a prompt where it cannot do what the words say:
    "both knees" (an image shows one knee; it is read without a side), and, for the built-in
    model, an age it never saw (it learnt from adult phantoms, 18-90 years, so "a 6-month-old"
    or "an 8-year-old child" is drawn as an adult)."""
    from radsynth.phantoms.body import ADULT_AGE_RANGE
    from radsynth.vocabulary import PAIRED_REGIONS, parse_prompt

    if not prompt or not reads_vocabulary:  # a user's SD folder takes prompts as written
        return
    try:
        labels = parse_prompt(prompt)
    except ValueError:
        return  # the pipeline names what is wrong with the prompt
    if (
        labels.region in PAIRED_REGIONS
        and labels.laterality is None
        and re.search(r"\b(both|bilateral|left and right|right and left)\b", prompt, re.I)
    ):
        _note(
            f"an image shows one {labels.region}: {prompt!r} is read without a side; ask for "
            "the left and the right one in two runs"
        )
    age = labels.age
    low, high = ADULT_AGE_RANGE
    if folder.resolve() == BUILTIN_MODEL.resolve() and age is not None and not low <= age <= high:
        _note(
            f"the built-in model learnt from adult phantoms ({low}-{high} years): the age in "
            f"{prompt!r} ({age} years) is outside them and is drawn as an adult's image"
        )


def _run(
    pipeline_name: str,
    model: Path | None,
    seed: int,
    count: int,
    fit: bool | None = None,
    guidance_cutoff: float | None = None,
    **call: Any,
) -> _Run:
    """Call a pipeline once per seed, so every image can be remade from its own seed.
    `fit` (masked pipelines: False or True; None where the command has no --fit): run it
    through `run_at_model_scale`."""
    import torch

    import radsynth.pipelines as pipelines

    if seed + count - 1 > MAX_SEED:
        raise typer.BadParameter(f"--seed + -n - 1 must be at most {MAX_SEED} (seed i is S + i)")
    folder = _model_dir(model)
    plan = None
    try:
        pipe = getattr(pipelines, pipeline_name).from_pretrained(folder)
        prompt = str(call.get("prompt") or "")
        _note_outside_training(folder, prompt, pipe.components.trained_by_radsynth)
        steps = int(pipe.default("num_inference_steps", call.pop("num_inference_steps", None)))
        guidance = float(pipe.default("guidance_scale", call.pop("guidance_scale", None)))
        if guidance_cutoff is not None:
            pipe.guidance_cutoff = guidance_cutoff  # refuses a value outside [0, 1]
        seeds = list(range(seed, seed + count))
        call.update(num_inference_steps=steps, guidance_scale=guidance)
        images = []
        logged = _PlainProgress(len(seeds))
        for s in seeds:
            call["generator"] = torch.Generator().manual_seed(s)
            if fit and pipeline_name == "OutpaintPipeline":
                output, plan = pipelines.outpaint_at_model_scale(pipe, **call)
            elif fit:
                output, plan = pipelines.run_at_model_scale(pipe, **call)
            else:
                output = pipe(**call)
            images.append(np.asarray(output.images[0]))
            logged.done(s)
    except ValueError as error:
        hint = ""
        if fit is False and "multiples of" in str(error):
            hint = "; or pass --fit to work on a copy at the model's size"
        raise typer.BadParameter(with_vocabulary_hint(f"{error}{hint}")) from None
    cutoff = pipe.guidance_cutoff
    return _Run(images, seeds, folder, steps, guidance, cutoff, plan.describe() if plan else None)


def _finish(out: Path, stem: str, prompt: str, run: _Run, output: _Output) -> None:
    from radsynth.io.png import write_png
    from radsynth.train.report import image_grid

    out.mkdir(parents=True, exist_ok=True)
    if output.keep_patient:
        typer.secho(
            "WARNING: --keep-patient: the DICOM output carries the patient's name, ID, birth "
            "date and study identifiers of its source. Use it only inside the hospital; do not "
            "share it or put it in a data set.",
            err=True,
            fg=typer.colors.RED,
            bold=True,
        )
    if output.format == "dicom":
        paths = _write_dicom_images(out, stem, prompt, run, output)
    else:
        paths = _write_png_images(out, stem, prompt, run, output)
    _record_in_manifest(out, paths, prompt, run)
    if len(run.images) > 1 and len({im.shape for im in run.images}) == 1:
        grid = image_grid(np.stack(run.images))
        info = {"Prompt": prompt, "Model": str(run.folder), "Synthetic": "YES"}
        write_png(out / f"{stem}-grid.png", grid, info)
    typer.echo(f"wrote {len(paths)} image(s) to {out}")


def _layout_strength(given: float | None) -> float:
    """The layout strength an outpainting uses: the one given, else the pipeline's default."""
    import inspect

    from radsynth.pipelines import OutpaintPipeline

    default = inspect.signature(OutpaintPipeline.__call__).parameters["layout_strength"].default
    return float(default if given is None else given)


def _check_image_out(out: Path) -> None:
    """Before any work: `out` is a folder (or new) and not a data folder of another kind (a
    phantoms folder, a data set, an ingested archive), whose manifest would get these images'
    records among its own."""
    from radsynth.datasets.build import SPEC_NAME
    from radsynth.io.manifest import MANIFEST_NAME, iter_manifest

    check_out(out)
    marks = [name for name in (PHANTOMS_SETTINGS_NAME, SPEC_NAME) if (out / name).exists()]
    manifest = out / MANIFEST_NAME
    if not marks and manifest.is_file():
        try:
            if any("operation" not in record for record in iter_manifest(manifest)):
                marks.append(MANIFEST_NAME)
        except ValueError:
            marks.append(MANIFEST_NAME)
    if marks:
        raise typer.BadParameter(
            f"--out {out} is a data folder of another kind (its {', '.join(marks)}); give a "
            "folder of its own for these images"
        )


def _check_not_replacing(
    out: Path,
    stem: str,
    seed: int,
    n: int,
    output: _Output,
    prompt: str,
    image: Path | None,
    frame: int | None = None,
    picked: str | None = None,
) -> None:
    """Before any work: the files this run writes (OUT/<stem>-seed<S>.png or .dcm) may replace
    only a file that an earlier run made from the same input and prompt (a rerun). Another
    input's or prompt's image of that name is refused: it was overwritten, and its record
    replaced, without a word."""
    from radsynth.io.manifest import MANIFEST_NAME, read_manifest

    suffix = ".dcm" if output.format == "dicom" else ".png"
    names = [f"{stem}-seed{s}{suffix}" for s in range(seed, seed + max(n, 0))]
    existing = [name for name in names if (out / name).exists()]
    if not existing:
        return
    records = read_manifest(out) if (out / MANIFEST_NAME).is_file() else []
    made = {str(r.get("image")): r for r in records}
    source = _identity(image)["sha256"] if image is not None else None
    for name in existing:
        record = made.get(name)
        if record is None:
            why = "which no record of OUT/manifest.jsonl describes"
        elif record.get("prompt") != prompt:
            why = f"made from the prompt {record.get('prompt')!r}"
        elif (
            record.get("source_sha256"),
            record.get("source_frame"),
            record.get("source_slice"),
        ) != (source, frame, picked):
            frame_text = f" frame {record['source_frame']}" if "source_frame" in record else ""
            if "source_slice" in record:
                frame_text += f" slice {record['source_slice']}"
            why = f"made from {record.get('source', 'another input')}{frame_text}"
        else:
            continue
        raise typer.BadParameter(
            f"--out {out} already holds {name}, {why}; this run would write over it. Give "
            "each input and prompt a folder of its own, or remove the file to remake it"
        )


def _record_in_manifest(out: Path, paths: list[Path], prompt: str, run: _Run) -> None:
    """`OUT/manifest.jsonl`: one record per image written (id, image, caption = the prompt,
    seed, operation, model), so the folder is a data folder that `radsynth evaluate` and
    `radsynth train` read (the grid is not an image of the set). A rerun into the folder
    replaces the records of the files it rewrote and keeps the others."""
    from radsynth.io.manifest import (
        MANIFEST_NAME,
        generated_record,
        read_manifest,
        write_manifest,
    )

    new = [
        generated_record(path.name, prompt, seed, run.operation, str(run.folder))
        for path, seed in zip(paths, run.seeds, strict=True)
    ]
    inputs = run.inputs or {}
    if "image" in inputs:  # the input an edit was made from, so a later run can tell it apart
        for record in new:
            record.update(source=inputs["image"]["file"], source_sha256=inputs["image"]["sha256"])
            if "frame" in inputs:
                record["source_frame"] = inputs["frame"]
            if "slice" in inputs:
                record["source_slice"] = inputs["slice"]
    # `_check_image_out` let in only a manifest of these commands' records.
    kept = read_manifest(out) if (out / MANIFEST_NAME).is_file() else []
    ids = {record["id"] for record in new}
    write_manifest(out, [r for r in kept if r["id"] not in ids] + new)


def generate(
    prompt: Annotated[str, typer.Argument(help="what to show, in radiology terms")],
    out: OutOption,
    n: CountOption = 4,
    seed: SeedOption = 0,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    guidance_cutoff: CutoffOption = None,
    model: ModelOption = None,
    output_format: FormatOption = "png",
) -> None:
    """Generate N images from a prompt, each with its own seed, plus a grid."""
    _check_image_out(out)
    output = _Output(output_format)
    output.check()
    _check_not_replacing(out, "generated", seed, n, output, prompt, None)
    run = _run(
        "TextToImagePipeline",
        model,
        seed,
        n,
        prompt=prompt,
        num_inference_steps=steps,
        guidance_scale=guidance,
        guidance_cutoff=guidance_cutoff,
    )
    _finish(out, "generated", prompt, run, output)


def inpaint(
    image: Annotated[Path, typer.Argument(help="input image (DICOM, NIfTI, PNG, TIFF, JPEG)")],
    out: OutOption,
    prompt: Annotated[
        str,
        typer.Option(
            "--prompt",
            "-p",
            help="what the erased area should show (default: let the context decide)",
        ),
    ] = "",
    mask: Annotated[Path | None, typer.Option(help="mask image, white = regenerate")] = None,
    box: Annotated[str | None, typer.Option(help="x0,y0,x1,y1 in pixels to regenerate")] = None,
    n: CountOption = 1,
    seed: SeedOption = 0,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    guidance_cutoff: CutoffOption = None,
    model: ModelOption = None,
    output_format: FormatOption = "png",
    keep_patient: KeepPatientOption = False,
    color: ColorOption = "error",
    frame: FrameOption = None,
    slice_index: SliceOption = None,
    axis: AxisOption = "axial",
    fit: FitOption = False,
) -> None:
    """Regenerate a masked area (--mask or --box); every other pixel is kept exactly as read
    (PNG, TIFF, JPEG: as stored; DICOM, NIfTI: their display values, 8-bit)."""
    _check_image_out(out)
    source = _read_input(image, color, frame, slice_index, axis)
    output = _Output(output_format, keep_patient, source)
    output.check()
    _check_not_replacing(
        out, "inpainted", seed, n, output, prompt, image, frame, _nifti_slice(source).get("slice")
    )
    pixels = source.pixels
    mask_image = _mask(pixels.shape, mask, box)
    run = _run(
        "InpaintPipeline",
        model,
        seed,
        n,
        fit,
        prompt=prompt,
        image=pixels,
        mask_image=mask_image,
        num_inference_steps=steps,
        guidance_scale=guidance,
        guidance_cutoff=guidance_cutoff,
    )
    run.operation = "inpaint"
    run.inputs = _inputs(image, frame, mask=mask, box=box, **_nifti_slice(source))
    _finish(out, "inpainted", prompt, run, output)


def _mask(shape: tuple[int, ...], mask: Path | None, box: str | None) -> np.ndarray:
    if (mask is None) == (box is None):
        raise typer.BadParameter("give exactly one of --mask PNG or --box x0,y0,x1,y1")
    if mask is not None:
        array = _read_mask(mask)
        if array.shape == tuple(shape) and bool((array > 0.5).all()):
            raise typer.BadParameter(
                f"{mask.name} covers the whole image, so nothing of it would be kept: for a new "
                "image use `radsynth generate`"
            )
        return array
    try:
        x0, y0, x1, y1 = (int(v) for v in str(box).split(","))
    except ValueError:
        raise typer.BadParameter(f"--box must be x0,y0,x1,y1 in pixels, got {box!r}") from None
    if x1 <= x0 or y1 <= y0:
        raise typer.BadParameter(
            f"--box {box} is empty: give x0,y0,x1,y1 with x1 > x0 and y1 > y0 (the corner "
            "after the last pixel)"
        )
    if not (0 <= x0 < x1 <= shape[1] and 0 <= y0 < y1 <= shape[0]):
        raise typer.BadParameter(f"--box {box} is not inside the {shape[1]}x{shape[0]} image")
    if (x0, y0, x1, y1) == (0, 0, shape[1], shape[0]):
        raise typer.BadParameter(
            f"--box {box} is the whole image, so nothing of it would be kept: for a new image "
            "use `radsynth generate`"
        )
    array = np.zeros(shape, dtype=np.float32)
    array[y0:y1, x0:x1] = 1.0
    return array


def outpaint(
    image: Annotated[Path, typer.Argument(help="input image (DICOM, NIfTI, PNG, TIFF, JPEG)")],
    out: OutOption,
    prompt: Annotated[
        str,
        typer.Option(
            "--prompt", "-p", help="what the extended image shows (default: let the context decide)"
        ),
    ] = "",
    left: Annotated[int, typer.Option(help="pixels to add on the left")] = 0,
    right: Annotated[int, typer.Option(help="pixels to add on the right")] = 0,
    top: Annotated[int, typer.Option(help="pixels to add at the top")] = 0,
    bottom: Annotated[int, typer.Option(help="pixels to add at the bottom")] = 0,
    layout_prompt: Annotated[
        str | None,
        typer.Option(
            "--layout-prompt",
            help="draw the whole canvas first, shrunk to one field, as this prompt (e.g. 'AP "
            "radiograph of the whole body'), then refine it tile by tile: for canvases many "
            "fields large",
        ),
    ] = None,
    layout_strength: Annotated[
        float | None,
        typer.Option(
            help="how far the tiles may move from the layout (0-1, 1 ignores it; default: "
            "the pipeline's, 0.5)"
        ),
    ] = None,
    n: CountOption = 1,
    seed: SeedOption = 0,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    guidance_cutoff: CutoffOption = None,
    model: ModelOption = None,
    output_format: FormatOption = "png",
    keep_patient: KeepPatientOption = False,
    color: ColorOption = "error",
    frame: FrameOption = None,
    slice_index: SliceOption = None,
    axis: AxisOption = "axial",
    fit: FitOption = False,
) -> None:
    """Extend an image past its borders at the same pixel spacing; the original pixels are
    kept exactly as read (PNG, TIFF, JPEG: as stored; DICOM, NIfTI: their display values)."""
    _check_image_out(out)
    if layout_prompt is None and layout_strength is not None:
        raise typer.BadParameter("--layout-strength applies to the layout of --layout-prompt")
    source = _read_input(image, color, frame, slice_index, axis)
    output = _Output(output_format, keep_patient, source)
    output.check()
    _check_not_replacing(
        out, "outpainted", seed, n, output, prompt, image, frame, _nifti_slice(source).get("slice")
    )
    run = _run(
        "OutpaintPipeline",
        model,
        seed,
        n,
        fit,
        prompt=prompt,
        image=source.pixels,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        layout_prompt=layout_prompt,
        **({"layout_strength": layout_strength} if layout_strength is not None else {}),
        num_inference_steps=steps,
        guidance_scale=guidance,
        guidance_cutoff=guidance_cutoff,
    )
    run.operation = "outpaint"
    run.inputs = _inputs(
        image, frame, left=left, right=right, top=top, bottom=bottom, **_nifti_slice(source),
        layout_prompt=layout_prompt,
        layout_strength=_layout_strength(layout_strength) if layout_prompt else None,
    )  # fmt: skip
    _finish(out, "outpainted", prompt, run, output)


def edit(
    image: Annotated[Path, typer.Argument(help="input image (DICOM, NIfTI, PNG, TIFF, JPEG)")],
    out: OutOption,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="the image as it should become")],
    mask: Annotated[Path | None, typer.Option(help="mask image, white = may change")] = None,
    box: Annotated[str | None, typer.Option(help="x0,y0,x1,y1 in pixels that may change")] = None,
    strength: Annotated[float, typer.Option(help="0.3 subtle .. 1.0 full")] = 0.6,
    n: CountOption = 1,
    seed: SeedOption = 0,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    guidance_cutoff: CutoffOption = None,
    model: ModelOption = None,
    output_format: FormatOption = "png",
    keep_patient: KeepPatientOption = False,
    color: ColorOption = "error",
    frame: FrameOption = None,
    slice_index: SliceOption = None,
    axis: AxisOption = "axial",
    fit: FitOption = False,
) -> None:
    """Add or remove a finding inside a mask (--mask or --box)."""
    _check_image_out(out)
    source = _read_input(image, color, frame, slice_index, axis)
    output = _Output(output_format, keep_patient, source)
    output.check()
    _check_not_replacing(
        out, "edited", seed, n, output, prompt, image, frame, _nifti_slice(source).get("slice")
    )
    pixels = source.pixels
    run = _run(
        "EditPipeline",
        model,
        seed,
        n,
        fit,
        prompt=prompt,
        image=pixels,
        mask_image=_mask(pixels.shape, mask, box),
        strength=strength,
        num_inference_steps=steps,
        guidance_scale=guidance,
        guidance_cutoff=guidance_cutoff,
    )
    run.operation = "edit"
    run.inputs = _inputs(
        image, frame, mask=mask, box=box, strength=strength, **_nifti_slice(source)
    )
    _finish(out, "edited", prompt, run, output)


def train(
    ctx: typer.Context,
) -> None:
    """Train a model: the options of `python -m radsynth.train` (see --help there)."""
    from radsynth.train.main import main

    raise typer.Exit(main(list(ctx.args)))


def average(
    models: Annotated[
        list[Path], typer.Argument(help="model folders to average: fine-tunes of one model")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="run folder: OUT/model and OUT/training.json are written")
    ],
    weight: Annotated[
        list[float] | None,
        typer.Option("--weight", help="one per model, scaled to sum to 1 (default: equal)"),
    ] = None,
) -> None:
    """Average the weights of fine-tunes of one model into a new model folder ("model soup"),
    recording each model's weight and training record."""
    import shlex

    from radsynth.train.average import average_run

    weights = [arg for w in weight or [] for arg in ("--weight", str(w))]
    command = shlex.join(["radsynth", "average", *map(str, models), "--out", str(out), *weights])
    try:
        written = average_run(models, out, weight, command=command)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    typer.echo(f"wrote {written} (the mean of {len(models)} models) and {out / 'training.json'}")


def register(app: typer.Typer) -> None:
    """Add the diffusion commands to `app`."""
    for command in (generate, inpaint, outpaint, edit, average):
        app.command()(command)
    app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(train)
