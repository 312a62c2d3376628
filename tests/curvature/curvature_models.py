"""Small float64 models for the curvature tests, with a parameter the loss never uses."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call

from optimlab.curvature import ModelObjective


class WithUnused(nn.Module):
    """``net(x)``, plus a parameter that no output depends on (its rows must be zero)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.unused = nn.Parameter(torch.ones(3, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def seeded(model: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return model


def mlp_objective(loss: str = "cross_entropy", seed: int = 0, n: int = 12) -> ModelObjective:
    """A 3-4-2 tanh MLP (26 parameters) plus an unused parameter (3), on ``n`` examples."""
    gen = torch.Generator().manual_seed(seed + 100)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    model = seeded(WithUnused(net), seed)
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    if loss == "cross_entropy":
        y = torch.randint(0, 2, (n,), generator=gen)
        fn = nn.functional.cross_entropy
    else:
        y = torch.randn(n, 2, generator=gen, dtype=torch.float64)
        fn = nn.functional.mse_loss
    return ModelObjective(model, fn, x, y)


def linear_objective(loss: str, seed: int = 0, n: int = 20, classes: int = 3) -> ModelObjective:
    """Softmax, logistic or least-squares regression: a linear model."""
    from optimlab.problems import get_loss

    gen = torch.Generator().manual_seed(seed + 200)
    out = 1 if loss == "logistic" else classes
    model = seeded(nn.Linear(4, out).double(), seed)
    x = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    if loss == "cross_entropy":
        y = torch.randint(0, classes, (n,), generator=gen)
    elif loss == "logistic":
        y = torch.randint(0, 2, (n,), generator=gen)
    else:
        y = torch.randn(n, out, generator=gen, dtype=torch.float64)
    return ModelObjective(model, get_loss(loss), x, y)


def autograd_hessian(objective: ModelObjective) -> Tensor:
    """The Hessian by torch.autograd.functional.hessian of the loss of a flat vector."""
    names = list(objective.params())
    shapes = [p.shape for p in objective.params().values()]
    flat = torch.cat([p.reshape(-1) for p in objective.params().values()])

    def of_flat(w: Tensor) -> Tensor:
        parts, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            k = math.prod(shape)
            parts[name] = w[i : i + k].view(shape)
            i += k
        return objective.loss_fn(functional_call(objective.model, parts, (objective.x,)),
                                 objective.y)  # fmt: skip

    return torch.autograd.functional.hessian(of_flat, flat)
