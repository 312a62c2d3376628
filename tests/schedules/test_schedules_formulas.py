"""Spot values against plain transcriptions of the formulas in the papers and lectures."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from optimlab.errors import OptimlabError
from optimlab.schedules import (
    Constant,
    CosineDecay,
    Cyclic,
    CyclicMomentum,
    ExponentialDecay,
    Harmonic,
    InverseTimeDecay,
    Join,
    LinearWarmup,
    PerEpoch,
    Product,
    Scaled,
    Schedule,
    SnapshotCycles,
    StepDecay,
    WarmRestarts,
    available,
    create,
    epochs_to_steps,
    record,
    steps_per_epoch,
    warmup_cosine,
    with_warmup,
)
from optimlab.schedules.registry import REQUIRED

# values for the required parameters, to build every registered schedule
REQUIRED_VALUES = {
    "T_max": 150,
    "total_steps": 150,
    "step_size": 20,
    "milestones": (30, 80),
    "T_0": 10,
    "mu": 0.01,
    "s": 1.0,
}


def every_schedule() -> list[Schedule]:
    out = []
    for name in available():
        defaults = record(name).defaults
        params = {k: REQUIRED_VALUES[k] for k, v in defaults.items() if v is REQUIRED}
        if "step_size_up" in defaults:
            params["step_size_up"] = 25  # several cycles within the steps we look at
        out.append(create(name, **params))
    return out


def test_harmonic_is_the_lecture_formula():
    # lecture 001: alpha[t] = 0.001 / (floor(t / N) + 10)
    s = Harmonic(a=0.001, step_size=7, c=10)
    for t in range(300):
        assert s(t) == pytest.approx(0.001 / (math.floor(t / 7) + 10), rel=1e-15)
    assert s(0) == pytest.approx(1e-4, rel=1e-15)


def test_inverse_time_is_keras_legacy_decay():
    # Keras SGD(lr, decay): lr_t = lr / (1 + decay * iterations)
    s = InverseTimeDecay(lr=0.01, decay_rate=1e-3)
    for t in (0, 1, 10, 999, 12345):
        assert s(t) == pytest.approx(0.01 / (1 + 1e-3 * t), rel=1e-14)
    stair = InverseTimeDecay(lr=0.01, decay_rate=0.5, decay_steps=10, staircase=True)
    assert [stair(t) for t in (0, 9, 10, 25)] == pytest.approx(
        [0.01, 0.01, 0.01 / 1.5, 0.01 / 2.0], rel=1e-15
    )


def test_exponential_with_decay_steps():
    s = ExponentialDecay(lr=0.1, gamma=0.5, decay_steps=100)
    assert s(100) == pytest.approx(0.05, rel=1e-15)
    assert s(50) == pytest.approx(0.1 * 0.5**0.5, rel=1e-15)
    assert ExponentialDecay(lr=0.1, gamma=0.5, decay_steps=100, staircase=True)(199) == 0.05


def smith_clr(it, base, top, s, mode, gamma=1.0):
    """Smith (2017), section 3.1, transcribed."""
    cycle = math.floor(1 + it / (2 * s))
    x = abs(it / s - 2 * cycle + 1)
    amp = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**it}[mode]
    return base + (top - base) * max(0.0, 1 - x) * amp


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_is_smiths_formula(mode):
    s = Cyclic(base_lr=1e-3, max_lr=6e-3, step_size_up=40, mode=mode, gamma=0.999)
    for t in range(1000):
        assert s(t) == pytest.approx(smith_clr(t, 1e-3, 6e-3, 40, mode, 0.999), rel=1e-12)
    # the cycle peaks after step_size iterations and returns to base after 2 * step_size
    assert max(s.values(80)) == s(40)
    if mode != "exp_range":  # exp_range has already shrunk by gamma**40 at the first peak
        assert s(40) == pytest.approx(6e-3, rel=1e-12)
    assert s(80) == pytest.approx(1e-3, rel=1e-12)


def test_cyclic_momentum_mirrors_the_lr():
    lr = Cyclic(base_lr=0.01, max_lr=0.1, step_size_up=30, mode="triangular2")
    m = CyclicMomentum(base_momentum=0.8, max_momentum=0.95, step_size_up=30, mode="triangular2")
    for t in range(0, 400, 3):
        frac = (lr(t) - 0.01) / (0.1 - 0.01)  # position of the LR between its bounds
        assert m(t) == pytest.approx(0.95 - (0.95 - 0.8) * frac, rel=1e-12)
    assert lr.momentum(0.8, 0.95) == m


def sgdr_transcribed(t, lr, T_0, T_mult, eta_min):
    """Walk the cycles one by one (no closed form), as the paper describes."""
    T_i, T_cur = T_0, t
    while T_cur >= T_i:
        T_cur -= T_i
        T_i *= T_mult
    return eta_min + 0.5 * (lr - eta_min) * (1 + math.cos(math.pi * T_cur / T_i))


@pytest.mark.parametrize(("T_0", "T_mult"), [(10, 1), (10, 2), (7, 3), (5, 1.5)])
def test_sgdr_restarts(T_0, T_mult):
    s = WarmRestarts(lr=0.05, T_0=T_0, T_mult=T_mult, eta_min=1e-3)
    starts, start, length = [], 0.0, T_0  # cycle i starts where cycle i - 1 ends
    while start + length < 2000:
        start += length
        length *= T_mult
        starts.append(start)
    assert s.restarts(2000) == [math.ceil(x) for x in starts]
    for x in starts:
        if x == int(x):
            assert s(int(x)) == 0.05  # back at the top exactly at an integral restart
        assert s(math.ceil(x)) > s(math.ceil(x) - 1)
    for t in range(0, 2000, 13):
        assert s(t) == pytest.approx(sgdr_transcribed(t, 0.05, T_0, T_mult, 1e-3), rel=1e-12)


def test_sgdr_in_fractional_epochs():
    # the paper updates T_cur every batch in fractional epochs: T_0 = 2 epochs of 100 batches
    s = PerEpoch(WarmRestarts(lr=0.1, T_0=2, T_mult=2), steps_per_epoch=100, fractional=True)
    for step in (0, 1, 150, 199, 200, 555, 599, 600, 1234):
        expect = sgdr_transcribed(step / 100, 0.1, 2, 2, 0.0)
        assert s(step) == pytest.approx(expect, rel=1e-12, abs=1e-18)
    assert s(200) == 0.1 and s(600) == 0.1


def test_snapshot_cycles_are_huangs_formula():
    T, M, lr0 = 100, 4, 0.2
    s = SnapshotCycles(lr=lr0, total_steps=T, cycles=M)
    L = math.ceil(T / M)
    for step in range(T):
        t = step + 1  # the paper counts iterations from 1
        expect = lr0 / 2 * (math.cos(math.pi * ((t - 1) % L) / L) + 1)
        assert s(step) == pytest.approx(expect, rel=1e-12, abs=1e-18)
    assert s.cycle_ends() == [24, 49, 74, 99]
    for end in s.cycle_ends()[:-1]:
        assert s(end + 1) == lr0  # a new cycle restarts at lr0
        assert s(end) == min(s(u) for u in range(end - L + 1, end + 1))
    assert s.is_cycle_end(49) and not s.is_cycle_end(50)


def test_snapshot_last_cycle_cut_short_by_budget():
    s = SnapshotCycles(lr=0.1, total_steps=10, cycles=4)
    assert s.cycle_length == 3
    assert s.cycle_ends() == [2, 5, 8, 9]


def test_join_gives_each_schedule_its_local_step():
    a, b, c = Constant(lr=0.5), CosineDecay(lr=0.1, T_max=20), StepDecay(lr=0.01, step_size=5)
    j = Join([a, b, c], [10, 30])
    assert [j(t) for t in range(10)] == [0.5] * 10
    assert [j(t) for t in range(10, 30)] == b.values(20)
    assert [j(t) for t in range(30, 60)] == c.values(30)
    assert j.segment(9) == 0 and j.segment(10) == 1 and j.segment(30) == 2


def test_warmup_then_schedule():
    cos = CosineDecay(lr=0.1, T_max=90)
    s = with_warmup(cos, warmup_steps=10, start_factor=0.1)
    # warm-up: linear from 0.01 to 0.1 over 10 steps, then the cosine from its step 0
    for t in range(10):
        assert s(t) == pytest.approx(0.1 * (0.1 + 0.9 * t / 10), rel=1e-14)
    for t in range(10, 100):
        assert s(t) == cos(t - 10)
    assert warmup_cosine(lr=0.1, total_steps=100, warmup_steps=10, start_factor=0.1) == s
    assert LinearWarmup(lr=0.1, warmup_steps=4)(2) == pytest.approx(0.05, rel=1e-15)


def test_product_scaled_and_operators():
    cos, cyc = CosineDecay(lr=1.0, T_max=100), Cyclic(base_lr=0.1, max_lr=0.5, step_size_up=10)
    p = Product([cos, cyc])
    for t in range(0, 100, 7):
        assert p(t) == pytest.approx(cos(t) * cyc(t), rel=1e-15)
        assert (3 * cos)(t) == pytest.approx(3 * cos(t), rel=1e-15)
        assert (cos * cyc)(t) == p(t)
    assert cos * 3 == Scaled(cos, 3)


def test_per_epoch_staircase_and_epoch_helpers():
    s = PerEpoch(StepDecay(lr=0.1, step_size=30, gamma=0.1), steps_per_epoch=50)
    assert s(30 * 50 - 1) == 0.1 and s(30 * 50) == pytest.approx(0.01, rel=1e-15)
    assert epochs_to_steps(2.5, 50) == 125
    assert epochs_to_steps(0.01, 50) == 1
    assert steps_per_epoch(60000, 128) == 469
    assert steps_per_epoch(60000, 128, drop_last=True) == 468


@pytest.mark.parametrize("schedule", every_schedule(), ids=repr)
def test_tensor_step_gives_the_same_values(schedule):
    for t in (0, 1, 17, 25, 60, 149, 300):
        ref = schedule(t)
        out = schedule(torch.tensor(t, dtype=torch.float64))
        assert isinstance(out, torch.Tensor) and out.ndim == 0
        assert out.item() == pytest.approx(ref, rel=1e-12, abs=1e-18)
        out32 = schedule(torch.tensor(t))  # an integer step runs in the default dtype
        assert out32.dtype == torch.get_default_dtype()
        # float32: 1 + cos(x) cancels near the bottom of a cosine, so allow ~1e-7 * lr
        assert out32.item() == pytest.approx(ref, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("schedule", [s for s in every_schedule() if s.tensor_ok], ids=repr)
def test_tensor_ok_schedules_never_sync(schedule):
    # a meta tensor has no data: any .item() would raise, so this proves no host sync
    out = schedule(torch.tensor(5.0, device="meta"))
    assert out.device.type == "meta"


@pytest.mark.parametrize("schedule", every_schedule(), ids=repr)
def test_pickle_repr_and_purity(schedule):
    clone = pickle.loads(pickle.dumps(schedule))
    assert clone == schedule and repr(clone) == repr(schedule)
    assert repr(schedule).startswith(type(schedule).__name__ + "(")
    for name, value in schedule.params().items():
        assert f"{name}={value!r}" in repr(schedule)
    forward = schedule.values(200)
    backward = [schedule(t) for t in reversed(range(200))][::-1]
    assert forward == backward  # a pure function of the step: call order does not matter


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), "3", None])
def test_bad_step_is_rejected(bad):
    with pytest.raises(OptimlabError, match="step"):
        CosineDecay(lr=0.1, T_max=10)(bad)
