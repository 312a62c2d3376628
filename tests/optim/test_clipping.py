"""Clipping: exact values on hand-made gradients, and agreement with torch.nn.utils."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo


def one_step(grads: list[list[float]], **options) -> list[torch.Tensor]:
    """Apply one SGD step with lr=1 from zero: the parameters become -clipped(g)."""
    params = [torch.zeros(len(g), dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=torch.float64)
    oo.SGD(params, lr=1.0, **options).step()
    return [-p.detach() for p in params]


def test_clip_by_norm_exact():
    (clipped,) = one_step([[0.9, 100.0]], clip_norm=1.0)
    expected = torch.tensor([0.9, 100.0], dtype=torch.float64) / (0.9**2 + 100.0**2) ** 0.5
    torch.testing.assert_close(clipped, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(
        clipped, torch.tensor([0.00899964, 0.9999595], dtype=torch.float64), rtol=0, atol=5e-8
    )


def test_clip_by_norm_leaves_small_gradients():
    (clipped,) = one_step([[0.3, -0.4]], clip_norm=1.0)
    torch.testing.assert_close(clipped, torch.tensor([0.3, -0.4], dtype=torch.float64))


def test_clip_by_value_exact():
    (clipped,) = one_step([[0.9, 100.0, -3.0, -0.2]], clip_value=0.5)
    assert clipped.tolist() == [0.5, 0.5, -0.5, -0.2]


def test_clip_by_norm_is_per_tensor():
    a, b = one_step([[3.0, 4.0], [0.0, 0.5]], clip_norm=1.0)
    torch.testing.assert_close(a, torch.tensor([0.6, 0.8], dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([0.0, 0.5], dtype=torch.float64))


def test_clip_by_global_norm_exact():
    a, b = one_step([[3.0, 4.0], [0.0, 12.0]], clip_global_norm=1.0)  # joint norm 13
    torch.testing.assert_close(a, torch.tensor([3.0, 4.0], dtype=torch.float64) / 13)
    torch.testing.assert_close(b, torch.tensor([0.0, 12.0], dtype=torch.float64) / 13)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "nadam", "momentum"])
def test_global_norm_matches_clipping_by_hand(name):
    """Every optimizer takes clip_global_norm: the same as clipping the gradients by
    hand, g * c / max(c, ||g||), then stepping the unclipped optimizer. (torch's
    clip_grad_norm_ divides by ||g|| + 1e-6, which differs by ~1e-8 relative.)"""
    gen = torch.Generator().manual_seed(0)
    ours_p = [torch.randn(4, 3, generator=gen, dtype=torch.float64).requires_grad_() for _ in "ab"]
    ref_p = [p.detach().clone().requires_grad_() for p in ours_p]
    ours = oo.create(name, ours_p, clip_global_norm=0.5)
    ref = oo.create(name, ref_p)
    for _ in range(10):
        grads = [torch.randn(4, 3, generator=gen, dtype=torch.float64) * 3 for _ in "ab"]
        for p, q, g in zip(ours_p, ref_p, grads):
            p.grad, q.grad = g.clone(), g.clone()
        total = sum(float((g * g).sum()) for g in grads) ** 0.5
        for q in ref_p:
            q.grad *= 0.5 / max(0.5, total)
        ours.step()
        ref.step()
    for p, q in zip(ours_p, ref_p):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
