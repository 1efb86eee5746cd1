"""The reader network: a compact residual encoder with classification heads and a light
U-Net decoder that segments structure groups and marks each countable bone's centre.

Input: one grayscale image (B, 1, S, S) with values in [0, 1] (S = `ReaderConfig.size`).
Outputs: logits per label head, findings logits, segmentation logits (B, len(GROUPS), S, S) and
centre heat-map logits (B, len(COUNTED), S, S). A reader with `lesion_maps` also segments each
finding kind (`lesions`, (B, len(FINDINGS), S, S)) and reads its findings from those maps (their
spatial maximum) plus mean- and max-pooled encoder features: a fracture a few pixels long is lost
in a mean over the whole image. `features()` is the pooled encoder output
(the penultimate layer of the classifier): radsynth's feature space for distribution metrics.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from radsynth.evaluate.reader.groups import COUNTED, FINDINGS, GROUPS, HEADS


@dataclass
class ReaderConfig:
    """Architecture of a reader; saved beside its weights as `config.json`."""

    size: int = 160  # native input size (px): carpal centres of a PA hand stay >= 4 px apart
    widths: tuple[int, ...] = (16, 32, 64, 96, 160)  # encoder stages, each halving the size
    decoder_width: int = 24  # channels of the decoder down to half resolution
    full_res_width: int = 8  # a cheap full-resolution skip keeps 1-2 px gaps between bones
    final_width: int = 12  # the full-resolution stage costs the most: kept thin
    heads: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(HEADS))
    findings: tuple[str, ...] = FINDINGS
    groups: tuple[str, ...] = GROUPS
    counted: tuple[str, ...] = COUNTED
    # False for readers saved before lesion maps existed (their config.json lacks the key).
    lesion_maps: bool = False

    def __post_init__(self) -> None:
        factor = 2 ** len(self.widths)
        if self.size % factor:
            raise ValueError(
                f"reader size {self.size} must be a multiple of {factor} "
                f"(2 ** number of encoder stages); try {self.size // factor * factor}"
            )
        self.widths = tuple(int(w) for w in self.widths)
        self.heads = {k: tuple(v) for k, v in self.heads.items()}
        self.findings, self.groups, self.counted = (
            tuple(self.findings),
            tuple(self.groups),
            tuple(self.counted),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class _ResidualStage(nn.Module):
    """Downsample by 2, then one residual block (two 3x3 convolutions)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = _conv(cin, cout, 2)
        self.block = nn.Sequential(
            _conv(cout, cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return F.relu(x + self.block(x))


class _UpBlock(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.conv = _conv(cin + skip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class ReaderNet(nn.Module):
    """Encoder, classification heads, segmentation and centre decoder."""

    def __init__(self, config: ReaderConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths
        self.full_res = _conv(1, config.full_res_width)
        stages, cin = [], config.full_res_width
        for width in widths:
            stages.append(_ResidualStage(cin, width))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(widths[-1], len(classes)) for name, classes in config.heads.items()}
        )
        pooled_width = widths[-1] * (2 if config.lesion_maps else 1)
        with warnings.catch_warnings():  # a carpal stage reads no findings: a 0-wide layer
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            self.findings = nn.Linear(pooled_width, len(config.findings))
        width = config.decoder_width
        self.lateral = nn.Conv2d(widths[-1], width, 1)
        ups = [_UpBlock(width, skip, width) for skip in reversed(widths[:-1])]
        ups.append(_UpBlock(width, config.full_res_width, config.final_width))
        self.ups = nn.ModuleList(ups)
        n_groups, n_counted = len(config.groups), len(config.counted)
        n_lesions = len(config.findings) if config.lesion_maps else 0
        # Group masks are read at half resolution from the full decoder width (a thin
        # full-resolution layer cannot tell 27 groups apart) and refined at full resolution,
        # where the centre maps are read too.
        # Channels: groups, then lesions (if any), then (full resolution only) centres.
        n_maps = n_groups + n_lesions
        self.segment_coarse = nn.Conv2d(width, n_maps, 1)
        self.segment = nn.Conv2d(config.final_width, n_maps + n_counted, 1)
        with torch.no_grad():  # start near the prior: most pixels are no bone, no bone centre
            for conv, prior in ((self.segment_coarse, -2.0), (self.segment, 0.0)):
                assert conv.bias is not None
                conv.bias[:n_groups].fill_(prior)
                conv.bias[n_groups:n_maps].fill_(prior - 2.0)  # lesions are rarer still
            assert self.segment.bias is not None
            self.segment.bias[n_maps:].fill_(-4.6)

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.full_res((images - 0.5) / 0.25)
        feats = [x]
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    @staticmethod
    def pool(deepest: torch.Tensor) -> torch.Tensor:
        return deepest.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encode(images)
        pooled = self.pool(feats[-1])
        out = {name: head(pooled) for name, head in self.heads.items()}
        x = self.lateral(feats[-1])
        for up, skip in zip(self.ups[:-1], reversed(feats[1:-1]), strict=True):
            x = up(x, skip)
        coarse = F.interpolate(
            self.segment_coarse(x), size=images.shape[-2:], mode="bilinear", align_corners=False
        )
        maps = self.segment(self.ups[-1](x, feats[0]))
        n_maps = coarse.shape[1]
        n_groups = len(self.config.groups)
        out["segmentation"] = coarse[:, :n_groups] + maps[:, :n_groups]
        out["centres"] = maps[:, n_maps:]
        out["features"] = pooled
        if self.config.lesion_maps:
            lesions = coarse[:, n_groups:] + maps[:, n_groups:n_maps]
            out["lesions"] = lesions
            peak = feats[-1].amax(dim=(2, 3))
            out["findings"] = self.findings(torch.cat([pooled, peak], 1)) + lesions.amax((2, 3))
        else:
            out["findings"] = self.findings(pooled)
        return out


def save_reader(net: ReaderNet, folder: Path, extra: dict[str, Any] | None = None) -> None:
    """Write `config.json` and `reader.safetensors` (fp16; never pickle) into `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(folder / "reader.safetensors"))
    record = {"config": net.config.to_json(), **(extra or {})}
    (folder / "config.json").write_text(json.dumps(record, indent=2) + "\n")


def read_reader_config(folder: Path) -> ReaderConfig:
    """The architecture a reader folder's `config.json` records (the weights are not read).
    FileNotFoundError where the folder holds no reader, ValueError where config.json is not
    a reader's."""
    config_path, weights_path = folder / "config.json", folder / "reader.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(
            f"no reader in {folder}: expected config.json and reader.safetensors "
            "(train one with `radsynth train-reader --out DIR`)"
        )
    try:
        record = json.loads(config_path.read_text())
        return ReaderConfig(**record["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{config_path} is not a reader's config.json ({type(error).__name__}: {error}); "
            "it is written by `radsynth train-reader` beside reader.safetensors"
        ) from None


@dataclass(frozen=True)
class StageKind:
    """A reader stage: what it is, the subfolder of a reader folder it belongs in and the
    command that trains it."""

    what: str
    subfolder: str
    command: str


# The stages a reader folder loads from its subfolders (see `inference.load_reader`).
FINDING_STAGE_KIND = StageKind(
    "a finding stage", "findings/ (or READER/findings_<name>/)", "train-finding-reader"
)
CARPAL_STAGE_KIND = StageKind("a carpal stage", "carpals/", "train-carpal-reader")
BODY_STAGE_KIND = StageKind("a body stage", "body/", "train-body-reader")


def stage_kind(config: ReaderConfig) -> StageKind | None:
    """The stage a network with `config` is, or None for a full reader (or one of unknown
    make). Stages have no label heads: a finding stage reads findings only (no structure
    groups), a carpal stage segments and counts the carpals alone, a body stage segments the
    body's long bones and counts only lumbar vertebrae."""
    if config.heads:
        return None
    if not config.groups and not config.counted and config.findings:
        return FINDING_STAGE_KIND
    if tuple(config.groups) == ("carpals",) and not config.findings:
        return CARPAL_STAGE_KIND
    if tuple(config.counted) == ("lumbar_vertebrae",) and not config.findings:
        return BODY_STAGE_KIND
    return None


def missing_parts(
    config: ReaderConfig,
    heads: Sequence[str] = tuple(HEADS),
    groups: Sequence[str] = GROUPS,
    counted: Sequence[str] = COUNTED,
) -> dict[str, list[str]]:
    """What of `heads`, `groups` (segmented structure groups) and `counted` (groups whose
    bones are counted) a reader with `config` lacks; empty where it has them all."""
    wanted = {
        "label heads": (heads, set(config.heads)),
        "structure groups": (groups, set(config.groups)),
        "counted groups": (counted, set(config.counted)),
    }
    missing = {
        what: [name for name in dict.fromkeys(names) if name not in has]
        for what, (names, has) in wanted.items()
    }
    return {what: names for what, names in missing.items() if names}


def full_reader_problem(
    config: ReaderConfig,
    where: str,
    heads: Sequence[str] = tuple(HEADS),
    groups: Sequence[str] = GROUPS,
    counted: Sequence[str] = COUNTED,
    purpose: str = "a full reader",
) -> str | None:
    """Why a reader with `config` (found at `where`, e.g. a folder) cannot serve as a full
    reader with `heads`, `groups` and `counted`, as an error message that says what it is and
    what to do; None where it can. A stage (finding, carpal or body) belongs in a subfolder of
    a reader folder."""
    stage = stage_kind(config)
    if stage is not None:
        return (
            f"{where} holds {stage.what} (written by `radsynth {stage.command}`), not a full "
            f"reader: it has no label heads{_and_groups(config)}, and {purpose} needs a full "
            f"reader's. A stage belongs in a subfolder of a reader folder: put it at "
            f"READER/{stage.subfolder}, e.g. in a copy of the shipped reader "
            "(src/radsynth/evaluate/reader/weights/), and pass that READER folder instead. "
            "A full reader is written by `radsynth train-reader --out DIR`."
        )
    missing = missing_parts(config, heads, groups, counted)
    if missing:
        lacks = "; ".join(f"{what} {', '.join(names)}" for what, names in missing.items())
        return (
            f"the reader in {where} lacks what {purpose} reads ({lacks}): use a reader "
            "written by `radsynth train-reader --out DIR` (or the shipped one)"
        )
    return None


def check_full_reader(
    folder: Path,
    heads: Sequence[str] = tuple(HEADS),
    groups: Sequence[str] = GROUPS,
    counted: Sequence[str] = COUNTED,
    purpose: str = "a full reader",
) -> ReaderConfig:
    """The config of the reader in `folder`, checked before any weights are loaded (from
    config.json only) to be a full reader with `heads`, `groups` and `counted` that `purpose`
    reads (see `full_reader_problem`). Raises FileNotFoundError where the folder holds no
    reader, ValueError (saying what the folder is and what to do) where it is not a full one."""
    config = read_reader_config(folder)
    problem = full_reader_problem(config, str(folder), heads, groups, counted, purpose)
    if problem is not None:
        raise ValueError(problem)
    return config


def _and_groups(config: ReaderConfig) -> str:
    if not config.groups:
        return " and no structure groups"
    return f" and only the structure groups {', '.join(config.groups)}"


def load_reader_net(folder: Path) -> ReaderNet:
    """Load a reader written by `save_reader` (float32, eval mode)."""
    from safetensors.torch import load_file

    net = ReaderNet(read_reader_config(folder))
    weights_path = folder / "reader.safetensors"
    state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"reader weights in {folder} do not match its config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); retrain or fix config.json"
        )
    return net.eval()
