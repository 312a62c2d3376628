"""Tiny problems for the trainer's tests: a synthetic classification set and a small MLP."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


def accuracy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (output.argmax(dim=1) == target).to(output.dtype).mean()


def make_data(n: int = 240, d: int = 6, k: int = 3, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    w = torch.randn(d, k, generator=g, dtype=dtype)
    y = (x @ w + 0.5 * torch.randn(n, k, generator=g, dtype=dtype)).argmax(dim=1)
    return x, y


def make_problem(
    seed: int = 0, n: int = 240, dropout: float = 0.0, dtype=torch.float32, val: bool = True
):
    """A Problem-like object: 60% train, 20% val, 20% test; the model is seeded by ``seed``."""
    x, y = make_data(n=n, dtype=dtype)
    a, b = int(0.6 * n), int(0.8 * n)
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(x.shape[1], 16), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(16, 3))
    model = nn.Sequential(*layers).to(dtype)
    splits = SimpleNamespace(
        train=SimpleNamespace(x=x[:a], y=y[:a]),
        val=SimpleNamespace(x=x[a:b], y=y[a:b]) if val else None,
        test=SimpleNamespace(x=x[b:], y=y[b:]),
    )
    return SimpleNamespace(
        name="toy",
        model=model,
        loss_fn=nn.functional.cross_entropy,
        metrics={"accuracy": accuracy},
        splits=splits,
        batch_size=16,
        epochs=3,
    )


def without_time(history):
    """History records without wall-clock fields (the only non-deterministic ones)."""
    return [{k: v for k, v in r.items() if k != "time"} for r in history]
