"""Shared helpers for the optimizer tests: a small multi-tensor model and a
deterministic gradient stream that both optimizers under comparison receive."""

from __future__ import annotations

import torch


def make_params(seed: int = 0, dtype=torch.float64) -> list[torch.Tensor]:
    """Several tensors: a matrix, a vector, a zero-size tensor and a scalar."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(5, 4), (4,), (0, 3), (), (3, 2)]
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]


def param_groups(params: list[torch.Tensor]) -> list[dict]:
    """Two groups with different learning rates; params[4]'s grad stays None."""
    return [{"params": params[:2]}, {"params": params[2:], "lr_scale": 0.5}]


def feed_gradients(params: list[torch.Tensor], step: int, seed: int = 1) -> None:
    """A gradient that depends on the parameters (so errors compound) plus noise."""
    gen = torch.Generator().manual_seed(seed * 100_003 + step)
    for i, p in enumerate(params):
        if i == 4:  # this parameter never gets a gradient
            p.grad = None
            continue
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        p.grad = 0.3 * p.detach() + noise
