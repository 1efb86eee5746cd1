"""Shared fixtures for the data-set builder tests: a tiny random model and small SPECs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from radsynth.models import build_components

# The real DICOM samples and the dciodvfy / dcm2pnm helpers live with the io tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32 px pixel-space model with random weights from seed 0."""
    return build_components("tiny", seed=0).save_pretrained(tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and under `pytest -n 2` on two cores extra torch
    threads oversubscribe the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
