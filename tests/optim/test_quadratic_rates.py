"""Exact facts about gradient descent and heavy-ball momentum on a quadratic
f(w) = 1/2 w'Aw with eigenvalues in [l1, ln], kappa = ln/l1 = 100 (Goh 2017,
"Why Momentum Really Works"). The minimum is w* = 0, so the error is w itself
and no cancellation hides tiny errors."""

from __future__ import annotations

import math

import torch

import optimlab.optim as oo

L1, LN = 1.0, 100.0
KAPPA = LN / L1
EIGS = torch.tensor([L1, 3.0, 10.0, 30.0, 70.0, LN], dtype=torch.float64)


def error_norms(opt_fn, steps: int) -> list[float]:
    w = torch.ones(len(EIGS), dtype=torch.float64, requires_grad=True)
    opt = opt_fn([w])
    norms = [w.norm().item()]
    for _ in range(steps):
        w.grad = EIGS * w.detach()  # gradient of 1/2 sum(l_i w_i^2)
        opt.step()
        norms.append(w.norm().item())
    return norms


def rate(norms: list[float], start: int, end: int) -> float:
    """Per-step contraction measured between two late steps."""
    return (norms[end] / norms[start]) ** (1 / (end - start))


def test_gd_optimal_rate():
    lr = 2 / (L1 + LN)
    measured = rate(error_norms(lambda p: oo.SGD(p, lr=lr), 400), 200, 400)
    expected = (KAPPA - 1) / (KAPPA + 1)
    assert abs(expected - 0.980) < 5e-4
    assert abs(measured / expected - 1) < 0.02


def test_momentum_optimal_rate():
    lr = (2 / (math.sqrt(L1) + math.sqrt(LN))) ** 2
    beta = ((math.sqrt(LN) - math.sqrt(L1)) / (math.sqrt(LN) + math.sqrt(L1))) ** 2
    assert abs(beta - 0.669) < 5e-4
    norms = error_norms(lambda p: oo.SGD(p, lr=lr, momentum=beta), 600)
    measured = rate(norms, 300, 600)
    expected = (math.sqrt(KAPPA) - 1) / (math.sqrt(KAPPA) + 1)
    assert abs(expected - 0.818) < 5e-4
    assert abs(measured / expected - 1) < 0.02
    # and momentum beats the best plain GD by far
    assert measured < (KAPPA - 1) / (KAPPA + 1) - 0.1


def test_gd_diverges_just_beyond_2_over_lmax():
    below = error_norms(lambda p: oo.SGD(p, lr=0.99 * 2 / LN), 2000)
    above = error_norms(lambda p: oo.SGD(p, lr=1.01 * 2 / LN), 2000)
    assert below[-1] < below[0]
    assert above[-1] > 1e3 * above[0]


def test_momentum_diverges_just_beyond_its_threshold():
    """Heavy ball converges iff 0 < lr * l_i < 2 + 2 beta."""
    beta = 0.5
    limit = (2 + 2 * beta) / LN
    below = error_norms(lambda p: oo.SGD(p, lr=0.99 * limit, momentum=beta), 3000)
    above = error_norms(lambda p: oo.SGD(p, lr=1.01 * limit, momentum=beta), 3000)
    assert below[-1] < below[0]
    assert above[-1] > 1e3 * above[0]
