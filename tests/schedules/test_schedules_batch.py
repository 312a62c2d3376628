"""Batch-size schedules and "increase the batch size instead of decaying the LR" (Smith 2018)."""

from __future__ import annotations

import pickle

import pytest

from optimlab.errors import OptimlabError
from optimlab.schedules import (
    ConstantBatch,
    CosineDecay,
    IncreaseBatch,
    MultiStepBatch,
    MultiStepDecay,
    PerEpoch,
    StepDecay,
    increase_batch_instead,
)

EPOCHS = [e / 4 for e in range(4 * 100)]  # fractional epochs too: the LR is queried per step


def lr_decays(epoch, milestones=(30, 60, 80), factor=5.0):
    """How many times, and by how much, the original schedule has divided the LR."""
    return factor ** sum(1 for m in milestones if m <= epoch)


def test_pure_increase_keeps_lr_and_grows_batch_by_the_decay_factors():
    original = MultiStepDecay(lr=0.1, milestones=(30, 60, 80), gamma=0.2)
    lr, batch = increase_batch_instead(original, batch_size=128)
    for e in EPOCHS:
        assert batch(e) == round(128 * lr_decays(e))  # 128, 640, 3200, 16000
        assert lr(e) == pytest.approx(0.1, rel=1e-12)  # the LR never decays
        assert batch(e) / lr(e) == pytest.approx(128 / original(e), rel=1e-12)
    assert [batch(e) for e in (0, 29, 30, 60, 80)] == [128, 128, 640, 3200, 16000]


def test_hybrid_caps_the_batch_then_decays_the_lr():
    original = MultiStepDecay(lr=0.1, milestones=(30, 60, 80), gamma=0.2)
    lr, batch = increase_batch_instead(original, batch_size=128, max_batch=5000)
    for e in EPOCHS:
        assert batch(e) == min(round(128 * lr_decays(e)), 5000)
        # the noise scale lr/B follows the original schedule at every epoch
        assert lr(e) / batch(e) == pytest.approx(original(e) / 128, rel=1e-12)
    assert batch(79) == 3200 and lr(79) == pytest.approx(0.1, rel=1e-12)
    assert batch(80) == 5000
    assert lr(80) == pytest.approx(0.1 / (16000 / 5000), rel=1e-12)  # the rest of the decay


def test_dataset_size_sets_the_cap_to_a_tenth():
    original = StepDecay(lr=0.1, step_size=10, gamma=0.1)
    _, batch = increase_batch_instead(original, batch_size=100, dataset_size=50_000)
    assert [batch(e) for e in (0, 10, 20, 30)] == [100, 1000, 5000, 5000]


def test_continuous_schedule_needs_a_cap_where_the_lr_reaches_zero():
    cosine = CosineDecay(lr=0.1, T_max=50)
    _, batch = increase_batch_instead(cosine, batch_size=64)
    assert batch(25) == round(64 * 0.1 / cosine(25))
    with pytest.raises(OptimlabError, match="max_batch"):
        batch(50)
    lr, capped = increase_batch_instead(cosine, batch_size=64, max_batch=2048)
    assert capped(50) == 2048 and lr(50) == 0.0


def test_warmup_part_keeps_the_base_batch():
    # an LR that rises (to 2x) never shrinks the batch below its start
    rising = PerEpoch(MultiStepDecay(lr=0.1, milestones=(5,), gamma=2.0), steps_per_epoch=1)
    lr, batch = increase_batch_instead(rising, batch_size=32)
    assert batch(10) == 32 and lr(10) == pytest.approx(0.2, rel=1e-12)


def test_plain_batch_schedules():
    assert [ConstantBatch(256)(e) for e in (0, 5.5, 99)] == [256, 256, 256]
    b = MultiStepBatch(batch_size=128, milestones=(10, 20, 30), factor=5, max_batch=10_000)
    assert [b(e) for e in (0, 9.9, 10, 20, 30, 40)] == [128, 128, 640, 3200, 10_000, 10_000]
    assert pickle.loads(pickle.dumps(b)) == b
    assert "milestones=(10, 20, 30)" in repr(b)


@pytest.mark.parametrize(
    ("build", "arg"),
    [
        (lambda: ConstantBatch(0), "batch_size"),
        (lambda: MultiStepBatch(128, (10,), factor=0.5), "factor"),
        (lambda: MultiStepBatch(128, (10,), max_batch=64), "max_batch"),
        (lambda: IncreaseBatch(StepDecay(lr=0.0, step_size=5), 128), "lr_schedule"),
        (lambda: increase_batch_instead(StepDecay(lr=0.1, step_size=5), 128, 100), "max_batch"),
        (lambda: ConstantBatch(8)(-1), "epoch"),
    ],
)
def test_bad_arguments_name_the_argument(build, arg):
    with pytest.raises(OptimlabError, match=arg):
        build()
