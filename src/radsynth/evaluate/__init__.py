"""Scoring what a model knows: metrics with known answers, feature extractors and the reader.

Submodules load on first use (`radsynth.evaluate.metrics`, `radsynth.evaluate.features`,
`radsynth.evaluate.reader`, ...), so importing this package stays cheap and pulls in neither
torch nor scikit-image.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def __getattr__(name: str) -> ModuleType:
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise  # the submodule exists but one of its imports is missing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
