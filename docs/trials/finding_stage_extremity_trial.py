"""A trial extremity stage: fractures of the hand, wrist, knee and ankle and bone tumours of the
knee and ankle, each (kind, region) pair planned equally often, 2 in 5 cases with the finding,
2 in 5 the same pair without, 1 in 5 ordinary radiographs of any region; 4,000 cases, 2,500
steps of 16, checkpoints in runs/findings3/trial (resumable: run again). Reads the probe's
pathology phantoms and both earlier held-out streams at the end."""

import time
from pathlib import Path

import numpy as np
import torch

from radsynth.evaluate.reader.case_cache import build_cases
from radsynth.evaluate.reader.findings import (
    MIN_AREA,
    RENDER_SIZE,
    STAGE_KINDS,
    FindingStage,
    finding_config,
    finding_loss,
    training_example,
)
from radsynth.evaluate.reader.groups import FINDINGS, lesion_target
from radsynth.evaluate.reader.model import ReaderNet, save_reader
from radsynth.evaluate.reader.training import run_steps

PAIRS = [("fracture", r) for r in ("hand", "wrist", "knee", "ankle")] + [
    ("bone_tumour", r) for r in ("knee", "ankle")
]


def render(seed, split, index):
    from radsynth.phantoms.cases import make_case
    from radsynth.vocabulary import FINDINGS_BY_REGION, qualifiers_for
    from radsynth.vocabulary.labels import Finding

    rng = np.random.default_rng([seed, 7 + (split == "heldout"), index])
    case_seed = int(rng.integers(2**31))
    u = rng.random()
    if u < 0.2:
        case = make_case(case_seed, modality="xray", size=RENDER_SIZE)
    else:
        kind, region = PAIRS[int(rng.integers(len(PAIRS)))]
        chosen = ()
        if u < 0.6:
            sites = FINDINGS_BY_REGION[("xray", region)][kind]
            site = str(rng.choice(sites)) if sites and rng.random() < 0.7 else None
            options = qualifiers_for(region, kind)
            quals = (str(rng.choice(options)),) if options and rng.random() < 0.7 else ()
            chosen = (Finding(kind, site, quals),)
        case = make_case(
            case_seed, modality="xray", region=region, findings_=chosen, size=RENDER_SIZE
        )
    image = case.image
    masks = lesion_target(image.masks, image.image.shape)[[FINDINGS.index(k) for k in STAGE_KINDS]]
    shown = masks.reshape(len(STAGE_KINDS), -1).sum(1) >= MIN_AREA
    return {
        "image": image.to_uint8(),
        "lesions": np.packbits(masks, axis=None),
        "shown": shown.astype(np.uint8),
    }


class Cfg:
    out = Path("runs/findings3/trial")
    steps = 2500
    lr = 2e-3
    checkpoint_every = 100


if __name__ == "__main__":
    torch.set_num_threads(2)
    torch.manual_seed(0)
    Cfg.out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    data = build_cases(
        Cfg.out / "cases.npz", render, {"seed": 0, "split": "train", "trial": "extremity"}, 4000, 2
    )
    print(
        "cases",
        round(time.time() - t),
        "shown",
        dict(zip(STAGE_KINDS, data["shown"].sum(0).tolist(), strict=True)),
        flush=True,
    )
    net = ReaderNet(finding_config())
    opt = torch.optim.AdamW(net.parameters(), lr=Cfg.lr, weight_decay=1e-4)

    def terms_at(step):
        rng = np.random.default_rng([0, step])
        chosen = rng.choice(len(data["image"]), 16, replace=False)
        ex = [training_example(data, int(i), rng) for i in chosen]
        a, b, c = (torch.stack([e[k] for e in ex]) for k in range(3))
        return finding_loss(net(a), b, c)

    def on_step(step, total, terms):
        if step % 50 == 0:
            print(
                step, round(time.time() - t), {k: round(v, 3) for k, v in terms.items()}, flush=True
            )

    run_steps(net, opt, Cfg, terms_at, on_step)
    save_reader(net, Cfg.out / "stage", {"trial": __doc__})
    stage = FindingStage(net)
    from radsynth.phantoms.cases import make_case_for_labels
    from radsynth.vocabulary import parse_prompt

    for kind, p in (
        ("fracture", "AP radiograph of the left wrist with a fracture of the distal radius"),
        ("bone_tumour", "AP radiograph of the left knee with a bone tumour of the femur"),
        ("consolidation", "PA chest radiograph with consolidation of the right lower lobe"),
        ("pleural_effusion", "PA chest radiograph with a left pleural effusion"),
    ):
        k = STAGE_KINDS.index(kind)
        w = [make_case_for_labels(8_000_000 + s, parse_prompt(p)).image.image for s in range(12)]
        wo = [
            make_case_for_labels(8_000_000 + s, parse_prompt(p.split(" with")[0])).image.image
            for s in range(12)
        ]
        pw, po = stage.probabilities(w)[:, k], stage.probabilities(wo)[:, k]
        print(
            kind,
            "with >=0.5:",
            int((pw >= 0.5).sum()),
            "| without >=0.5:",
            int((po >= 0.5).sum()),
            np.round(pw, 2).tolist(),
            np.round(po, 2).tolist(),
            flush=True,
        )
    from radsynth.evaluate.reader.findings import auroc

    for stream in ("runs/findings/cases-heldout.npz", "runs/findings2/cases-heldout.npz"):
        held = np.load(stream)
        pr = stage.probabilities(held["image"])
        for k, kind in enumerate(STAGE_KINDS[:2]):
            tr = held["shown"][:, k].astype(bool)
            print(
                "heldout",
                stream,
                kind,
                int(tr.sum()),
                "sens",
                round(float((pr[tr, k] >= 0.5).mean()), 3),
                "spec",
                round(float((pr[~tr, k] < 0.5).mean()), 3),
                "auroc",
                round(auroc(pr[:, k], tr), 3),
                flush=True,
            )
