"""Byte counts of the optimizer benchmark, checked against the registry's state
slots and a count by hand."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo
from optimlab.bench.memory import inplace_probe, peak_extra_bytes, state_bytes, step_bytes


def test_step_bytes_counts_params_grad_and_state_slots():
    params = [torch.zeros(10, 3), torch.zeros(7)]
    # 37 floats: params read + written (8 B), grad read (4 B), 2 slots read + written (16 B)
    assert step_bytes(params, 2) == 37 * (8 + 4 + 16)
    assert step_bytes([torch.zeros(5, dtype=torch.float64)], 0) == 5 * 8 * 3


@pytest.mark.parametrize("name", oo.available())
def test_measured_state_matches_registry_slots(name):
    params = [torch.randn(40, 5, requires_grad=True), torch.randn(5, requires_grad=True)]
    opt = oo.create(name, params)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    numel = sum(p.numel() for p in params)
    scalars = state_bytes(opt) - oo.get(name).state_bytes_per_param * numel
    # what is left is the 0-d scalars (step, NAdam's mu_product): a few per tensor
    assert 0 < scalars <= 2 * 8 * len(params)


def test_probe_moves_three_floats_per_element_and_peak_is_cuda_only():
    add, moved = inplace_probe(1000)
    add()
    assert moved == 12 * 1000
    assert peak_extra_bytes(add, torch.device("cpu")) is None
