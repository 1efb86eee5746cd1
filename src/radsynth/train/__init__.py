"""Training: `train(config)` in-process, `main(argv)` as a script (also under accelerate)."""

from __future__ import annotations

from radsynth.train.config import TrainConfig
from radsynth.train.loop import train
from radsynth.train.main import main

__all__ = ["TrainConfig", "main", "train"]
