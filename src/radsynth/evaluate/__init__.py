"""Scoring what a model knows: metrics with known answers, feature extractors and the reader.

Submodules load on first use (`radsynth.evaluate.metrics`, `radsynth.evaluate.features`, ...),
so importing this package stays cheap and pulls in neither torch nor scikit-image.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SUBMODULES = ("features", "metrics", "reader")


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
