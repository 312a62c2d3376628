"""Lessard, Recht & Packard's counterexample: heavy-ball momentum with the parameters
that are optimal on every quadratic of the same conditioning settles on a limit cycle,
Nesterov's method converges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optimlab.optim as oo
from optimlab.problems import FUNCTIONS_1D

FN = FUNCTIONS_1D.get("lessard")


def run(opt_factory, f, x0: float, steps: int) -> np.ndarray:
    w = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
    opt = opt_factory([w])
    path = [x0]
    for _ in range(steps):
        opt.zero_grad()
        f(w).sum().backward()
        opt.step()
        path.append(w.item())
    return np.array(path)


def test_the_function_is_the_papers():
    x = torch.linspace(-4, 5, 9001, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(FN(x).sum(), x)
    torch.testing.assert_close(grad, FN.grad(x.detach()), rtol=1e-14, atol=1e-12)
    # continuous at the joins, minimum 0 at 0
    joins = torch.tensor([1.0, 2.0], dtype=torch.float64)
    eps = 1e-9
    torch.testing.assert_close(FN(joins - eps), FN(joins + eps), atol=1e-6, rtol=0)
    assert FN(torch.tensor(0.0)).item() == FN.min_value == FN.minimum == 0
    # mu-strongly convex and L-smooth: every difference quotient of the gradient
    g = FN.grad(x.detach())
    slopes = (g[1:] - g[:-1]) / (x[1:] - x[:-1]).detach()
    assert slopes.min() >= FN.mu - 1e-9 and slopes.max() <= FN.L + 1e-9
    assert FUNCTIONS_1D.get("heavy_ball_counterexample") is FN


def test_quadratic_optimal_heavy_ball_cycles_while_nesterov_converges():
    lr, momentum = FN.heavy_ball_parameters()
    assert (lr, momentum) == pytest.approx((1 / 9, 4 / 9), rel=1e-15)
    heavy = run(lambda ps: oo.SGD(ps, lr=lr, momentum=momentum), FN, FN.start, 600)
    tail = heavy[-60:]
    # a limit cycle of period 3, far from the minimum: not converging, not diverging
    assert np.abs(tail[3:] - tail[:-3]).max() < 1e-9
    assert np.abs(tail[1:] - tail[:-1]).min() > 1.0
    np.testing.assert_allclose(sorted(tail[-3:]), [-1.802, 0.6465, 2.1159], atol=1e-3)
    nesterov = run(lambda ps: oo.create("nag_sc", ps, lr=1 / FN.L, mu=FN.mu), FN, FN.start, 400)
    assert abs(nesterov[-1]) < 1e-10


@pytest.mark.parametrize("x0", [3.07, 3.2, 3.46])
def test_the_cycle_attracts_the_papers_starting_interval(x0):
    lr, momentum = FN.heavy_ball_parameters()
    tail = run(lambda ps: oo.SGD(ps, lr=lr, momentum=momentum), FN, x0, 600)[-6:]
    assert np.abs(tail[3:] - tail[:-3]).max() < 1e-9 and np.abs(tail).max() > 2


def test_the_same_heavy_ball_converges_on_quadratics_of_the_same_conditioning():
    """What breaks it is the function's shape, not its conditioning."""
    lr, momentum = FN.heavy_ball_parameters()
    for curvature in (FN.mu, 7.0, FN.L):
        path = run(lambda ps, c=curvature: oo.SGD(ps, lr=lr, momentum=momentum),
                   lambda w, c=curvature: 0.5 * c * w**2, FN.start, 300)  # fmt: skip
        assert abs(path[-1]) < 1e-20
