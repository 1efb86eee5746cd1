"""Compare two readers' finding detection on fresh phantom cases neither was trained on.

    python scripts/compare_reader_findings.py --a runs/reader/v3 --b shipped \
        --cache runs/reader/cache-cal-seed1 --seed 1 --n 1000 --out findings_auc.json

Renders (or reuses) `n` held-out cases of data seed `seed` (a seed other than the readers'
training seed gives cases neither has seen), reads them with both readers and prints, per finding
kind with at least `--min-positives` positives: ROC AUC of each reader and a paired bootstrap 95 %
interval of the difference (a - b), and each reader's recall and false positives at the
probability threshold the probe uses (0.5). The AUC compares how well the readers rank cases,
apart from where each one's threshold happens to fall.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from radsynth.evaluate.metrics.conditional import FINDING_PROBABILITY_THRESHOLD
from radsynth.evaluate.reader.data import ReaderCache, unpack
from radsynth.evaluate.reader.groups import FINDINGS
from radsynth.evaluate.reader.inference import WEIGHTS_DIR
from radsynth.evaluate.reader.model import load_reader_net


def reader_folder(name: str) -> Path:
    return WEIGHTS_DIR if name == "shipped" else Path(name)


@torch.no_grad()
def finding_probabilities(folder: Path, data: dict[str, np.ndarray]) -> np.ndarray:
    net = load_reader_net(folder).eval()
    n, out = len(data["modality"]), []
    for start in tqdm(range(0, n, 50), desc=f"reading with {folder}", leave=False):
        batch = unpack(data, np.arange(start, min(n, start + 50)))
        out.append(torch.sigmoid(net(torch.from_numpy(batch["image"]))["findings"]).numpy())
    return np.concatenate(out)


def operating_point(p: np.ndarray, y: np.ndarray) -> dict[str, float | int]:
    seen = p >= FINDING_PROBABILITY_THRESHOLD
    return {
        "recall": round(float((seen & y).sum() / max(1, y.sum())), 3),
        "false_positives": int((seen & ~y).sum()),
    }


def compare(
    pa: np.ndarray, pb: np.ndarray, truth: np.ndarray, min_positives: int, boots: int, seed: int
) -> dict:
    rng = np.random.default_rng(seed)
    n = len(truth)
    draws = [rng.integers(0, n, n) for _ in range(boots)]
    kinds = [j for j in range(len(FINDINGS)) if truth[:, j].sum() >= min_positives]
    if not kinds:
        raise SystemExit(f"no finding kind has {min_positives} positives; render more cases (--n)")
    result: dict = {"cases": n, "kinds": {}}
    for j in kinds:
        y = truth[:, j]
        diffs = [
            roc_auc_score(y[i], pa[i, j]) - roc_auc_score(y[i], pb[i, j])
            for i in draws
            if 0 < y[i].sum() < n
        ]
        result["kinds"][FINDINGS[j]] = {
            "positives": int(y.sum()),
            "auc_a": round(float(roc_auc_score(y, pa[:, j])), 3),
            "auc_b": round(float(roc_auc_score(y, pb[:, j])), 3),
            "auc_difference_ci95": [round(float(q), 3) for q in np.percentile(diffs, [2.5, 97.5])],
            "a_at_threshold": operating_point(pa[:, j], y),
            "b_at_threshold": operating_point(pb[:, j], y),
        }

    def mean_auc(p: np.ndarray, i: np.ndarray) -> float:
        return float(np.mean([roc_auc_score(truth[i, j], p[i, j]) for j in kinds]))

    usable = [i for i in draws if all(0 < truth[i, j].sum() < n for j in kinds)]
    mean_diffs = [mean_auc(pa, i) - mean_auc(pb, i) for i in usable]
    every = np.arange(n)
    result["mean_auc"] = {
        "a": round(mean_auc(pa, every), 3),
        "b": round(mean_auc(pb, every), 3),
        "difference_ci95": [round(float(q), 3) for q in np.percentile(mean_diffs, [2.5, 97.5])],
    }
    result["pooled_at_threshold"] = {
        "a": operating_point(pa.ravel(), truth.ravel()),
        "b": operating_point(pb.ravel(), truth.ravel()),
        "negatives": int((~truth).sum()),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="reader folder, or 'shipped'")
    parser.add_argument("--b", default="shipped", help="reader folder, or 'shipped'")
    parser.add_argument("--cache", type=Path, required=True, help="case cache folder (reusable)")
    parser.add_argument("--seed", type=int, default=1, help="data seed of the cases")
    parser.add_argument("--n", type=int, default=1000, help="held-out cases")
    parser.add_argument("--size", type=int, default=160, help="reader input size")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering cases")
    parser.add_argument("--min-positives", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    torch.manual_seed(0)
    cache = ReaderCache(args.cache, args.seed, args.size)
    cache.build("heldout", args.n, workers=args.workers)
    data = cache.load("heldout", args.n)
    truth = data["findings"] > 0.5
    pa = finding_probabilities(reader_folder(args.a), data)
    pb = finding_probabilities(reader_folder(args.b), data)
    result = compare(pa, pb, truth, args.min_positives, args.bootstrap, args.seed)
    result.update(a=args.a, b=args.b, seed=args.seed)
    print(f"{args.n} cases of data seed {args.seed}; a = {args.a}, b = {args.b}")
    print(
        f"{'finding':26} {'pos':>4} {'AUC a':>6} {'AUC b':>6}  {'a - b (95 % CI)':>17}"
        f"  {'a: recall / FP':>15}  {'b: recall / FP':>15}"
    )
    for kind, row in result["kinds"].items():
        low, high = row["auc_difference_ci95"]
        ta, tb = row["a_at_threshold"], row["b_at_threshold"]
        print(
            f"{kind:26} {row['positives']:4d} {row['auc_a']:6.3f} {row['auc_b']:6.3f}  "
            f"[{low:+.3f}, {high:+.3f}]  {ta['recall']:8.2f} / {ta['false_positives']:4d}"
            f"  {tb['recall']:8.2f} / {tb['false_positives']:4d}"
        )
    mean = result["mean_auc"]
    print(
        f"mean AUC: a {mean['a']:.3f}, b {mean['b']:.3f}, a - b 95 % CI {mean['difference_ci95']}"
    )
    pooled = result["pooled_at_threshold"]
    print(
        f"pooled at {FINDING_PROBABILITY_THRESHOLD}: a {pooled['a']}, b {pooled['b']} "
        f"({pooled['negatives']} negatives)"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
