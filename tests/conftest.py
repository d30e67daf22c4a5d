"""Shared fixtures: a clean Pyro state per test and the device the suite runs on."""

from __future__ import annotations

import os
from pathlib import Path

import pyro
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The suite's tensors are tiny: handing them between threads costs more than it saves, and on
    # a busy machine two intra-op threads wait on each other (10-100x slower steps).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _clean_pyro_state():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture
def device() -> torch.device:
    """The device under test: CPU by default, ``PPDGM_TEST_DEVICE=cuda`` runs the suite on a GPU."""
    spec = os.environ.get("PPDGM_TEST_DEVICE", "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("PPDGM_TEST_DEVICE asks for CUDA but none is available")
    return torch.device(spec)
