"""The reference study's protocol, run on any radsynth model: its figures, scored."""

from __future__ import annotations

from radsynth.probe.figures import (
    FigureRow,
    figure1_prompts,
    generate_rows,
    labelled_grid,
    write_figure,
)

__all__ = ["FigureRow", "figure1_prompts", "generate_rows", "labelled_grid", "write_figure"]
