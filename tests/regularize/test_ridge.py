"""Ridge: the closed form in the ``l2`` convention, ``||w(lam)||`` decreasing in lam, and
trained ``l2`` runs landing on the closed form."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab.data.splits import Split, Splits
from optimlab.errors import OptimlabError
from optimlab.problems.problem import Problem
from optimlab.regularize import options, ridge_solution
from optimlab.train import Trainer

GRID = [0.0, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]


def data(n: int = 64, d: int = 6, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, k, generator=g, dtype=torch.float64)
    y = x @ w + 2.0 + 0.3 * torch.randn(n, k, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("k", [1, 3])
def test_closed_form_zeroes_the_gradient_of_the_penalized_mse(k):
    x, y = data(k=k)
    lam = 0.2
    w, b = ridge_solution(x, y, lam)
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    # the objective as the trainer sees it: torch's MSE mean plus the l2 penalty
    objective = nn.functional.mse_loss(x @ w + b, y) + lam * w.pow(2).sum()
    gw, gb = torch.autograd.grad(objective, (w, b))
    assert gw.abs().max() < 1e-12 and gb.abs().max() < 1e-12


def test_without_intercept_and_lam_zero_is_least_squares():
    x, y = data()
    w, b = ridge_solution(x, y[:, 0], 0.0, intercept=False)
    torch.testing.assert_close(w, torch.linalg.lstsq(x, y[:, 0]).solution)
    assert b.item() == 0.0


def test_norm_decreases_strictly_along_the_grid():
    x, y = data()
    norms = [torch.linalg.vector_norm(ridge_solution(x, y, lam)[0]).item() for lam in GRID]
    assert all(a > b for a, b in zip(norms, norms[1:], strict=False)), norms
    assert norms[-1] < 0.1 * norms[0]


def trained(lam: float, x: torch.Tensor, y: torch.Tensor) -> nn.Linear:
    torch.manual_seed(0)
    model = nn.Linear(x.shape[1], 1).double()
    split = Split(x, y)
    splits = Splits("ridge", split, split, split, "regression", (x.shape[1],))
    problem = Problem(name="ridge", model=model, loss_fn=nn.functional.mse_loss, metrics={},
                      splits=splits, batch_size=len(x), epochs=1, task="regression")  # fmt: skip
    # full-batch gradient descent with lr = 1/L, L the largest curvature of the objective
    ones = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    curvature = 2 * torch.linalg.eigvalsh(ones.T @ ones / len(x)).max().item() + 2 * lam
    opt = torch.optim.SGD(model.parameters(), lr=1.0 / curvature)
    new, kwargs = options.apply({"l2": lam}, problem, {"seed": 0})
    Trainer(new, opt, steps=120, **kwargs).run()
    return model


def test_trained_l2_runs_agree_with_the_closed_form_and_shrink():
    x, y = data()
    norms = []
    for lam in (0.0, 0.03, 0.3, 3.0):
        model = trained(lam, x, y)
        w, b = ridge_solution(x, y, lam)
        torch.testing.assert_close(model.weight.detach(), w.T, rtol=0, atol=1e-9)
        torch.testing.assert_close(model.bias.detach(), b, rtol=0, atol=1e-9)
        norms.append(torch.linalg.vector_norm(model.weight.detach()).item())
    assert all(a > b for a, b in zip(norms, norms[1:], strict=False)), norms


def test_bad_shapes_are_named():
    with pytest.raises(OptimlabError, match=r"x of shape \(n, d\)"):
        ridge_solution(torch.ones(3), torch.ones(3), 0.1)
    with pytest.raises(OptimlabError, match="l2"):
        ridge_solution(torch.ones(3, 2), torch.ones(3), -1.0)
