"""The reader: a small network trained on phantoms that labels radiological images, segments
structure groups, marks countable bones and provides the feature space for metrics.

`load_reader()` loads the shipped weights (`weights/`, fp16 safetensors) offline.
"""

from __future__ import annotations

from radsynth.evaluate.reader.groups import COUNTED, FINDINGS, GROUPS, HEADS
from radsynth.evaluate.reader.inference import Reader, StructureMap, count_peaks, load_reader
from radsynth.evaluate.reader.model import ReaderConfig, ReaderNet, load_reader_net, save_reader

__all__ = [
    "COUNTED",
    "FINDINGS",
    "GROUPS",
    "HEADS",
    "Reader",
    "ReaderConfig",
    "ReaderNet",
    "StructureMap",
    "count_peaks",
    "load_reader",
    "load_reader_net",
    "save_reader",
]
