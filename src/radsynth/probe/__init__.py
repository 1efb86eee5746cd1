"""The reference study's protocol, run on any radsynth model: its figures, scored.

- `figures`: Figure 1's prompts, seeded generation and labelled grids;
- `protocol`: `run_probe` runs Figures 1 to 4, pathology, bias and memorization;
- `targets`: issue 5's targets and the bookkeeping of met / not met;
- `scoring`: inpainting, outpainting and full-body proportions against phantom truth;
- `report`: scores.json, figure PNGs and report.html.
"""

from __future__ import annotations

from radsynth.probe.figures import (
    FigureRow,
    figure1_prompts,
    generate_rows,
    labelled_grid,
    write_figure,
)
from radsynth.probe.protocol import ProbeConfig, ProbeResult, run_probe
from radsynth.probe.targets import TARGET_SPECS, Target

__all__ = [
    "TARGET_SPECS",
    "FigureRow",
    "ProbeConfig",
    "ProbeResult",
    "Target",
    "figure1_prompts",
    "generate_rows",
    "labelled_grid",
    "run_probe",
    "write_figure",
]
