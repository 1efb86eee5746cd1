"""Trial: classifier-free guidance on an interval of timesteps that leaves out the noisiest.

The pipelines guide every step with t >= CUTOFF x T (`guidance_cutoff`). Guidance at the highest
noise levels is known to narrow what a model draws (Kynkaanniemi et al. 2024, "Applying guidance
in a limited interval improves sample and distribution quality in diffusion models"). This
script also skips guidance above CEILING x T, then runs any radsynth command:

    .venv/bin/python docs/trials/guidance_interval_trial.py 0.9 probe --out runs/pm/ceil09-seed0 \
        --seed 0 --threads 2

With the built-in model's 6 steps (t = 999, 832, 666, 499, 332, 166) and cutoff 0.5, a ceiling
of 0.9 guides t = 832 and 666 only. README.md ("Without guidance") gives the figures.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from radsynth.pipelines.pipeline_base import RadiologyPipeline


def main() -> None:
    ceiling = float(sys.argv.pop(1))
    guided = RadiologyPipeline.guided_model_output

    def interval(
        self: Any, latents: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, scale: float
    ) -> torch.Tensor:
        train_steps = int(self.scheduler.config.num_train_timesteps)
        if embeds.shape[0] == 2 * latents.shape[0] and float(t) > ceiling * train_steps:
            embeds = embeds[latents.shape[0] :]  # the conditional half alone
        return guided(self, latents, t, embeds, scale)

    RadiologyPipeline.guided_model_output = interval  # type: ignore[method-assign]
    from radsynth.cli.app import main as radsynth

    sys.argv = ["radsynth", *sys.argv[1:]]
    radsynth()


if __name__ == "__main__":
    main()
