"""The probe's outputs: `scores.json`, figure grids as PNG files, and `report.html`.

The report's grids are made of tiles of at most `tile_px` pixels (128 by default), so the
whole report with its PNGs stays a few megabytes; every generated image is also written at
full size under `images/` (each with its prompt and seed), unless told not to.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.io.png import write_png
from radsynth.probe.compare import sampler_text
from radsynth.probe.figures import FigureRow, labelled_grid, write_figure
from radsynth.probe.protocol import ProbeResult
from radsynth.probe.scoring import resize_image
from radsynth.probe.targets import TARGET_MEASURES

__all__ = ["PROBE_FILES", "clear_previous_run", "write_report", "write_scores"]

FIGURE_TITLES = {
    "figure1": "Figure 1: 'An X-ray of the <region>', every image kept",
    "figure2": "Figure 2: CT, MRI and ultrasound",
    "anatomy": "Anatomy and bias set: AP and lateral, hands and wrists, chests by sex and age",
    "pathology": "Pathology asked for",
    "finding_effect": (
        "Finding effect: asked | twin without it | |difference| x 5 | its place (dim: other side)"
    ),
}


# Every file and folder `write_report` writes into OUT: a run replaces all of them, so that a
# folder re-used never shows a previous run's figure beside this run's scores.
FIGURE_GROUPS = ("figure1", "figure2", "anatomy", "pathology", "finding_effect")
PROBE_PNGS = (
    *(f"{group}.png" for group in FIGURE_GROUPS),
    "figure3.png",
    "figure4.png",
    "knee_to_full_body.png",
    "knee_to_full_body_read.png",
)
PROBE_FILES = ("scores.json", "report.html", *PROBE_PNGS)  # besides images/<figure>/


def clear_previous_run(out: Path) -> list[str]:
    """Remove from `out` what an earlier probe run wrote there (`PROBE_FILES`: scores.json,
    report.html, the figure PNGs, and under images/ each figure's folder and grid); other files
    are kept, and images/ itself only goes where nothing else is left in it. Returns the names
    removed (relative to `out`)."""
    import shutil

    removed: list[str] = []
    for name in PROBE_FILES:
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(name)
    images = out / "images"
    if images.is_dir() and not images.is_symlink():
        for group in FIGURE_GROUPS:
            folder, grid = images / group, images / f"{group}.png"
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder)
                removed.append(f"images/{group}/")
            if grid.is_file():
                grid.unlink()
                removed.append(f"images/{group}.png")
        if not any(images.iterdir()):
            images.rmdir()
    return removed


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_scores(result: ProbeResult, out: Path) -> Path:
    """OUT/scores.json (infinite PSNR written as the JSON extension `Infinity`)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scores.json"
    path.write_text(json.dumps(result.scores(), indent=2, default=_json_default) + "\n")
    return path


def _small(image: np.ndarray, tile_px: int) -> np.ndarray:
    h, w = image.shape
    scale = min(1.0, tile_px / max(h, w))
    if scale >= 1.0:
        return np.asarray(image, dtype=np.float32)
    return resize_image(image, (max(1, round(h * scale)), max(1, round(w * scale))))


def _pad(image: np.ndarray, h: int, w: int) -> np.ndarray:
    padded = np.zeros((h, w), dtype=np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    return padded


def _grid(rows: Sequence[FigureRow], title: str, tile_px: int) -> np.ndarray:
    small = [
        FigureRow(r.title, r.prompt, [_small(im, tile_px) for im in r.images], r.seeds)
        for r in rows
    ]
    return labelled_grid(small, title)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _target_rows(result: ProbeResult) -> str:
    rows = []
    for t in result.targets:
        status = "met" if t.met else ("not measured" if not t.measured else "not met")
        css = "met" if t.met else ("unmeasured" if not t.measured else "missed")
        interval = t.details.get("wilson_95")
        ci = f" (95 % CI {interval[0]:.2f}–{interval[1]:.2f})" if interval else ""
        ref = t.details.get("phantom_reference")
        ref_text = (
            f"{_fmt(ref['value'])} (n={ref['n']}, {'met' if ref['met'] else 'not met'})"
            if ref
            else "—"
        )
        rows.append(
            f"<tr class='{css}'><td>{html.escape(t.name)}</td>"
            f"<td>{_fmt(t.value)}{ci}</td><td>{html.escape(t.comparison)} {_fmt(t.threshold)}"
            f" <small>{html.escape(t.unit)}</small></td><td>{t.n}</td><td><b>{status}</b></td>"
            f"<td>{ref_text}</td><td>{html.escape(t.note)}</td>"
            f"<td><small>{html.escape(TARGET_MEASURES.get(t.key, ''))}</small></td></tr>"
        )
    return (
        "<table><tr><th>target</th><th>measured</th><th>threshold</th><th>n</th>"
        "<th>status</th><th>phantom reference</th><th>note</th><th>what it counts</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _edit_table(records: list[dict[str, Any]], baseline: bool) -> str:
    head = "<tr><th>region</th><th>seed</th><th>PSNR dB</th><th>SSIM</th><th>count truth</th>"
    head += "<th>count model</th><th>match</th>"
    if baseline:
        head += "<th>biharmonic PSNR</th><th>biharmonic SSIM</th><th>biharmonic match</th>"
    rows = []
    for r in records:
        m = r["model"] if baseline else r
        cells = [
            r["region"],
            r["seed"],
            m["psnr_db"],
            m["ssim"],
            m.get("count_truth"),
            m.get("count_reconstruction"),
            m.get("count_match"),
        ]
        if baseline:
            b = r["biharmonic"]
            cells += [b["psnr_db"], b["ssim"], b.get("count_match")]
        rows.append("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>")
    return "<table>" + head + "</tr>" + "".join(rows) + "</table>"


def _body_reading_strip(records: list[dict[str, Any]], gap: int = 4) -> np.ndarray:
    """One RGB row: per body, the grown image and the answer key with the body stage's femora,
    tibiae and lumbar centres drawn over them (`body.draw_body_reading`)."""
    from radsynth.evaluate.reader.body import BODY_SHAPE, draw_body_reading

    tiles = []
    for r in records:
        _, grown, truth = r["_images"]
        generated_map, truth_map = r["_body_maps"]
        tiles += [draw_body_reading(grown, generated_map), draw_body_reading(truth, truth_map)]
    spacer = np.full((BODY_SHAPE[0], gap, 3), 16, np.uint8)
    return np.concatenate([x for t in tiles for x in (t, spacer)][:-1], axis=1)


def _full_body_table(records: list[dict[str, Any]]) -> str:
    rows = []
    for r in records:
        gen = r.get("generated", {})
        rot = r.get("reader_on_truth", {})
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{_fmt(c)}</td>"
                for c in (
                    r["seed"],
                    r["sex"],
                    r["truth"]["ratio"],
                    gen.get("ratio"),
                    rot.get("ratio"),
                    r.get("ratio_error"),
                    r["truth"]["lumbar_count"],
                    gen.get("lumbar_count"),
                    rot.get("lumbar_count"),
                    r["outpaint_s"],
                )
            )
            + "</tr>"
        )
    return (
        "<table><tr><th>seed</th><th>sex</th><th>true femur/tibia</th><th>generated</th>"
        "<th>reader on truth</th><th>relative error</th><th>true lumbar</th>"
        "<th>generated lumbar</th><th>reader on truth</th><th>outpaint s</th></tr>"
        + "".join(rows)
        + "</table>"
    )


CSS = """
body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;
font-size:13px;text-align:left}tr.met td{background:#e6f4e6}tr.missed td{background:#fbe3e3}
tr.unmeasured td{background:#f2f2f2}img{max-width:100%;border:1px solid #999}
code{background:#f4f4f4}p.quick{background:#fff3cd;padding:4px 8px}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
"""


def _diversity_table(diversity: dict[str, Any]) -> str:
    head = "<h2>Diversity: how alike the images of one prompt are</h2>"
    if "per_prompt" not in diversity:
        return head + f"<p>{html.escape(str(diversity.get('skipped', 'not measured')))}</p>"
    rows = "".join(
        f"<tr><td>{html.escape(r['prompt'])}</td><td>{r['n']}</td>"
        f"<td>{_fmt(r['model_ms_ssim'])}</td><td>{_fmt(r['phantom_ms_ssim'])}</td></tr>"
        for r in diversity["per_prompt"]
    )
    model, phantoms = diversity["model"], diversity["phantoms"]
    return (
        head + f"<p>Mean pairwise MS-SSIM (1 = identical): model {_fmt(model['mean_ms_ssim'])}, "
        f"phantoms drawn with the same labels {_fmt(phantoms['mean_ms_ssim'])}; "
        f"{html.escape(str(diversity.get('phantom_sample', '')))}.</p>"
        "<table><tr><th>prompt</th><th>n</th><th>model MS-SSIM</th><th>phantom MS-SSIM</th>"
        "</tr>" + rows + "</table>"
    )


def _finding_effect_table(effect: dict[str, Any], png: str | None) -> str:
    head = "<h2>Finding effect: what the finding's words change, and where</h2>"
    if "per_prompt" not in effect:
        return head + f"<p>{html.escape(str(effect.get('skipped', 'not measured')))}</p>"
    rows = "".join(
        f"<tr><td>{html.escape(r['prompt'])}</td><td>{html.escape(r['twin'])}</td><td>{r['n']}</td>"
        f"<td>{_fmt(r['place_share'])}</td><td>{_fmt(r['mean_change_inside'], 4)}</td>"
        f"<td>{_fmt(r['mean_change_outside'], 4)}</td><td>{_fmt(r['inside_to_outside'], 2)}</td>"
        f"<td>{_fmt(r['signed_change_inside'], 4)}</td>"
        f"<td>{_fmt(r.get('mean_change_other_side'), 4)}</td>"
        f"<td>{_fmt(r.get('asked_to_other_side'), 2)}</td></tr>"
        for r in effect["per_prompt"]
    )
    sided = effect.get("sided") or {}
    side = (
        f" Prompts that name the finding's side ({sided['prompts']}): change inside "
        f"{_fmt(sided['mean_change_inside'], 4)}, at the other side's place "
        f"{_fmt(sided['mean_change_other_side'], 4)}, asked / other side "
        f"{_fmt(sided['asked_to_other_side'], 2)} (above 1: the change lands on the side asked "
        "for; near 1: both sides alike; below 1: the wrong side)."
        if sided.get("asked_to_other_side") is not None
        else ""
    )
    picture = f"<img src='{png}' alt='finding effect'>" if png else ""
    return (
        head + "<p>Each pathology prompt against its twin without the finding, on the same seeds "
        "(needs no reader): mean |change| inside the place where phantoms drawn for the prompt "
        f"show the finding ({html.escape(effect['places_from'])}) and outside it. Pooled: "
        f"inside {_fmt(effect['mean_change_inside'], 4)}, outside "
        f"{_fmt(effect['mean_change_outside'], 4)}, ratio {_fmt(effect['inside_to_outside'], 2)}. "
        "A model that ignores the finding's words changes little anywhere; a ratio near 1 means "
        "they move the whole image, not the finding's place."
        + side
        + "</p>"
        + picture
        + "<table><tr><th>prompt</th><th>twin</th><th>n</th><th>place share</th>"
        "<th>change inside</th><th>change outside</th><th>inside / outside</th>"
        "<th>signed change inside</th><th>change at the other side</th>"
        "<th>asked / other side</th></tr>" + rows + "</table>"
    )


def write_report(
    result: ProbeResult, out: Path, tile_px: int = 128, keep_images: bool = True
) -> Path:
    """Write OUT/scores.json, the grids OUT/*.png, OUT/report.html and, with `keep_images`,
    every generated image at full size in OUT/images/<figure>/ with its prompt and seed. What
    an earlier probe run wrote into OUT goes first (`clear_previous_run`); other files stay."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file: the probe writes into a folder; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    clear_previous_run(out)
    write_scores(result, out)
    info = {"Model": result.model, "Synthetic": "YES"}
    pngs: dict[str, str] = {}
    for group, rows in result.figures.items():
        if keep_images:
            write_figure(out / "images", group, rows, {"Model": result.model})
        grid = _grid(rows, FIGURE_TITLES.get(group, group), tile_px)
        pngs[group] = write_png(out / f"{group}.png", grid, info).name
    if result.figure3:
        rows = [
            FigureRow(
                r["region"],
                f"{r['region']}: truth | erased | model | biharmonic",
                list(r["_images"]),
                [r["seed"]] * 4,
            )
            for r in result.figure3
        ]
        pngs["figure3"] = write_png(
            out / "figure3.png", _grid(rows, "Figure 3: inpainting", tile_px), info
        ).name
    if result.figure4:
        h = max(r["_images"][0].shape[0] for r in result.figure4)
        w = max(r["_images"][0].shape[1] for r in result.figure4)
        rows = [
            FigureRow(
                r["region"],
                f"{r['region']}: given | outpainted | answer key",
                [_pad(im, h, w) for im in r["_images"]],
                [r["seed"]] * 3,
            )
            for r in result.figure4
        ]
        pngs["figure4"] = write_png(
            out / "figure4.png", _grid(rows, "Figure 4: outpainting", tile_px), info
        ).name
    if result.full_body:
        h = max(r["_images"][0].shape[0] for r in result.full_body)
        w = max(r["_images"][0].shape[1] for r in result.full_body)
        # One row, the bodies side by side: a standing body is four times as tall as it is
        # wide, so a row per body made a figure a few tiles wide and many bodies tall.
        sexes = ", ".join(str(r["sex"]) for r in result.full_body)
        rows = [
            FigureRow(
                "full body",
                f"per body ({sexes}): knee | grown to a full body | answer key",
                [_pad(im, h, w) for r in result.full_body for im in r["_images"]],
                [r["seed"] for r in result.full_body for _ in r["_images"]],
            )
        ]
        pngs["full_body"] = write_png(
            out / "knee_to_full_body.png",
            _grid(rows, "Figure 4: knee to full body", 4 * tile_px),
            info,
        ).name
        read = [r for r in result.full_body if "_body_maps" in r]
        if read:
            pngs["full_body_read"] = write_png(
                out / "knee_to_full_body_read.png", _body_reading_strip(read), info
            ).name

    met = sum(t.met for t in result.targets)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>radsynth probe</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>radsynth probe" + (": quick (smoke) run" if result.config.quick_run else "") + "</h1>",
        _quick_text(result),
        f"<p>Model <code>{html.escape(result.model)}</code>, {result.size} px; reader "
        f"<code>{html.escape(str(result.reader))}</code>; {result.config.n} images per prompt, "
        f"seed {result.config.seed}{_sampler_text(result.sampler)}. "
        f"Targets met: <b>{met} of {len(result.targets)}</b>. "
        "The protocol follows Adams et al., J Med Internet Res 2023;25:e43110, scored against "
        "phantom truth by radsynth's reader and anatomy checks.</p>",
        "<h2>Targets</h2>",
        _target_rows(result),
        "<h2>Notes</h2><ul>"
        + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
        + "</ul>",
    ]
    for group in ("figure1", "figure2", "anatomy", "pathology"):
        if group in pngs:
            parts.append(f"<h2>{html.escape(FIGURE_TITLES[group])}</h2>")
            parts.append(f"<img src='{pngs[group]}' alt='{group}'>")
    if result.figure3:
        parts.append("<h2>Figure 3: inpainting a central square</h2>")
        parts.append(f"<img src='{pngs['figure3']}' alt='figure 3'>")
        parts.append(_edit_table(result.figure3, baseline=True))
    if result.figure4:
        parts.append("<h2>Figure 4: outpainting past two borders</h2>")
        parts.append(f"<img src='{pngs['figure4']}' alt='figure 4'>")
        parts.append(_edit_table(result.figure4, baseline=False))
    if result.full_body:
        parts.append("<h2>Figure 4: knee to full body</h2>")
        parts.append(f"<img src='{pngs['full_body']}' alt='knee to full body'>")
        if "full_body_read" in pngs:
            parts.append(
                "<p>As the reader's body stage read them (each body fitted to 512 x 128): per "
                "body the grown image and the answer key, femora red, tibiae green, lumbar "
                "centres yellow.</p>"
                f"<img src='{pngs['full_body_read']}' alt='knee to full body as read'>"
            )
        parts.append(_full_body_table(result.full_body))
    parts.append(_finding_effect_table(result.finding_effect, pngs.get("finding_effect")))
    parts.append(_diversity_table(result.diversity))
    parts.append("<h2>Bias</h2><pre>" + html.escape(json.dumps(result.bias, indent=2)) + "</pre>")
    mem = {k: v for k, v in result.memorization.items() if k != "flagged_images"}
    parts.append(
        "<h2>Memorization</h2><pre>"
        + html.escape(json.dumps(mem, indent=2, default=_json_default))
        + "</pre>"
    )
    if result.conditional:
        parts.append(
            "<h2>Conditional accuracy</h2><pre>"
            + html.escape(json.dumps(result.conditional, indent=2, default=_json_default))
            + "</pre>"
        )
    parts.append("<h2>Timings (s)</h2><pre>" + html.escape(json.dumps(result.timings_s)) + "</pre>")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path


def _quick_text(result: ProbeResult) -> str:
    """A warning paragraph for a quick (smoke) run, else empty: its values rest on far fewer
    images and a shorter schedule than a default run's and are not the model's scores."""
    if not result.config.quick_run:
        return ""
    return (
        "<p class='quick'><b>Quick (smoke) run</b> (<code>--quick</code>): "
        f"{result.config.n} image(s) per prompt, {result.config.inpaint_cases} phantom(s) per "
        "edit, a short schedule; it checks that the probe runs. Its values are not the "
        "model's scores: compare only with other quick runs.</p>"
    )


def _sampler_text(sampler: dict[str, Any]) -> str:
    """ ", sampled with DPMSolverMultistepScheduler, 6 steps, guidance 3 at t >= 0.5 T"."""
    text = sampler_text(sampler)
    if text is None:
        return ""
    return f", sampled with {html.escape(str(sampler.get('scheduler', '')))}, {html.escape(text)}"
