"""Byte counts of the optimizer benchmark, checked against the registry's state
slots and a count by hand."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo
from optimlab.bench.memory import inplace_probe, peak_extra_bytes, state_bytes, step_bytes

# Optimizers built from parameters alone (path_sgd also reads the model's layers).
PARAMETERS_ONLY = [
    n
    for n in oo.available(needs_closure=False)
    if not getattr(oo.get(n).builder, "needs_model", False)
]


# The optimizers that keep matrices per dimension, with the least order they do it for.
PER_DIMENSION = {"shampoo": 1, "soap": 2}


def test_step_bytes_counts_params_grad_and_state_slots():
    params = [torch.zeros(10, 3), torch.zeros(7)]
    # 37 floats: params read + written (8 B), grad read (4 B), 2 slots read + written (16 B)
    assert step_bytes(params, 2) == 37 * (8 + 4 + 16)
    assert step_bytes([torch.zeros(5, dtype=torch.float64)], 0) == 5 * 8 * 3


@pytest.mark.parametrize("name", PARAMETERS_ONLY)
def test_measured_state_matches_registry_slots(name):
    params = [torch.randn(40, 5, requires_grad=True), torch.randn(5, requires_grad=True)]
    opt = oo.create(name, params)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    numel = sum(p.numel() for p in params)
    record = oo.get(name)
    scalars = state_bytes(opt) - record.state_bytes_per_param * numel
    if name in PER_DIMENSION:
        # the slots plus an n x n statistic and an n x n root (Shampoo) or basis (SOAP)
        # for each preconditioned dimension n (SOAP leaves vectors unrotated by default)
        matrices = sum(
            2 * 4 * n * n for p in params if p.dim() >= PER_DIMENSION[name] for n in p.shape
        )
        scalars -= matrices
        assert 0 < scalars <= 3 * 8 * len(params)
        return
    if record.state_note:
        # the slots are the most per parameter (Adafactor's vectors, Muon's AdamW
        # parameters); a matrix keeps less (factored moments, one momentum buffer)
        assert state_bytes(opt) <= record.state_bytes_per_param * numel + 3 * 8 * len(params)
        return
    # what is left is the 0-d scalars (step, NAdam's mu_product, schedule-free's lr_max
    # and weight_sum): a few per tensor
    assert 0 < scalars <= 3 * 8 * len(params)


def test_probe_moves_three_floats_per_element():
    add, moved = inplace_probe(1000)
    add()
    assert moved == 12 * 1000


def test_cpu_peak_extra_memory_counts_temporaries_alive_at_once():
    a = torch.randn(1000)  # 4000 B

    def two_live_temporaries() -> None:
        b = a * 2
        c = b + 1  # b and c alive together: 8000 B
        del b
        d = c * 3  # b freed first: c and d, 8000 B again
        del c, d

    peak = peak_extra_bytes(two_live_temporaries, torch.device("cpu"))
    if peak is None:
        pytest.skip("this torch's profiler keeps no allocation record")
    assert 8000 <= peak < 9000  # plus a few bytes of scalar temporaries
    assert peak_extra_bytes(lambda: a.add_(1.0), torch.device("cpu")) < 64


def test_fast_path_allocates_less_than_torch_foreach_on_cpu():
    """torch's foreach Adam makes whole temporaries (here 4 x 256 KB); the compiled
    step makes none of parameter size."""
    peaks = {}
    for name, make in {
        "foreach": lambda ps: torch.optim.Adam(ps, foreach=True),
        "fast": lambda ps: oo.Adam(ps, fast=True),
    }.items():
        params = [torch.randn(256, 256, requires_grad=True) for _ in range(4)]
        for p in params:
            p.grad = torch.ones_like(p)
        opt = make(params)
        opt.step()
        opt.step()
        peaks[name] = peak_extra_bytes(opt.step, torch.device("cpu"))
        if peaks[name] is None:
            pytest.skip("this torch's profiler keeps no allocation record")
    assert peaks["fast"] < 1024
    assert peaks["foreach"] >= 4 * 256 * 256 * 4


def test_measuring_on_the_cpu_writes_nothing_to_stderr():
    """The profiler's native start/stop lines stay off the terminal."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from optimlab.bench.memory import peak_extra_bytes\n"
        "x = torch.ones(1000)\n"
        "print(peak_extra_bytes(lambda: x.mul(2), torch.device('cpu')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert int(done.stdout) >= 4000  # the 1000-float result was allocated
