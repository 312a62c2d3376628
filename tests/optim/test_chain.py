"""Custom chains (``Chain``): a transform the optimizer also applies on its own
(clipping, gradient noise) runs once, where the chain puts it; hyperparameter names
that two transforms would read with different meanings or defaults are refused."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo
from optimlab.errors import OptimlabError

STEPS = 10


def params(seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in [(4, 3), (5,)]
    ]


def gradients(step: int) -> list[torch.Tensor]:
    """Large enough (norm ~ 10) that a threshold of 1 clips every step."""
    gen = torch.Generator().manual_seed(100 + step)
    return [3 * torch.randn(s, generator=gen, dtype=torch.float64) for s in [(4, 3), (5,)]]


def global_clip(tensors: list[torch.Tensor], c: float) -> list[torch.Tensor]:
    """``x * c / max(c, ||x||)`` with the norm over every tensor together."""
    norm = sum(float((t * t).sum()) for t in tensors) ** 0.5
    return [t * (c / max(c, norm)) for t in tensors]


def test_global_clip_placed_after_momentum_clips_the_momentum_only():
    """``Trace, ClipByGlobalNorm, ScaleByLearningRate``: b <- mu b + g (g unclipped),
    w <- w - lr * clip(b). The optimizer's own clipping of g must not run as well."""
    lr, mu, c = 0.1, 0.9, 1.0
    ours = params()
    opt = oo.Chain(
        ours,
        oo.Trace(),
        oo.ClipByGlobalNorm(),
        oo.ScaleByLearningRate(),
        lr=lr,
        momentum=mu,
        clip_global_norm=c,
    )
    ref = [p.detach().clone() for p in ours]
    bufs: list[torch.Tensor] | None = None
    for step in range(STEPS):
        g = gradients(step)
        bufs = g if bufs is None else [mu * b + gi for b, gi in zip(bufs, g)]
        ref = [w - lr * u for w, u in zip(ref, global_clip(bufs, c))]
        for p, gi in zip(ours, g):
            p.grad = gi
        opt.step()
    for p, want in zip(ours, ref):
        torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-14)


def test_global_clip_named_in_the_chain_is_applied_once():
    """``ClipByGlobalNorm, ScaleByLearningRate``: clip once, then the rule, the same
    numbers as the optimizer's own ``clip_global_norm`` option."""
    lr, c = 0.1, 1.0
    named, by_option = params(), params()
    chain = oo.Chain(
        named, oo.ClipByGlobalNorm(), oo.ScaleByLearningRate(), lr=lr, clip_global_norm=c
    )
    option = oo.Chain(by_option, oo.ScaleByLearningRate(), lr=lr, clip_global_norm=c)
    ref = [p.detach().clone() for p in named]
    for step in range(STEPS):
        g = gradients(step)
        ref = [w - lr * u for w, u in zip(ref, global_clip(g, c))]
        for p, q, gi in zip(named, by_option, g):
            p.grad, q.grad = gi.clone(), gi.clone()
        chain.step()
        option.step()
    for p, q, want in zip(named, by_option, ref):
        assert torch.equal(p, q)
        torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-14)


def test_gradient_noise_named_in_the_chain_is_drawn_once():
    """``AddGradientNoise, ScaleByLearningRate``: g + sigma_t * N(0, 1) with one draw
    per tensor and step, sigma_t^2 = eta / (1 + t)^gamma (t from 0)."""
    lr, eta, gamma = 0.1, 0.5, 0.55
    ours = params()
    opt = oo.Chain(ours, oo.AddGradientNoise(), oo.ScaleByLearningRate(), lr=lr, grad_noise=eta)
    ref = [p.detach().clone() for p in ours]
    for step in range(STEPS):
        g = gradients(step)
        sigma = (eta / (1 + step) ** gamma) ** 0.5
        torch.manual_seed(step)
        ref = [w - lr * (gi + sigma * torch.randn_like(gi)) for w, gi in zip(ref, g)]
        for p, gi in zip(ours, g):
            p.grad = gi
        torch.manual_seed(step)
        opt.step()
    for p, want in zip(ours, ref):
        torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "transforms, match",
    [
        # coupled L2 and decoupled decay: one weight_decay would drive both rules
        (
            [
                oo.AddWeightDecay(),
                oo.ScaleByAdam(),
                oo.ScaleByLearningRate(),
                oo.DecoupledWeightDecay(),
            ],
            r"AddWeightDecay and DecoupledWeightDecay both read hyperparameter 'weight_decay'",
        ),
        # two denominators' epsilons, with defaults 1e-8 and 1e-10
        (
            [oo.ScaleByRMS(), oo.ScaleByAdagrad(), oo.ScaleByLearningRate()],
            r"ScaleByRMS and ScaleByAdagrad both read hyperparameter 'eps'",
        ),
    ],
)
def test_hyperparameter_read_by_two_transforms_is_refused(transforms, match):
    with pytest.raises(OptimlabError, match=match):
        oo.Chain(params(), *transforms)


def test_a_shared_hyperparameter_needs_one_default():
    class HalfStep(oo.Transform):
        """Reads the group's lr, but declares another default for it."""

        defaults = {"lr": 0.5}

        def update_one(self, u, p, state, hp):
            return u * 0.5

    with pytest.raises(
        OptimlabError,
        match=r"'lr' has the default 0\.001 in ScaleByLearningRate and 0\.5 in HalfStep",
    ):
        oo.Chain(params(), oo.ScaleByLearningRate(), HalfStep())


def test_lr_is_shared_by_the_transforms_that_read_it():
    """Decoupled weight decay reads the same lr as the step (w <- w - lr*u - lr*wd*w),
    also when lr is left at its default, and with no ScaleByLearningRate."""
    lr, wd = 1e-3, 0.1
    a, b = params(), params()
    both = oo.Chain(a, oo.ScaleByLearningRate(), oo.DecoupledWeightDecay(), weight_decay=wd)
    decay_only = oo.Chain(b, oo.DecoupledWeightDecay(), weight_decay=wd)
    g = gradients(0)
    for p, q, gi in zip(a, b, g):
        p.grad, q.grad = gi.clone(), gi.clone()
    want_a = [p.detach() - lr * gi - lr * wd * p.detach() for p, gi in zip(a, g)]
    want_b = [q.detach() + gi - lr * wd * q.detach() for q, gi in zip(b, g)]
    both.step()
    decay_only.step()
    for p, want in zip(a + b, want_a + want_b):
        torch.testing.assert_close(p.detach(), want, rtol=1e-14, atol=1e-15)
