"""The closed forms against torch's own schedulers, step by step over 1,000 steps.

The reference is the value torch writes into ``param_groups[0]`` before each
``optimizer.step()`` (what the update at that step uses), with ``scheduler.step()``
called after it, as torch documents. Tolerance: 1e-12 relative, no absolute slack.

CosineAnnealingLR is recursive in torch (each value is the previous one times a ratio
of cosines), so rounding accumulates; over these 1,000 float64 steps it stays within
1e-12 relative of the closed form (measured ~1e-14). We also compare with torch's
``_get_closed_form_lr`` (the same formula, evaluated directly), which must agree
exactly up to 1e-15.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim import SGD, Adam
from torch.optim import lr_scheduler as tls

from optimlab.schedules import (
    CosineDecay,
    Cyclic,
    ExponentialDecay,
    Linear,
    MultiStepDecay,
    OneCycle,
    PolynomialDecay,
    Schedule,
    StepDecay,
    WarmRestarts,
)

N = 1000
LR = 0.1
RTOL = 1e-12


def torch_values(make, n=N, opt_cls=SGD, **opt_kw):
    """(lrs, momenta) used by the first ``n`` updates under torch scheduler ``make(opt)``."""
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = opt_cls([p], lr=LR, **opt_kw)
    sched = make(opt)
    lrs, moms = [], []
    for _ in range(n):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        moms.append(group["betas"][0] if "betas" in group else group.get("momentum"))
        opt.step()  # no gradient: nothing moves, but the scheduler sees a real step
        sched.step()
    return np.array(lrs), np.array(moms, dtype=float)


def assert_rel(ours, ref, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=rtol, atol=0)


@pytest.mark.parametrize(
    ("ours", "make"),
    [
        (
            StepDecay(lr=LR, step_size=30, gamma=0.5),
            lambda o: tls.StepLR(o, step_size=30, gamma=0.5),
        ),
        (
            StepDecay(lr=LR, step_size=7, gamma=0.97),
            lambda o: tls.StepLR(o, step_size=7, gamma=0.97),
        ),
        (
            MultiStepDecay(lr=LR, milestones=(100, 250, 600), gamma=0.3),
            lambda o: tls.MultiStepLR(o, milestones=[100, 250, 600], gamma=0.3),
        ),
        (ExponentialDecay(lr=LR, gamma=0.995), lambda o: tls.ExponentialLR(o, gamma=0.995)),
        (
            PolynomialDecay(lr=LR, total_iters=700, power=2.0),
            lambda o: tls.PolynomialLR(o, total_iters=700, power=2.0),
        ),
        (
            PolynomialDecay(lr=LR, total_iters=1500, power=0.9),
            lambda o: tls.PolynomialLR(o, total_iters=1500, power=0.9),
        ),
        (
            Linear(lr=LR, start_factor=0.1, end_factor=1.0, total_iters=400),
            lambda o: tls.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=400),
        ),
        (
            Linear(lr=LR, start_factor=1.0, end_factor=0.05, total_iters=800),
            lambda o: tls.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=800),
        ),
        (
            CosineDecay(lr=LR, T_max=N, eta_min=1e-3),
            lambda o: tls.CosineAnnealingLR(o, T_max=N, eta_min=1e-3),
        ),
        (
            CosineDecay(lr=LR, T_max=300, eta_min=1e-4, periodic=True),
            lambda o: tls.CosineAnnealingLR(o, T_max=300, eta_min=1e-4),
        ),
        (
            WarmRestarts(lr=LR, T_0=50, T_mult=1, eta_min=1e-3),
            lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=50, T_mult=1, eta_min=1e-3),
        ),
        (
            WarmRestarts(lr=LR, T_0=10, T_mult=2, eta_min=0.0),
            lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2),
        ),
        (
            WarmRestarts(lr=LR, T_0=3, T_mult=3, eta_min=1e-5),
            lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=3, eta_min=1e-5),
        ),
    ],
    ids=lambda x: repr(x) if isinstance(x, Schedule) else "",
)
def test_matches_torch_scheduler(ours, make):
    ref, _ = torch_values(make)
    assert_rel(ours.values(N), ref)


@pytest.mark.parametrize(("T_max", "eta_min"), [(300, 0.0), (N, 0.0), (137, 2e-3)])
def test_cosine_matches_torch_closed_form_exactly(T_max, eta_min):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = SGD([p], lr=LR)
    sched = tls.CosineAnnealingLR(opt, T_max=T_max, eta_min=eta_min)
    closed = []
    for _ in range(N):
        closed.append(sched._get_closed_form_lr()[0])
        opt.step()
        sched.step()
    ours = CosineDecay(lr=LR, T_max=T_max, eta_min=eta_min, periodic=True).values(N)
    np.testing.assert_allclose(ours, closed, rtol=1e-15, atol=0)


def test_cosine_holds_at_eta_min_after_T_max_unless_periodic():
    s = CosineDecay(lr=LR, T_max=100, eta_min=1e-3)
    assert all(s(t) == 1e-3 for t in range(100, 400, 7))
    assert CosineDecay(lr=LR, T_max=100, eta_min=1e-3, periodic=True)(200) == pytest.approx(LR)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
@pytest.mark.parametrize(("up", "down"), [(70, None), (70, 130), (200, 25)])
def test_cyclic_lr_and_momentum_match_torch(mode, up, down):
    kw = dict(step_size_up=up, step_size_down=down, mode=mode, gamma=0.998)
    ref_lr, ref_m = torch_values(
        lambda o: tls.CyclicLR(
            o, base_lr=0.01, max_lr=0.2, base_momentum=0.8, max_momentum=0.95, **kw
        ),
        momentum=0.9,
    )
    ours = Cyclic(base_lr=0.01, max_lr=0.2, **kw)
    assert_rel(ours.values(N), ref_lr)
    assert_rel(ours.momentum(base_momentum=0.8, max_momentum=0.95).values(N), ref_m)


@pytest.mark.parametrize("anneal_strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("pct_start", [0.3, 0.25])
def test_one_cycle_lr_and_momentum_match_torch(anneal_strategy, three_phase, pct_start):
    kw = dict(
        total_steps=N,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        three_phase=three_phase,
    )
    oc_kw = dict(div_factor=20.0, final_div_factor=500.0, **kw)
    ref_lr, ref_m = torch_values(
        lambda o: tls.OneCycleLR(o, max_lr=0.3, base_momentum=0.8, max_momentum=0.93, **oc_kw),
        momentum=0.9,
    )
    ours = OneCycle(max_lr=0.3, **oc_kw)
    assert_rel(ours.values(N), ref_lr)
    assert_rel(ours.momentum(base_momentum=0.8, max_momentum=0.93).values(N), ref_m)


def test_one_cycle_momentum_matches_torch_adam_beta1():
    ref_lr, ref_b1 = torch_values(
        lambda o: tls.OneCycleLR(o, max_lr=0.01, total_steps=N), opt_cls=Adam
    )
    ours = OneCycle(max_lr=0.01, total_steps=N)
    assert_rel(ours.values(N), ref_lr)
    assert_rel(ours.momentum().values(N), ref_b1)


def test_one_cycle_holds_final_value_past_total_steps():
    s = OneCycle(max_lr=0.3, total_steps=100)
    assert s(99) == pytest.approx(0.3 / 25 / 1e4, rel=1e-12)
    assert s(150) == s(99)
