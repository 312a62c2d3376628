"""Fixtures for the trainer's tests."""

from __future__ import annotations

import pytest
from train_toys import make_problem


@pytest.fixture
def problem():
    return make_problem()
