"""Eigenvalues and trace of a symmetric operator known only through ``v -> A v``.

- Lanczos with full reorthogonalization builds an m x m tridiagonal ``T = Q^T A Q``
  whose extreme eigenvalues (Ritz values) approach A's from inside, both ends at once
  (Golub & Van Loan, *Matrix Computations*, sec. 10.1); exact once m reaches the
  dimension or the Krylov space becomes invariant.
- Power iteration ``v <- A v / ||A v||`` finds the eigenvalue of largest magnitude;
  deflation ``A - sum_j l_j u_j u_j^T`` gives the next ones.
- Hutchinson's estimator ``tr(A) ~ mean_k z_k^T A z_k`` with Rademacher ``z``
  (Hutchinson 1990) is unbiased with variance ``2 (||A||_F^2 - sum_i A_ii^2)`` per probe.

The operators come from ``optimlab.curvature``: a Hessian (``hvp_operator``,
``GradientGraph``), a Gauss-Newton matrix or a Fisher (``operator``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range

MatVec = Callable[[Tensor], Tensor]


def _unit(
    size: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device | None
) -> Tensor:
    v = torch.randn(size, generator=gen, dtype=torch.float64)
    return (v / v.norm()).to(dtype=dtype, device=device)


def lanczos(
    matvec: MatVec,
    size: int,
    steps: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | None = None,
) -> Tensor:
    """The Ritz values (ascending) of ``steps`` Lanczos steps from a random start.

    The recurrence runs in float64 whatever ``dtype`` the operator takes. It stops early
    when the Krylov space becomes invariant, and then the values are exact eigenvalues.
    """
    check_range("size", size, 1)
    check_range("steps", steps, 1)
    m = min(steps, size)
    gen = torch.Generator().manual_seed(seed)
    basis = [_unit(size, gen, torch.float64, device)]
    alphas: list[Tensor] = []
    betas: list[Tensor] = []
    for j in range(m):
        w = matvec(basis[j].to(dtype)).to(torch.float64)
        alpha = torch.dot(w, basis[j])
        alphas.append(alpha)
        # Full reorthogonalization, twice ("twice is enough"): plain Lanczos loses
        # orthogonality in floating point and reports ghost copies of eigenvalues.
        q = torch.stack(basis, dim=1)
        for _ in range(2):
            w = w - q @ (q.T @ w)
        beta = w.norm()
        if j == m - 1 or beta <= 1e-10 * max(1.0, abs(float(alpha))):
            break  # an invariant subspace: T's eigenvalues are eigenvalues of A
        betas.append(beta)
        basis.append(w / beta)
    n = len(alphas)
    t = torch.diag(torch.stack(alphas))
    if n > 1:
        off = torch.stack(betas[: n - 1])
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigvalsh(t)


class Extremes(NamedTuple):
    """The ``k`` smallest eigenvalues (ascending) and the ``k`` largest (descending)."""

    smallest: Tensor
    largest: Tensor


def extreme_eigenvalues(
    matvec: MatVec,
    size: int,
    k: int = 1,
    *,
    steps: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | None = None,
) -> Extremes:
    """The ``k`` smallest and ``k`` largest eigenvalues of a symmetric operator by
    Lanczos (``steps`` defaults to ``min(size, 2k + 40)``). The ends converge first;
    the inner ones of a run too short for them are approximations from inside."""
    check_range("k", k, 1, size)
    steps = min(size, 2 * k + 40) if steps is None else steps
    check_range("steps", steps, 1)
    check_range("k", k, 1, steps)
    ritz = lanczos(matvec, size, steps, seed=seed, dtype=dtype, device=device)
    if k > len(ritz):
        raise OptimlabError(
            f"invalid k: {k}; Lanczos found an invariant subspace of size {len(ritz)}, "
            f"so it knows {len(ritz)} eigenvalues"
        )
    return Extremes(ritz[:k].to(dtype), ritz.flip(0)[:k].to(dtype))


def power_iteration(
    matvec: MatVec,
    size: int,
    k: int = 1,
    *,
    iters: int = 200,
    tol: float = 1e-7,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | None = None,
) -> Tensor:
    """The ``k`` eigenvalues of largest magnitude, by power iteration with deflation.

    Each stops when the Rayleigh quotient changes by less than ``tol`` (relative).
    Converges at the rate ``|l_{j+1} / l_j|``, so close eigenvalues need many ``iters``.
    """
    check_range("k", k, 1, size)
    check_range("iters", iters, 1)
    gen = torch.Generator().manual_seed(seed)
    values: list[Tensor] = []
    vectors: list[Tensor] = []

    def deflated(v: Tensor) -> Tensor:
        av = matvec(v)
        for lam, u in zip(values, vectors, strict=True):
            av = av - lam * torch.dot(u, v) * u
        return av

    for _ in range(k):
        v = _unit(size, gen, dtype, device)
        lam = torch.zeros((), dtype=dtype, device=device)
        for _ in range(iters):
            av = deflated(v)
            new = torch.dot(v, av)
            norm = av.norm()
            if norm == 0:
                break
            v = av / norm
            done = abs(float(new - lam)) <= tol * max(abs(float(new)), 1e-30)
            lam = new
            if done:
                break
        values.append(lam.detach())
        vectors.append(v.detach())
    return torch.stack(values)


def hutchinson_trace(
    matvec: MatVec,
    size: int,
    samples: int = 100,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | None = None,
) -> tuple[float, float]:
    """``(estimate, standard error)`` of ``tr(A)`` from ``samples`` Rademacher probes."""
    check_range("samples", samples, 2)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        z = (torch.randint(0, 2, (size,), generator=gen) * 2 - 1).to(dtype=dtype, device=device)
        values.append(float(torch.dot(z, matvec(z))))
    mean = sum(values) / samples
    var = sum((v - mean) ** 2 for v in values) / (samples - 1)
    return mean, math.sqrt(var / samples)
