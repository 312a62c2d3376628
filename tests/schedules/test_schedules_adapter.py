"""ScheduleAdapter: torch's scheduler protocol, momentum keys, and resuming from a step count."""

from __future__ import annotations

import io

import pytest
import torch
from torch.optim import SGD, Adam
from torch.optim import lr_scheduler as tls

from optimlab.errors import OptimlabError
from optimlab.schedules import (
    CosineDecay,
    OneCycle,
    ScheduleAdapter,
    StepDecay,
    WarmRestarts,
)

X = torch.linspace(-1, 1, 64, dtype=torch.float64).reshape(16, 4)
Y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64) + 0.1


def make_model():
    torch.manual_seed(0)
    return torch.nn.Linear(4, 1).double()


def train_step(model, opt):
    opt.zero_grad()
    loss = ((model(X).squeeze(1) - Y) ** 2).mean()
    loss.backward()
    opt.step()


def test_is_a_torch_scheduler_and_writes_the_schedule():
    model = make_model()
    opt = SGD(model.parameters(), lr=1.0)
    s = CosineDecay(lr=0.1, T_max=20, eta_min=1e-3)
    sched = ScheduleAdapter(opt, s)
    assert isinstance(sched, tls.LRScheduler)
    assert sched.last_epoch == 0 and opt.param_groups[0]["lr"] == s(0)
    for t in range(1, 30):
        train_step(model, opt)
        sched.step()
        assert sched.last_epoch == t
        assert opt.param_groups[0]["lr"] == s(t) == sched.get_last_lr()[0]
    sched.step(5)  # jump: closed forms allow any step
    assert opt.param_groups[0]["lr"] == s(5)


def test_same_trajectory_as_torch_one_cycle_with_momentum():
    """Adapters for LR and momentum reproduce OneCycleLR(cycle_momentum=True) exactly."""
    n = 60
    ref_model, our_model = make_model(), make_model()
    ref_opt = SGD(ref_model.parameters(), lr=0.1, momentum=0.9)
    ref = tls.OneCycleLR(ref_opt, max_lr=0.05, total_steps=n, pct_start=0.25)
    our_opt = SGD(our_model.parameters(), lr=0.1, momentum=0.9)
    oc = OneCycle(max_lr=0.05, total_steps=n, pct_start=0.25)
    lr_sched = ScheduleAdapter(our_opt, oc)
    m_sched = ScheduleAdapter(our_opt, oc.momentum(), key="momentum")
    for _ in range(n):
        train_step(ref_model, ref_opt)
        train_step(our_model, our_opt)
        ref.step()
        lr_sched.step()
        m_sched.step()
    for a, b in zip(ref_model.parameters(), our_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


def run(n, stop=None, order="scheduler_first"):
    """Train ``n`` steps; if ``stop`` is given, checkpoint there and resume in fresh objects."""
    model = make_model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    lr_s = WarmRestarts(lr=0.05, T_0=7, T_mult=2, eta_min=1e-4)
    m_s = OneCycle(max_lr=1.0, total_steps=n).momentum()
    sched = ScheduleAdapter(opt, lr_s)
    msched = ScheduleAdapter(opt, m_s, key="momentum")
    seen = []
    for t in range(n):
        if t == stop:
            buf = io.BytesIO()
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "msched": msched.state_dict(),
                },
                buf,
            )
            buf.seek(0)
            ckpt = torch.load(buf, weights_only=True)
            model = make_model()
            model.load_state_dict(ckpt["model"])
            opt = SGD(model.parameters(), lr=123.0, momentum=0.0)  # deliberately wrong values
            if order == "optimizer_first":
                opt.load_state_dict(ckpt["opt"])
            sched = ScheduleAdapter(opt, lr_s)
            msched = ScheduleAdapter(opt, m_s, key="momentum")
            sched.load_state_dict(ckpt["sched"])
            msched.load_state_dict(ckpt["msched"])
            if order == "scheduler_first":
                opt.load_state_dict(ckpt["opt"])
        g = opt.param_groups[0]
        seen.append((g["lr"], g["momentum"]))
        train_step(model, opt)
        sched.step()
        msched.step()
    return seen, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("stop", [1, 6, 37, 69])
@pytest.mark.parametrize("order", ["scheduler_first", "optimizer_first"])
def test_resume_at_any_step_gives_the_uninterrupted_run(stop, order):
    full_seen, full_params = run(70)
    seen, params = run(70, stop, order)
    assert seen == full_seen
    for a, b in zip(full_params, params, strict=True):
        assert torch.equal(a, b)


def test_state_dict_is_the_step_count():
    opt = SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = ScheduleAdapter(opt, StepDecay(lr=0.1, step_size=3))
    for _ in range(4):
        sched.step()
    assert sched.state_dict()["last_epoch"] == 4
    other = ScheduleAdapter(opt, StepDecay(lr=0.1, step_size=3), key="lr")
    other.load_state_dict({"last_epoch": 4})
    assert opt.param_groups[0]["lr"] == StepDecay(lr=0.1, step_size=3)(4)
    mom = ScheduleAdapter(
        SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.5),
        CosineDecay(lr=0.9, T_max=5),
        key="momentum",
    )
    with pytest.raises(OptimlabError, match="key"):
        mom.load_state_dict(sched.state_dict())


@pytest.mark.parametrize("key", ["momentum", "betas", "beta1"])
def test_momentum_schedule_drives_adam_beta1(key):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = Adam([p], lr=1e-3, betas=(0.9, 0.999))
    m = OneCycle(max_lr=0.01, total_steps=50).momentum()
    sched = ScheduleAdapter(opt, m, key=key)
    for t in range(1, 20):
        sched.step()
        assert opt.param_groups[0]["betas"] == (m(t), 0.999)


def test_per_group_schedules_and_tensor_lr():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    lr_tensor = torch.tensor(0.01, dtype=torch.float64)
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=lr_tensor)
    s = CosineDecay(lr=0.01, T_max=10)
    sched = ScheduleAdapter(opt, [s, 0.1 * s])
    sched.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr_tensor  # filled in place, not replaced
    assert lr_tensor.item() == pytest.approx(s(2), rel=1e-12)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * s(2), rel=1e-15)
    assert sched.get_last_lr() == [s(2), pytest.approx(0.1 * s(2), rel=1e-15)]


def test_bad_arguments():
    opt = SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    s = CosineDecay(lr=0.1, T_max=10)
    with pytest.raises(OptimlabError, match="schedule"):
        ScheduleAdapter(opt, [s, s])
    with pytest.raises(OptimlabError, match="key: 'rho'"):
        ScheduleAdapter(opt, s, key="rho")
    adam = Adam([torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(OptimlabError, match="key: 'momentum'"):
        ScheduleAdapter(torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))]), s, "momentum")
    ScheduleAdapter(adam, OneCycle(total_steps=10).momentum(), "momentum")  # betas[0]: fine
    with pytest.raises(OptimlabError, match="schedule"):
        ScheduleAdapter(opt, 0.1)


def test_schedule_as_lr_of_optimlab_optimizer_matches_the_adapter():
    """optimlab's optimizers take a schedule as ``lr``: same updates as an adapter on torch SGD."""
    optim = pytest.importorskip("optimlab.optim")
    s = OneCycle(max_lr=0.05, total_steps=40)
    ours, ref = make_model(), make_model()
    our_opt = optim.create("sgd", ours.parameters(), lr=s, momentum=0.9)
    ref_opt = SGD(ref.parameters(), lr=1.0, momentum=0.9)
    sched = ScheduleAdapter(ref_opt, s)
    for _ in range(40):
        train_step(ours, our_opt)
        train_step(ref, ref_opt)
        sched.step()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
