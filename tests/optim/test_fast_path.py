"""The fast path runs the same transforms compiled: it must give the eager path's
results (1e-6 relative, float32, 100 steps) and never recompile as the learning
rate changes.

"Relative" is per tensor, in norm: ||fast - eager|| <= 1e-6 ||eager||. Fused kernels
round in another order than eager ops (and a schedule's lr is a float32 tensor
instead of a Python double), so single entries near zero can differ by a few ulps
of the tensor's scale; element-wise relative error is not meaningful there."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo

import optimlab.optim as oo

STEPS = 100


def run(name: str, fast: bool, lr=None, **hp) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen).requires_grad_() for s in [(64, 32), (32,), (7,)]]
    kwargs = dict(hp)
    if lr is not None:
        kwargs["lr"] = lr
    opt = oo.create(name, params, fast=fast, **kwargs)
    for step in range(STEPS):
        g = torch.Generator().manual_seed(1000 + step)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g) + 0.1 * p.detach()
        opt.step()
    return [p.detach() for p in params]


def assert_same(fast: list[torch.Tensor], eager: list[torch.Tensor]) -> None:
    for a, b in zip(fast, eager):
        assert torch.linalg.vector_norm(a - b) <= 1e-6 * torch.linalg.vector_norm(b)


def schedule(step: int) -> float:
    return 0.05 / (1 + 0.1 * step)


@pytest.mark.parametrize("name, hp", [("adam", {}), ("momentum", {"weight_decay": 1e-3})])
def test_fast_equals_eager(name, hp):
    assert_same(run(name, True, **hp), run(name, False, **hp))


def test_changing_learning_rate_does_not_recompile():
    torch._dynamo.reset()
    eager = run("nadam", False, lr=schedule, clip_norm=1.0)
    with torch._dynamo.config.patch(error_on_recompile=True):
        fast = run("nadam", True, lr=schedule, clip_norm=1.0)
    assert_same(fast, eager)


@pytest.mark.slow
@pytest.mark.parametrize("name", oo.available())
def test_every_optimizer_fast_equals_eager(name):
    assert_same(run(name, True), run(name, False))
