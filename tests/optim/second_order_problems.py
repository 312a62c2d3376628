"""Deterministic float64 problems for the second-order optimizer tests."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def logistic_data(n: int = 300, dim: int = 12, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Logistic-regression data with features on scales from 0.1 to 10 (ill-conditioned,
    so that L-BFGS needs dozens of iterations) and noisy labels (a finite minimizer)."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-1, 1, dim, dtype=torch.float64)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64) * scales
    w_true = torch.randn(dim, generator=gen, dtype=torch.float64) / scales
    p = torch.sigmoid(x @ w_true)
    y = (torch.rand(n, generator=gen, dtype=torch.float64) < p).double()
    return x, y


def logistic_params(dim: int = 12) -> list[Tensor]:
    return [
        torch.zeros(dim, dtype=torch.float64, requires_grad=True),
        torch.zeros(1, dtype=torch.float64, requires_grad=True),
    ]


def logistic_closure(opt, params: list[Tensor], x: Tensor, y: Tensor):
    def closure():
        opt.zero_grad()
        scores = x @ params[0] + params[1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(scores, y)
        loss.backward()
        return loss

    return closure


def rosenbrock(x: Tensor) -> Tensor:
    """sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimizer: all ones."""
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def loss_closure(opt, params: list[Tensor], fn):
    """The closure of ``fn(*params)``."""

    def closure():
        opt.zero_grad()
        loss = fn(*params)
        loss.backward()
        return loss

    return closure


def spd_quadratic(n: int, kappa: float = 100.0, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(A, b)`` for ``f(w) = 1/2 w^T A w - b^T w`` with eigenvalues from 1 to kappa."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    values = torch.logspace(0, math.log10(kappa), n, dtype=torch.float64)
    a = q @ torch.diag(values) @ q.T
    return 0.5 * (a + a.T), torch.randn(n, generator=gen, dtype=torch.float64)


def flat(params: list[Tensor]) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def resumed_against_straight(fresh, steps: int = 20, on_load=None):
    """Run ``steps`` steps straight, then ``steps // 2``, a save and load of parameters and
    optimizer state through ``torch.save`` into a fresh setup, and the other half.
    ``fresh()`` returns ``(params, opt, closure)``; ``on_load(opt)`` sees the loaded
    optimizer before it steps. Returns the straight run's parameters
    and counts, and the resumed run's ``(params, opt)``."""
    import io

    params, opt, closure = fresh()
    for _ in range(steps):
        opt.step(closure)
    straight, straight_counts = flat(params), opt.counts

    params, opt, closure = fresh()
    for _ in range(steps // 2):
        opt.step(closure)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    params2, opt2, closure2 = fresh()
    with torch.no_grad():
        for p, q in zip(params2, saved["params"], strict=True):
            p.copy_(q)
    opt2.load_state_dict(saved["opt"])
    if on_load is not None:
        on_load(opt2)
    for _ in range(steps - steps // 2):
        opt2.step(closure2)
    return straight, straight_counts, params2, opt2
