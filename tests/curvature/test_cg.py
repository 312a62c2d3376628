"""Linear conjugate gradients: exact facts on SPD systems."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.curvature import conjugate_gradient
from optimlab.errors import OptimlabError


def spd(n: int, kappa: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    values = torch.logspace(0, math.log10(kappa), n, dtype=torch.float64)
    return q @ torch.diag(values) @ q.T


def test_solves_an_n20_spd_system_within_n_iterations():
    """Finite termination: the rate bound alone, 2 ((sqrt(10) - 1) / (sqrt(10) + 1))^20
    = 4e-6, would not bring the residual anywhere near 1e-10 in 20 iterations."""
    n = 20
    a = spd(n, kappa=10)
    b = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    calls = []
    result = conjugate_gradient(lambda v: calls.append(1) or a @ v, b, rtol=0, atol=1e-10)
    assert result.converged and result.iterations <= n
    assert len(calls) == result.products == result.iterations
    residual = float((b - a @ result.x).norm())  # recomputed, not the recurrence's
    assert residual < 1e-10
    torch.testing.assert_close(result.x, torch.linalg.solve(a, b), rtol=1e-9, atol=0)


def test_few_distinct_eigenvalues_take_that_many_iterations():
    """The Krylov space of a matrix with 3 distinct eigenvalues has dimension 3."""
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=gen, dtype=torch.float64))
    values = torch.tensor([1.0] * 10 + [4.0] * 10 + [9.0] * 10, dtype=torch.float64)
    a = q @ torch.diag(values) @ q.T
    b = torch.randn(30, generator=gen, dtype=torch.float64)
    result = conjugate_gradient(lambda v: a @ v, b, rtol=1e-12)
    assert result.converged and result.iterations == 3


def test_error_bound_and_preconditioner_and_start():
    n = 50
    a = spd(n, kappa=1e4, seed=2)
    b = torch.randn(n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    exact = torch.linalg.solve(a, b)

    def a_norm(e):
        return float(torch.sqrt(e @ a @ e))

    rate = (math.sqrt(1e4) - 1) / (math.sqrt(1e4) + 1)
    for k in (5, 10, 20):
        x = conjugate_gradient(lambda v: a @ v, b, max_iter=k, rtol=1e-30, atol=1e-300).x
        assert a_norm(x - exact) <= 2 * rate**k * a_norm(exact) * (1 + 1e-9)
    # the exact inverse as preconditioner solves in one iteration
    inv = torch.linalg.inv(a)
    result = conjugate_gradient(lambda v: a @ v, b, preconditioner=lambda v: inv @ v)
    assert result.converged and result.iterations == 1
    # starting at the solution costs the residual's product only
    result = conjugate_gradient(lambda v: a @ v, b, x0=exact, rtol=1e-6)
    assert result.converged and result.iterations == 0 and result.products == 1


def test_negative_curvature_stops_with_the_direction():
    a = torch.diag(torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64))
    b = torch.ones(3, dtype=torch.float64)
    result = conjugate_gradient(lambda v: a @ v, b)
    assert result.status == "negative_curvature" and not result.converged
    assert float(result.direction @ a @ result.direction) <= 0


def test_callback_sees_every_iterate_and_its_residual_and_can_stop():
    n = 12
    a = spd(n, kappa=50, seed=5)
    b = torch.randn(n, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    seen = []

    def keep(k, x, r):
        seen.append((k, x.clone(), r.clone()))
        return False

    full = conjugate_gradient(lambda v: a @ v, b, rtol=1e-12, callback=keep)
    assert full.converged and [k for k, _, _ in seen] == list(range(1, full.iterations + 1))
    torch.testing.assert_close(seen[-1][1], full.x, rtol=0, atol=0)
    for k, x, r in seen:
        # the iterate is the one max_iter=k ends with; r is its residual b - A x
        torch.testing.assert_close(x, conjugate_gradient(lambda v: a @ v, b, max_iter=k).x)
        torch.testing.assert_close(r, b - a @ x, rtol=0, atol=1e-10)
        # phi(x) = 1/2 x.A x - b.x from x and r alone
        phi = 0.5 * x @ a @ x - b @ x
        torch.testing.assert_close(-0.5 * x @ (b + r), phi, rtol=1e-12, atol=0)
    stopped = conjugate_gradient(lambda v: a @ v, b, callback=lambda k, x, r: k == 3)
    assert stopped.status == "stopped" and stopped.iterations == 3 and not stopped.converged
    torch.testing.assert_close(stopped.x, seen[2][1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(b=torch.zeros(2, 2)), r"invalid b: expected a vector"),
        (dict(b=torch.tensor([1.0, float("nan")])), r"invalid b: it has non-finite"),
        (dict(rtol=-1.0), r"invalid rtol"),
        (dict(rtol=0.0, atol=0.0), r"both are 0"),
        (dict(max_iter=-1), r"invalid max_iter"),
        (dict(x0=torch.zeros(3)), r"invalid x0: shape \(3,\)"),
        (dict(matvec=lambda v: v[:1]), r"invalid matvec: returned shape \(1,\)"),
        (dict(matvec=lambda v: v * float("inf")), r"invalid matvec: it returned non-finite"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(matvec=lambda v: 2 * v, b=torch.ones(2))
    args.update(kwargs)
    with pytest.raises(OptimlabError, match=match):
        conjugate_gradient(args.pop("matvec"), args.pop("b"), **args)
