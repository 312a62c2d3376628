"""Lanczos' extreme eigenvalues against torch.linalg.eigvalsh of the exact Hessian."""

from __future__ import annotations

import pytest
import torch
from curvature_models import autograd_hessian, mlp_objective

import optimlab.curvature as cv
from optimlab.errors import OptimlabError


def test_extreme_eigenvalues_of_an_mlp_hessian_at_both_ends():
    obj = mlp_objective("cross_entropy", seed=2)
    exact = torch.linalg.eigvalsh(autograd_hessian(obj))
    assert exact[0] < -1e-3 < 1e-3 < exact[-1]  # indefinite: both ends are informative
    matvec, n = cv.operator(obj, "hessian")
    # run to the dimension, Lanczos is exact (up to the invariant subspace it finds)
    ends = cv.extreme_eigenvalues(matvec, n, 2, steps=n)
    torch.testing.assert_close(ends.smallest, exact[:2], rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(ends.largest, exact.flip(0)[:2], rtol=1e-8, atol=1e-10)
    # a shorter run already pins the extreme ones, and does fewer products
    calls = []
    short = cv.extreme_eigenvalues(lambda v: calls.append(1) or matvec(v), n, 1, steps=22)
    assert len(calls) <= 22
    assert float(short.largest[0]) == pytest.approx(float(exact[-1]), rel=1e-6)
    assert float(short.smallest[0]) == pytest.approx(float(exact[0]), rel=1e-6)


def test_invariant_subspace_gives_exact_eigenvalues_early():
    # A has 3 distinct eigenvalues: the Krylov space of any start has dimension <= 3
    gen = torch.Generator().manual_seed(8)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=gen, dtype=torch.float64))
    values = torch.tensor([1.0] * 4 + [5.0] * 3 + [-2.0] * 3, dtype=torch.float64)
    a = q @ torch.diag(values) @ q.T
    ritz = cv.lanczos(lambda v: a @ v, 10, 10)
    torch.testing.assert_close(ritz, torch.tensor([-2.0, 1.0, 5.0], dtype=torch.float64))
    with pytest.raises(OptimlabError, match="invariant subspace of size 3"):
        cv.extreme_eigenvalues(lambda v: a @ v, 10, 4, steps=10)


def test_bad_input():
    with pytest.raises(OptimlabError, match=r"invalid k: 0; valid range is \[1, 5\]"):
        cv.extreme_eigenvalues(lambda v: v, 5, 0)
    with pytest.raises(OptimlabError, match="invalid steps"):
        cv.lanczos(lambda v: v, 5, 0)
    with pytest.raises(OptimlabError, match="samples"):
        cv.hutchinson_trace(lambda v: v, 5, 1)
