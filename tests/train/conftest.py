"""Fixtures for the trainer's tests."""

from __future__ import annotations

import pytest
import torch
from train_toys import make_problem


@pytest.fixture(autouse=True)
def _one_thread():
    # The machine is shared; one thread keeps timings steady and results reproducible.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def problem():
    return make_problem()
