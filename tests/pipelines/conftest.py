"""Tiny seeded components shared by the pipeline tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sd_folder import write_tiny_sd_folder

from radsynth.models import DiffusionComponents, build_components


@pytest.fixture(scope="module", params=["tiny", "tiny-latent", "tiny-patch"])
def components(request: pytest.FixtureRequest) -> DiffusionComponents:
    """Pixel-space, autoencoder and patched pixel-space models, 32 px, random weights, seed 0."""
    return build_components(request.param, seed=0)


@pytest.fixture(scope="module")
def tiny() -> DiffusionComponents:
    return build_components("tiny", seed=0)


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sd_folder(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture()
def image() -> np.ndarray:
    """A smooth 32 x 32 test image in [0, 1] with a bright disc, float32."""
    y, x = np.mgrid[0:32, 0:32].astype(np.float32)
    disc = ((y - 12) ** 2 + (x - 20) ** 2 < 36).astype(np.float32)
    return np.clip(0.2 + 0.5 * disc + 0.01 * x, 0.0, 1.0).astype(np.float32)


@pytest.fixture()
def box_mask() -> np.ndarray:
    mask = np.zeros((32, 32), dtype=np.float32)
    mask[8:20, 10:26] = 1.0
    return mask


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and under `pytest -n 2` on two cores extra torch
    threads oversubscribe the CPU and slow every test several-fold."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
