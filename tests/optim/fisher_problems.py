"""Small float64 models and closures for the natural-gradient and K-FAC tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def softmax_data(n: int = 40, dim: int = 5, classes: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=gen)
    return x, y


def seeded(model: nn.Module, seed: int, scale: float = 0.5) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return model


def tanh_mlp(seed: int = 0, dims=(5, 4, 3)) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:], strict=False):
        layers += [nn.Linear(a, b), nn.Tanh()]
    model = nn.Sequential(*layers[:-1]).double()
    # a parameter nothing depends on (its rows must be zero, it must not move); a
    # module's own parameters come first in named_parameters
    model.register_parameter("unused", nn.Parameter(torch.ones(3, dtype=torch.float64)))
    return seeded(model, seed)


def closure_of(opt, model: nn.Module, x: Tensor, y: Tensor, loss_fn=nn.functional.cross_entropy):
    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    return closure


def flat(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def example_gradients(model: nn.Module, x: Tensor, y: Tensor, loss_fn, params) -> list[Tensor]:
    """Each example's loss gradient by plain autograd, one example at a time."""
    rows = []
    for i in range(len(x)):
        loss = loss_fn(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                               for g, p in zip(grads, params, strict=True)]))  # fmt: skip
    return rows
