"""A trial full-resolution detail head on the frozen built-in UNet (2026-12-07, not shipped).

The built-in UNet denoises 8 x 8 px patches folded into 64 channels, and its x0 prediction keeps
only a third of an image's fine detail even when handed the image almost clean
(`scripts/denoise_check.py`). This trial asks whether a small convolutional head at full
resolution, fed the UNet's x0 prediction, the noisy image and the noise level, and trained to
correct the prediction, restores that detail, and whether images sampled with it show more of
it. 1,350 training images: 500 X-rays with a placed bone finding (runs/builtin-data-v25's
`place_findings`), 700 regional, focus and study-finding X-rays and 150 CT, MRI and ultrasound
images (runs/builtin-data-v26); timesteps 0-399; 96 px crops, batch 8, AdamW at 2e-3.

    .venv/bin/python docs/trials/detail_head_trial.py train 12  # minutes; runs/detail/head.pt
    .venv/bin/python docs/trials/detail_head_trial.py sample    # prints; runs/detail/sample.png

`train` prints, on the 12 held-out wrists and knees of runs/heldout-fx (distal radius fractures,
femoral tumours), the detail kept inside the finding (`denoise_check.detail_kept`) by the UNet
and with the head at timesteps 0, 50, 100, 166 and 300. `sample` draws 4 images of five probe
prompts with the default 6 steps, with two more steps at t = 60 and 15, and with the head below
t = 200, and reads them with the shipped reader.
"""

import importlib.util
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from radsynth.models import DiffusionComponents
from radsynth.train.data import read_image, read_structure_mask, training_caption

spec = importlib.util.spec_from_file_location("denoise_check", "scripts/denoise_check.py")
denoise_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(denoise_check)
MODEL, HEAD = "src/radsynth/models/builtin", Path("runs/detail/head.pt")


class Head(nn.Module):
    """x0 + a correction from [x0, noisy image, sqrt(alpha_bar), sqrt(1 - alpha_bar)]; 16.7k
    weights, zero output layer (starts as the UNet alone), receptive field 11 px."""

    def __init__(self, ch=24, layers=5):
        super().__init__()
        convs = [nn.Conv2d(4, ch, 3, padding=1)] + [
            nn.Conv2d(ch, ch, 3, padding=1) for _ in range(layers - 2)
        ]
        self.body = nn.ModuleList(convs)
        self.out = nn.Conv2d(ch, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x0, xt, a, s):
        h = torch.cat([x0, xt, a.expand_as(x0), s.expand_as(x0)], 1)
        for conv in self.body:
            h = F.silu(conv(h))
        return x0 + self.out(h)


def records(folder, keep, n):
    folder = Path(folder)
    lines = (folder / "manifest.jsonl").read_text().splitlines()
    found = [(folder, r) for r in map(json.loads, lines) if keep(r)]
    random.shuffle(found)
    return found[:n]


def predict(comp, images, t, embeds, generator):
    """The UNet's x0 prediction and the noisy image, both unfolded to pixels in [-1, 1]."""
    clean = comp.image_to_model(images)
    noise = torch.randn(clean.shape, generator=generator)
    t = torch.as_tensor(t, dtype=torch.long)
    a = comp.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1).float()
    noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
    with torch.no_grad():
        x0 = comp.unet(noisy, t, encoder_hidden_states=embeds).sample
    return F.pixel_shuffle(x0, 8), F.pixel_shuffle(noisy, 8), a.sqrt(), (1 - a).sqrt()


def train(minutes):
    torch.manual_seed(0)
    random.seed(0)
    comp = DiffusionComponents.from_pretrained(MODEL)
    comp.unet.requires_grad_(False)
    xray = lambda r: r["labels"]["modality"] == "xray"  # noqa: E731
    part = lambda r: r["image"].split("/")[0]  # noqa: E731
    chosen = records(
        "runs/builtin-data-v25", lambda r: xray(r) and part(r) == "place_findings", 500
    )
    chosen += records(
        "runs/builtin-data-v26",
        lambda r: xray(r) and part(r) in ("focus", "regional", "study_findings"),
        700,
    )
    chosen += records("runs/builtin-data-v26", lambda r: not xray(r), 150)
    images = torch.from_numpy(np.stack([read_image(f, r, 256) for f, r in chosen]))[:, None]
    captions = [training_caption(r["caption"])[0] for _, r in chosen]
    with torch.no_grad():
        embeds = torch.cat(
            [
                comp.prompt_encoder.encode(captions[i : i + 64], "cpu")
                for i in range(0, len(captions), 64)
            ]
        )
    held = records("runs/heldout-fx", lambda r: True, 12)
    held_images = torch.from_numpy(np.stack([read_image(f, r, 256) for f, r in held]))[:, None]
    inside = (
        torch.from_numpy(
            np.stack([read_structure_mask(f, r, 256, ["finding_*"]) for f, r in held])
        )[:, None]
        > 0.5
    )
    with torch.no_grad():
        held_embeds = comp.prompt_encoder.encode(
            [training_caption(r["caption"])[0] for _, r in held], "cpu"
        )

    def evaluate(head):
        for t in (0, 50, 100, 166, 300):
            x0, xt, a, s = predict(
                comp, held_images, [t] * len(held), held_embeds, torch.Generator().manual_seed(1)
            )
            with torch.no_grad():
                corrected = head(x0, xt, a, s)
            unet, mended = ((x0 + 1) / 2).clamp(0, 1), ((corrected + 1) / 2).clamp(0, 1)
            kept = [denoise_check.detail_kept(p, held_images, inside) for p in (unet, mended)]
            print(
                f"t={t}: detail kept inside the finding, "
                f"UNet {kept[0]:.3f}, with the head {kept[1]:.3f}",
                flush=True,
            )

    head = Head()
    optimiser = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=0)
    generator, batch, crop = torch.Generator().manual_seed(0), 8, 96
    start, step = time.time(), 0
    while time.time() - start < minutes * 60:
        index = torch.randint(0, len(images), (batch,), generator=generator)
        t = torch.randint(0, 400, (batch,), generator=generator)
        x0, xt, a, s = predict(comp, images[index], t, embeds[index], generator)
        target = images[index] * 2 - 1
        ys, xs = (torch.randint(0, 256 - crop, (batch,), generator=generator) for _ in range(2))

        def cut(z: torch.Tensor, ys: torch.Tensor = ys, xs: torch.Tensor = xs) -> torch.Tensor:
            return torch.stack(
                [z[i, :, ys[i] : ys[i] + crop, xs[i] : xs[i] + crop] for i in range(batch)]
            )

        loss = F.mse_loss(head(cut(x0), cut(xt), a, s), cut(target))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
    print(f"{step} steps in {minutes} min")
    evaluate(head)
    HEAD.parent.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), HEAD)


def sample():
    from radsynth.evaluate.reader import load_reader
    from radsynth.pipelines import TextToImagePipeline

    head = Head()
    head.load_state_dict(torch.load(HEAD))
    pipe = TextToImagePipeline.from_pretrained(MODEL)
    pipe.set_progress_bar_config(disable=True)
    alpha_bar = pipe.scheduler.alphas_cumprod
    guided, prepare, state = pipe.guided_model_output, pipe.prepare_timesteps, {}

    def with_head(latents, t, embeds, guidance):
        out = guided(latents, t, embeds, guidance)
        if state.get("head") and int(t) < 200:
            a = alpha_bar[int(t)].float().view(1, 1, 1, 1)
            with torch.no_grad():
                x0 = head(
                    F.pixel_shuffle(out, 8), F.pixel_shuffle(latents, 8), a.sqrt(), (1 - a).sqrt()
                )
            out = F.pixel_unshuffle(x0, 8)
        return out

    def timesteps(n, strength=1.0):
        if state.get("timesteps"):
            pipe.scheduler.set_timesteps(timesteps=state["timesteps"])
            return pipe.scheduler.timesteps
        return prepare(n, strength)

    pipe.guided_model_output, pipe.prepare_timesteps = with_head, timesteps
    prompts = [
        ("AP radiograph of the left wrist with a fracture of the distal radius", 88),
        ("AP radiograph of the left knee with a bone tumour of the femur", 92),
        ("An X-ray of the hand", 20),
        ("An X-ray of the knee", 24),
        ("Lateral radiograph of the lumbar spine", 60),
    ]
    extra = [999, 832, 666, 499, 332, 166, 60, 15]
    settings = {
        "default 6 steps": {},
        "steps at 60 and 15 added": {"timesteps": extra},
        "steps added, head": {"timesteps": extra, "head": True},
        "6 steps, head": {"head": True},
    }
    reader, columns = load_reader(), []
    for name, setting in settings.items():
        state.clear()
        state.update(setting)
        images = np.concatenate(
            [
                pipe(p, num_images_per_prompt=4, generator=torch.Generator().manual_seed(s)).images
                for p, s in prompts
            ]
        )
        read = reader.predict(list(images))
        fracture = np.round([r["findings"]["fracture"] for r in read[:4]], 2)
        tumour = np.round([r["findings"]["bone_tumour"] for r in read[4:8]], 2)
        detail = (
            images
            - F.avg_pool2d(torch.from_numpy(images)[:, None], 9, 1, 4, count_include_pad=False)[
                :, 0
            ].numpy()
        )
        rms = np.sqrt((detail**2).mean())
        print(f"{name}: wrist fracture {fracture}, knee tumour {tumour}, fine detail rms {rms:.4f}")
        columns.append(
            np.concatenate(
                [np.concatenate(list(images[i * 4 : i * 4 + 4]), 1) for i in range(len(prompts))]
            )
        )
    from PIL import Image

    Image.fromarray((np.concatenate(columns, 1) * 255).astype(np.uint8)).save(
        "runs/detail/sample.png"
    )


if __name__ == "__main__":
    torch.set_num_threads(2)
    train(float(sys.argv[2])) if sys.argv[1] == "train" else sample()
