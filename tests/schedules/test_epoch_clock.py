"""``EpochClock``: steps against fractional epochs when epochs differ in length, and the
two schedules that read a schedule through it."""

from __future__ import annotations

import pytest

from optimlab.errors import OptimlabError
from optimlab.schedules import EpochClock, MultiStepDecay, OnEpochs, OnSteps, PerEpoch

LENGTHS = [5, 3, 3, 1, 4]  # then 4 for every later epoch


def lengths(epoch: int) -> int:
    return LENGTHS[epoch] if epoch < len(LENGTHS) else 4


def test_epochs_start_where_the_earlier_ones_end():
    clock = EpochClock(lengths)
    assert [clock.start(e) for e in range(7)] == [0, 5, 8, 11, 12, 16, 20]
    # step 6 is the second step of epoch 1 (3 steps long); step 11 is epoch 3's only step
    assert clock.epoch(0) == 0.0 and clock.epoch(6) == pytest.approx(1 + 1 / 3)
    assert clock.epoch(11) == 3.0 and clock.epoch(12) == 4.0 and clock.epoch(100) == 26.0


def test_step_and_epoch_are_inverse():
    clock = EpochClock(lengths)
    for step in range(60):
        assert clock.step(clock.epoch(step)) == step
    assert clock.step(1.5) == 6.5  # halfway through epoch 1 (steps 5, 6, 7)


def test_constant_lengths_match_per_epoch():
    per_epoch = PerEpoch(lambda e: 0.1 * 0.5 ** int(e), 7, fractional=True)
    on_steps = OnSteps(lambda e: 0.1 * 0.5 ** int(e), EpochClock(lambda e: 7))
    assert [on_steps(t) for t in range(40)] == [per_epoch(t) for t in range(40)]


def test_a_step_schedule_read_in_epochs_keeps_its_milestones():
    """Milestone 8 is the start of epoch 2 of a run with LENGTHS steps per epoch."""
    schedule = MultiStepDecay(lr=1.0, milestones=(8, 12), gamma=0.1)
    by_epoch = OnEpochs(schedule, EpochClock(lengths))
    assert by_epoch(1.99) == 1.0 and by_epoch(2) == pytest.approx(0.1)
    assert by_epoch(4) == pytest.approx(0.01)


def test_rounding_keeps_a_step_from_landing_just_short_of_a_milestone():
    # (15 / 22) * 22 is 14.999999999999998 in floating point
    assert (15 / 22) * 22 < 15
    by_epoch = OnEpochs(MultiStepDecay(lr=1.0, milestones=(15,), gamma=0.1),
                        EpochClock(lambda e: 22))  # fmt: skip
    assert by_epoch(15 / 22) == pytest.approx(0.1)


def test_an_epoch_needs_a_step():
    with pytest.raises(OptimlabError, match=r"invalid steps_in_epoch\(1\)"):
        EpochClock(lambda e: 2 - 2 * e).start(2)
