"""Every distribution metric on folders of real, synthetic and (optionally) training images:
what `radsynth evaluate` runs. Writes `scores.json` and `report.html` (a table of the scores and
grids of real and synthetic samples, the image counts and skipped files of each folder, and
the images the memorization audit flags beside their nearest training image, all embedded as
base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from radsynth.evaluate.features import FeatureExtractor, default_feature_extractor, extractor_name
from radsynth.evaluate.metrics.conditional import (
    LabelsLike,
    Proportion,
    as_labels,
    conditional_accuracy,
)
from radsynth.evaluate.metrics.folders import (
    EvaluateError,
    ImageSet,
    OnError,
    harmonise_sizes,
    load_image_folder,
)
from radsynth.evaluate.metrics.frechet import frechet_distance
from radsynth.evaluate.metrics.memorization import DEFAULT_MAX_SHIFT, memorization_audit
from radsynth.evaluate.metrics.prdc import prdc
from radsynth.evaluate.metrics.ssim import MSSSIMDiversity
from radsynth.io.reader import ColorPolicy
from radsynth.vocabulary import Labels

__all__ = ["EvaluateError", "EvaluateOptions", "evaluate_folders", "write_report"]

AUDIT_SIZE = 64  # px: the memorization audit runs at this size (its thresholds come from it)
REPORT_PAIRS = 24  # flagged synthetic/training pairs shown as thumbnails in report.html
REPORT_SKIPPED = 10  # skipped files named per set in report.html (all are in scores.json)
# The labels that define a prompt: a folder without prompts groups its images by them for
# MS-SSIM diversity (sex and age are drawn per case within one prompt).
PROMPT_FIELDS = ("modality", "region", "view", "laterality", "sequence", "window")


@dataclass
class EvaluateOptions:
    """Settings of one evaluation run."""

    size: int | None = None  # common image side in px; None keeps one shared square size
    k: int = 5  # neighbours for precision/recall/density/coverage (Naeem et al.: 5)
    on_error: OnError = "fail"  # unreadable files: stop, or skip and list them
    color: ColorPolicy = "error"  # colour images: refuse, or convert to grayscale (luminance)
    max_shift: int = DEFAULT_MAX_SHIFT  # px at AUDIT_SIZE for the memorization audit
    grid: int = 16  # sample images per grid in report.html
    progress: bool = True
    extractor: FeatureExtractor | None = None  # None: the reader, else the handcrafted one
    notes: list[str] = field(default_factory=list)


class _Bar:
    """A rich progress bar (or nothing) with one task per step."""

    def __init__(self, enabled: bool) -> None:
        self.progress = (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            if enabled
            else None
        )

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)

    def task(self, name: str, total: int | None = None) -> tuple[Callable[[int], None], Any]:
        """(advance, set_total) callables for a new task."""
        if self.progress is None:
            return (lambda n: None), (lambda n: None)
        progress = self.progress
        task = progress.add_task(name, total=total)
        return (lambda n: progress.advance(task, n)), (lambda n: progress.update(task, total=n))


def _features(extractor: FeatureExtractor, images: np.ndarray, bar: _Bar, name: str) -> np.ndarray:
    advance, _ = bar.task(f"features: {name}", total=len(images))
    batches = []
    for start in range(0, len(images), 64):
        batch = images[start : start + 64]
        batches.append(np.asarray(extractor.features(batch), dtype=np.float64))
        advance(len(batch))
    return np.concatenate(batches)


def _distribution_scores(
    real: np.ndarray, fake: np.ndarray, k: int, notes: list[str]
) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    if min(len(real), len(fake)) < 2:
        notes.append("Fréchet distance skipped: it needs at least 2 real and 2 synthetic images")
        scores["frechet_distance"] = None
    else:
        scores["frechet_distance"] = frechet_distance(real, fake)
        if min(len(real), len(fake)) <= real.shape[1]:
            notes.append(
                f"Fréchet distance from {len(real)} real and {len(fake)} synthetic images in "
                f"{real.shape[1]} feature dimensions: covariances are singular and the value "
                "is biased upwards; compare only runs of the same sizes"
            )
    usable_k = min(k, len(real) - 1, len(fake) - 1)
    if usable_k < 1:
        notes.append("precision/recall/density/coverage skipped: they need 2 images per set")
        scores["prdc"] = None
    else:
        if usable_k != k:
            notes.append(f"k lowered from {k} to {usable_k} for the small sets")
        scores["prdc"] = {"k": usable_k, **prdc(real, fake, usable_k).to_dict()}
    return scores


def prompt_of_labels(labels: dict[str, Any]) -> str:
    """The prompt a record's labels stand for, as a group name: the PROMPT_FIELDS given and
    the findings (kind, site, side), e.g. "xray, knee, ap, left; fracture at patella"."""
    fields = [str(labels[name]) for name in PROMPT_FIELDS if labels.get(name)]
    findings = sorted(
        " ".join(
            [str(f.get("kind"))]
            + ([f"at {f['site']}"] if f.get("site") else [])
            + ([f"({f['side']})"] if f.get("side") else [])
        )
        for f in labels.get("findings") or ()
        if isinstance(f, dict)
    )
    return ", ".join(fields or ["(no labels)"]) + "; " + (", ".join(findings) or "no findings")


def _diversity_groups(synthetic: ImageSet, notes: list[str]) -> tuple[list[str], str]:
    """The group name of each image and what the groups are: the manifest's prompts where every
    record has one (a data set), else the prompt-defining labels where every record has labels
    (a phantoms folder, an ingested archive: their captions are written per case, and a study
    style caption such as "An X-ray of the knee" would pool AP with lateral, left with right),
    else the captions, else one group of all images."""
    if synthetic.prompts and all(p is not None for p in synthetic.prompts):
        return [str(p) for p in synthetic.prompts], "prompt"
    if all(isinstance(label, dict) for label in synthetic.labels):
        notes.append(
            "the synthetic manifest gives no prompt for every image: MS-SSIM diversity groups "
            f"its images by their labels ({', '.join(PROMPT_FIELDS)} and findings)"
        )
        names = [prompt_of_labels(label) for label in synthetic.labels if label is not None]
        return names, "labels"
    if all(c is None for c in synthetic.captions):
        notes.append("no captions in the synthetic folder: MS-SSIM diversity over all images")
        return ["(all synthetic images)"] * len(synthetic), "all"
    return [c or "(no caption)" for c in synthetic.captions], "caption"


def _diversity(synthetic: ImageSet, bar: _Bar, notes: list[str]) -> dict[str, Any]:
    metric = MSSSIMDiversity()
    captions, grouped_by = _diversity_groups(synthetic, notes)
    groups: dict[str, list[int]] = {}
    for i, caption in enumerate(captions):
        groups.setdefault(caption or "(no caption)", []).append(i)
    advance, _ = bar.task("MS-SSIM diversity", total=len(groups))
    for caption, indices in groups.items():
        metric.update(synthetic.images[indices], caption)
        advance(1)
    result = metric.compute()
    if not result["pairs"]:
        notes.append("MS-SSIM diversity not computed: no prompt has two or more images")
    result["reported"] = "mean pairwise MS-SSIM per prompt (1 = identical); diversity = 1 - it"
    result["grouped_by"] = grouped_by
    return result


Asked = list[tuple[int, LabelsLike, Labels]]  # (image index, labels or caption as written, parsed)


def _asked(synthetic: ImageSet) -> tuple[Asked, list[str]]:
    """What the synthetic manifest asks of each image that has labels or a caption, parsed once
    for every metric that needs it, and "file: reason" for captions in words the vocabulary
    does not know (left out)."""
    asked: Asked = []
    unparsed: list[str] = []
    for i, (label, caption) in enumerate(zip(synthetic.labels, synthetic.captions, strict=True)):
        wanted = label if label is not None else caption
        if wanted is None:
            continue
        try:
            asked.append((i, wanted, as_labels(wanted)))
        except ValueError as error:
            unparsed.append(f"{synthetic.names[i]}: {error}")
    return asked, unparsed


def _conditional(
    synthetic: ImageSet, extractor: FeatureExtractor, asked: Asked, unparsed: list[str]
) -> dict[str, Any]:
    predict = getattr(extractor, "predict", None)
    if predict is None:
        return {"skipped": "no reader model with predict(images) is loaded"}
    if not asked:
        return {
            "skipped": "the synthetic folder has no manifest with captions or labels"
            + (" that parse" if unparsed else ""),
            "unparsed_captions": unparsed,
        }
    keep = [i for i, _, _ in asked]
    wanted = [as_written for _, as_written, _ in asked]
    scores = conditional_accuracy(wanted, predict(synthetic.images[keep]))
    result = json.loads(json.dumps(scores, default=lambda p: p.to_dict()))
    return result | ({"unparsed_captions": unparsed} if unparsed else {})


def _anatomy(
    synthetic: ImageSet, extractor: FeatureExtractor, asked: Asked, bar: _Bar
) -> dict[str, Any]:
    """The anatomy checks (`radsynth.evaluate.anatomy.read_anatomy`) of every synthetic
    radiograph whose prompt or labels name a region they know: per region and check, how many
    images pass (with a Wilson interval), and the images that fail a check."""
    if getattr(extractor, "structures", None) is None:
        return {"skipped": "no reader model with structures(images) is loaded"}
    from radsynth.evaluate.anatomy import EXPECTED_PRESENT, read_anatomy

    chosen = [
        (i, labels.region, labels)
        for i, _, labels in asked
        if labels.modality == "xray" and labels.region in EXPECTED_PRESENT
    ]
    if not chosen:
        return {"skipped": "no synthetic radiograph names a region the anatomy checks know"}
    advance, _ = bar.task("anatomy checks", total=len(chosen))
    tallies: dict[str, dict[str, list[int]]] = {}
    failing = []
    for i, region, labels in chosen:
        view = labels.view if labels.view in ("ap", "pa", "lateral") else "ap"
        checks = read_anatomy(synthetic.images[i], region, view, labels.sex, extractor)
        tally = tallies.setdefault(region, {})
        for name, check in checks.items():
            if check.passed is not None:
                counts = tally.setdefault(name, [0, 0])
                counts[0] += int(check.passed)
                counts[1] += 1
        failed = sorted(name for name, check in checks.items() if check.passed is False)
        if failed:
            failing.append({"image": synthetic.names[i], "region": region, "failed": failed})
        advance(1)
    return {
        "images_checked": len(chosen),
        "per_region": {
            region: {name: Proportion.of(*counts).to_dict() for name, counts in tally.items()}
            for region, tally in sorted(tallies.items())
        },
        "failing_images": failing,
    }


def _audit_images(images: np.ndarray, side: int) -> np.ndarray:
    """Images (N, S, S) resized to side x side (antialiased bilinear), float64."""
    if images.shape[-1] == side:
        return images.astype(np.float64)
    small = [
        np.asarray(Image.fromarray(im, mode="F").resize((side, side), Image.Resampling.BILINEAR))
        for im in images
    ]
    return np.stack(small).astype(np.float64)


def _memorization(
    synthetic: ImageSet,
    train: ImageSet,
    synthetic_features: np.ndarray,
    train_features: np.ndarray,
    max_shift: int,
    bar: _Bar,
) -> dict[str, Any]:
    """The audit's summary; each flagged image named by its file and its nearest training
    image's (relative to their folders) beside their positions in the sets read."""
    advance, _ = bar.task("memorization audit", total=1)
    side = min(AUDIT_SIZE, synthetic.images.shape[-1])
    result = memorization_audit(
        _audit_images(synthetic.images, side),
        _audit_images(train.images, side),
        synthetic_features,
        train_features,
        max_shift=max_shift,
    )
    advance(1)
    summary = result.summary(names=synthetic.names, train_names=train.names)
    return {"audit_size_px": side, "max_shift_px": max_shift, **summary}


def evaluate_folders(
    real: str | Path,
    synthetic: str | Path,
    train: str | Path | None = None,
    options: EvaluateOptions | None = None,
) -> dict[str, Any]:
    """Load the folders, score the synthetic images against the real (and training) ones, and
    return the scores (what `write_report` saves). Raises `EvaluateError` for unusable input."""
    options = options or EvaluateOptions()
    notes = list(options.notes)
    with _Bar(options.progress) as bar:
        sets = {}
        for name, folder in (("real", real), ("synthetic", synthetic), ("train", train)):
            if folder is None:
                continue
            advance, set_total = bar.task(f"reading {name}")
            sets[name] = load_image_folder(
                folder,
                on_error=options.on_error,
                advance=advance,
                on_total=set_total,
                color=options.color,
            )
        side = harmonise_sizes(list(sets.values()), options.size)
        extractor, info = (
            (options.extractor, {"name": extractor_name(options.extractor), "kind": "given"})
            if options.extractor is not None
            else default_feature_extractor()
        )
        features = {name: _features(extractor, s.images, bar, name) for name, s in sets.items()}
        scores: dict[str, Any] = _distribution_scores(
            features["real"], features["synthetic"], options.k, notes
        )
        scores["ms_ssim_diversity"] = _diversity(sets["synthetic"], bar, notes)
        asked, unparsed = _asked(sets["synthetic"])
        scores["conditional_accuracy"] = _conditional(sets["synthetic"], extractor, asked, unparsed)
        scores["anatomy"] = _anatomy(sets["synthetic"], extractor, asked, bar)
        if "train" in sets:
            scores["memorization"] = _memorization(
                sets["synthetic"],
                sets["train"],
                features["synthetic"],
                features["train"],
                options.max_shift,
                bar,
            )
        else:
            scores["memorization"] = {"skipped": "no --train folder given"}
    for image_set in sets.values():
        notes += [f"{image_set.folder}: {note}" for note in image_set.notes]
    return {
        "extractor": info,
        "image_size_px": side,
        "sets": {
            name: {"folder": str(s.folder), "n": len(s), "skipped": s.skipped}
            for name, s in sets.items()
        },
        "metrics": scores,
        "notes": notes,
        "_samples": {name: s.images[: options.grid] for name, s in sets.items()},
        "_pairs": _flagged_pairs(scores["memorization"], sets),
    }


def _flagged_pairs(memorization: dict[str, Any], sets: dict[str, ImageSet]) -> list[Any]:
    """(synthetic image, training image) of the first REPORT_PAIRS flagged images, for the
    report's thumbnails."""
    if "train" not in sets:
        return []
    return [
        (sets["synthetic"].images[entry["image"]], sets["train"].images[entry["nearest_train"]])
        for entry in memorization.get("flagged_images", [])[:REPORT_PAIRS]
    ]


def _png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img_html(image: np.ndarray, alt: str = "") -> str:
    return (
        f'<img src="data:image/png;base64,{_png_base64(image)}" width="128" height="128"'
        f' alt="{html.escape(alt)}">'
    )


def _grid_html(images: np.ndarray) -> str:
    cells = "".join(
        f'<img src="data:image/png;base64,{_png_base64(im)}" width="128" height="128">'
        for im in images
    )
    return f'<div class="grid">{cells}</div>'


# Lists the report counts and leaves to scores.json.
LISTED = ("per_prompt", "flagged_images", "per_image", "failing_images", "unparsed_captions")


# Significant digits of the report's numbers: the memorization audit's correlations and
# thresholds sit just below 1 (0.999946, 0.99997), where 4 digits would show 0.9999 or 1.
DIGITS = 4
MEMORIZATION_DIGITS = 6


def format_number(value: float, digits: int = DIGITS) -> str:
    """`value` to `digits` significant digits, with more (up to 15) where that would round a
    value other than 1 to 1, so a near-copy's correlation never reads as an exact copy."""
    if math.isinf(value) or math.isnan(value):
        return str(value)
    text = f"{value:.{digits}g}"
    while float(text) == 1.0 and value != 1.0 and digits < 15:
        digits += 1
        text = f"{value:.{digits}g}"
    return text


def _rows(scores: dict[str, Any], prefix: str = "", digits: int = DIGITS) -> list[tuple[str, str]]:
    rows = []
    for key, value in scores.items():
        name = f"{prefix}{key}"
        places = MEMORIZATION_DIGITS if name.startswith("memorization") else digits
        if key in LISTED:
            rows.append((name, f"{len(value)} entries (see scores.json)"))
        elif isinstance(value, dict) and set(value) == {"successes", "n", "rate", "low", "high"}:
            rows.append(
                (
                    name,
                    f"{value['successes']}/{value['n']} = {value['rate']:.3f} "
                    f"(95 % CI {value['low']:.3f} to {value['high']:.3f})",
                )
            )
        elif isinstance(value, dict):
            rows += _rows(value, f"{name}.", places)
        elif isinstance(value, float):
            rows.append((name, format_number(value, places)))
        else:
            rows.append((name, str(value)))
    return rows


def _sets_html(sets: dict[str, Any]) -> str:
    """A table of each folder: images scored, files skipped (the first REPORT_SKIPPED named)."""
    rows = []
    for name, image_set in sets.items():
        skipped = image_set["skipped"]
        shown = "".join(f"<li>{html.escape(problem)}</li>" for problem in skipped[:REPORT_SKIPPED])
        more = len(skipped) - REPORT_SKIPPED
        if more > 0:
            shown += f"<li>and {more} more (see scores.json)</li>"
        listed = f"<ul>{shown}</ul>" if skipped else ""
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(image_set['folder'])}</td>"
            f"<td>{image_set['n']}</td><td>{len(skipped)}{listed}</td></tr>"
        )
    head = "<tr><th>set</th><th>folder</th><th>images</th><th>files skipped</th></tr>"
    return f'<h2>Images</h2><table class="sets">{head}{"".join(rows)}</table>'


def _flagged_html(memorization: dict[str, Any], pairs: list[Any]) -> str:
    """The images the memorization audit flags: names, correlation, shift, residual, and
    thumbnails of the first pairs."""
    flagged = memorization.get("flagged_images")
    if not flagged:
        return ""
    rows = []
    for i, entry in enumerate(flagged):
        synthetic = entry.get("image_file", f"#{entry['image']}")
        train = entry.get("nearest_train_file", f"#{entry['nearest_train']}")
        thumbnails = (
            _img_html(pairs[i][0], f"synthetic {synthetic}")
            + _img_html(pairs[i][1], f"training {train}")
            if i < len(pairs)
            else ""
        )
        shift = ", ".join(str(v) for v in entry["shift_px"])
        rows.append(
            f"<tr><td>{html.escape(synthetic)}</td><td>{html.escape(train)}</td>"
            f"<td>{format_number(entry['pixel_correlation'], MEMORIZATION_DIGITS)}</td>"
            f"<td>({shift})</td>"
            f"<td>{format_number(entry['residual_lag1'], DIGITS)}</td>"
            f'<td class="pair">{thumbnails}</td></tr>'
        )
    head = (
        "<tr><th>synthetic image</th><th>nearest training image</th><th>pixel correlation</th>"
        "<th>shift (dy, dx) px</th><th>residual lag-1</th><th>synthetic | training</th></tr>"
    )
    threshold = format_number(memorization["threshold"], MEMORIZATION_DIGITS)
    return (
        f"<h2>Flagged as copies ({len(flagged)})</h2><p>Flagged at correlation above "
        f"{threshold}, or at least {memorization['copy_min_correlation']} with a white "
        f"residual (lag-1 below {memorization['white_residual_max']}); thumbnails of the first "
        f"{REPORT_PAIRS}.</p>"
        f'<table class="flagged">{head}{"".join(rows)}</table>'
    )


def write_report(result: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write `scores.json` and `report.html` into `out` (created); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = result.get("_samples", {})
    pairs = result.get("_pairs", [])
    scores = {k: v for k, v in result.items() if not k.startswith("_")}
    json_path = out / "scores.json"
    json_path.write_text(json.dumps(scores, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    table = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td></tr>"
        for n, v in _rows(scores["metrics"])
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in scores["notes"])
    grids = "".join(
        f"<h2>{html.escape(name)} samples</h2>{_grid_html(images)}"
        for name, images in samples.items()
    )
    extractor = scores["extractor"]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>radsynth evaluate</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 12px;border-bottom:1px solid #ddd}}
th{{text-align:left;padding:2px 12px}}td{{overflow-wrap:anywhere;vertical-align:top}}
.grid img,.pair img{{margin:2px;image-rendering:pixelated}}.pair{{white-space:nowrap}}</style>
</head><body>
<h1>radsynth evaluate</h1>
<p>Features: <b>{html.escape(extractor["name"])}</b> ({html.escape(extractor.get("note", ""))}).
Images at {scores["image_size_px"]} px. Distribution metrics use radsynth's own feature space
and are not comparable with published FID values.</p>
<table>{table}</table>
{_sets_html(scores["sets"])}
<h2>Notes</h2><ul>{notes or "<li>none</li>"}</ul>
{_flagged_html(scores["metrics"].get("memorization", {}), pairs)}
{grids}
</body></html>
"""
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return json_path, html_path
