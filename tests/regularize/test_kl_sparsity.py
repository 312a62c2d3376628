"""KL sparsity of sigmoid activations: the value against a plain transcription of the
sparse-autoencoder notes, its gradient by finite differences, and its effect in training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from optimlab.data.splits import Split, Splits
from optimlab.errors import OptimlabError
from optimlab.problems.problem import Problem
from optimlab.regularize import KLSparsity, kl_sparsity, options
from optimlab.train import Trainer


def transcription(a: list[list[float]], rho: float, beta: float) -> float:
    """``beta * sum_j KL(rho || rho_hat_j)``, ``rho_hat_j`` the mean of column j, in floats."""
    m, units = len(a), len(a[0])
    total = 0.0
    for j in range(units):
        rho_hat = sum(row[j] for row in a) / m
        total += rho * math.log(rho / rho_hat) + (1 - rho) * math.log((1 - rho) / (1 - rho_hat))
    return beta * total


def test_value_against_the_transcription():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(7, 5, generator=g, dtype=torch.float64) * 0.9 + 0.05
    got = 0.3 * kl_sparsity(a, 0.1)
    assert got.item() == pytest.approx(transcription(a.tolist(), 0.1, 0.3), rel=1e-13)
    # zero exactly where every unit's mean activation is the target
    assert kl_sparsity(torch.full((4, 3), 0.2, dtype=torch.float64), 0.2).item() == 0.0


def test_gradient_by_finite_differences_through_the_hook():
    sigmoid = nn.Sigmoid()
    penalty = KLSparsity([sigmoid], beta=0.7, target=0.05)

    def through_hook(z: torch.Tensor) -> torch.Tensor:
        sigmoid(z)
        return penalty()

    z = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.autograd.gradcheck(through_hook, (z.requires_grad_(),))
    a = torch.rand(5, 3, dtype=torch.float64) * 0.8 + 0.1
    assert torch.autograd.gradcheck(lambda t: kl_sparsity(t, 0.3), (a.requires_grad_(),))
    # the notes' derivative in rho_hat: beta * (-rho / rho_hat + (1 - rho) / (1 - rho_hat))
    a = a.detach().requires_grad_()
    (g,) = torch.autograd.grad(kl_sparsity(a, 0.3), a)
    rho_hat = a.detach().mean(0)
    torch.testing.assert_close(g, ((-0.3 / rho_hat + 0.7 / (1 - rho_hat)) / 5).expand(5, 3))


def sigmoid_problem(activation: type[nn.Module] = nn.Sigmoid) -> Problem:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(64, 8, generator=g, dtype=torch.float64)
    y = x[:, :2].sum(dim=1, keepdim=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), activation(), nn.Linear(16, 1)).double()
    split = Split(x, y)
    splits = Splits("toy", split, split, split, "regression", (8,))
    return Problem(name="toy", model=model, loss_fn=nn.functional.mse_loss, metrics={},
                   splits=splits, batch_size=16, epochs=1, task="regression")  # fmt: skip


def mean_activation(problem: Problem) -> float:
    model = problem.model
    return model[1](model[0](problem.splits.train.x)).mean().item()


def test_training_pulls_the_mean_activation_toward_the_target():
    rho = 0.05
    runs = {}
    for name, regularize in (("plain", {}), ("kl", {"kl_sparsity": 3.0, "kl_target": rho})):
        problem = sigmoid_problem()
        start = mean_activation(problem)
        opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
        new, kwargs = options.apply(regularize, problem, {"seed": 0})
        Trainer(new, opt, steps=60, **kwargs).run()
        runs[name] = mean_activation(new)
    assert start > 0.4  # sigmoid units start near 1/2
    # measured: 0.51 at the start, 0.51 without the penalty, 0.10 with it (beta 3, the
    # notes' value)
    assert abs(runs["kl"] - rho) < 0.25 * abs(start - rho)
    assert abs(runs["kl"] - rho) < 0.25 * abs(runs["plain"] - rho)


def test_models_without_sigmoid_units_are_refused():
    with pytest.raises(OptimlabError, match="kl_sparsity needs a model with sigmoid units"):
        options.apply({"kl_sparsity": 0.1}, sigmoid_problem(nn.ReLU), {})
