"""``batch_schedule = "increase"``: the run's step schedule grows the batch instead of
decaying the LR (Smith, Kindermans, Ying & Le 2018). Batch sizes and LRs per epoch
against a hand computation, fewer optimizer steps than the decaying run, the run's
length counted as the trainer counts it, identity and exact resume, one-line errors."""

from __future__ import annotations

import math

import pytest
from loop_resume import assert_same_run, crashed_and_resumed, fit

from optimlab.errors import OptimlabError
from optimlab.run import RunConfig, total_steps
from optimlab.train import Callback

N, B = 1294, 32  # digits_mlp's training examples and batch size
PER_EPOCH = math.ceil(N / B)  # 41 steps per epoch at the initial batch
DECAYING = RunConfig(problem="digits_mlp", optimizer="momentum", lr=0.05, epochs=6, threads=1,
                     schedule="multistep",
                     schedule_args={"milestones": [2 * PER_EPOCH, 4 * PER_EPOCH]})  # fmt: skip
INCREASING = DECAYING.replace(batch_schedule="increase", max_batch=640)


class EpochLR(Callback):
    """The LR of each epoch's first step."""

    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.lrs.append(float(self.trainer.optimizer.param_groups[0]["lr"]))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    lrs = EpochLR()
    return (*fit(INCREASING.replace(out=str(tmp_path_factory.mktemp("whole"))), [lrs]), lrs.lrs)


def test_batches_grow_where_the_lr_would_fall_until_the_cap(uninterrupted):
    result, _, run, lrs = uninterrupted
    # the decaying run's LR by epoch: 0.05, divided by 10 at epochs 2 and 4
    decayed = [0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005]
    batches = [min(max(round(B * 0.05 / lr), B), 640) for lr in decayed]
    assert batches == [32, 32, 320, 320, 640, 640]
    assert [h["batch_size"] for h in result.history] == batches
    # the LR stays while the batch grows; at the cap it takes the remaining factor 2
    assert lrs == pytest.approx([0.05, 0.05, 0.05, 0.05, 0.01, 0.01], rel=1e-12)
    for lr, batch, old in zip(lrs, batches, decayed, strict=True):
        assert lr / batch == pytest.approx(old / B, rel=1e-12)  # the same noise scale


def test_fewer_updates_and_the_length_the_trainer_takes(uninterrupted):
    result, _, run, _ = uninterrupted
    steps = 2 * math.ceil(N / 32) + 2 * math.ceil(N / 320) + 2 * math.ceil(N / 640)
    assert result.history[-1]["step"] == steps == 98
    assert total_steps(INCREASING, run.problem, B) == steps
    assert total_steps(DECAYING, run.problem, B) == 6 * PER_EPOCH > steps


def test_the_length_with_a_curriculum_and_accumulation_is_the_trainers():
    """The decaying run's epochs take ceil(ceil(pool / 32) / 2) steps: 11 and 16 for the
    pools of 647 and 971 examples, so its epoch 2 starts at step 27."""
    config = INCREASING.replace(epochs=4, grad_accumulation=2, order="curriculum",
                                curriculum={"start": 0.5, "epochs": 2},
                                schedule_args={"milestones": [27]})  # fmt: skip
    result, _, run = fit(config)
    assert [h["batch_size"] for h in result.history] == [32, 32, 320, 320]
    pools = [math.ceil(0.5 * N), math.ceil(0.75 * N), N, N]
    expected = sum(math.ceil(math.ceil(p / b) / 2) for p, b in zip(pools, [32, 32, 320, 320]))
    assert result.history[-1]["step"] == total_steps(config, run.problem, B) == expected == 33


def test_identity_only_when_set(uninterrupted):
    assert "batch_schedule" not in DECAYING.identity() and "max_batch" not in DECAYING.identity()
    assert uninterrupted[2].config.identity()["batch_schedule"] == "increase"
    assert INCREASING.key() != DECAYING.key()


@pytest.mark.parametrize("crash", [{"step": 2 * PER_EPOCH + 3}, {"epoch": 3}])
def test_a_resumed_run_continues_exactly(tmp_path, uninterrupted, crash):
    resumed = crashed_and_resumed(INCREASING.replace(out=str(tmp_path)), **crash)
    assert_same_run(resumed, uninterrupted[:3])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_schedule": "grow"}, "invalid batch_schedule 'grow'; valid: increase"),
        ({"batch_schedule": "increase", "schedule": None, "schedule_args": {}},
         r"batch_schedule increase needs an LR schedule to turn into batch sizes"),
        ({"max_batch": 640}, r"max_batch needs a batch_schedule \(--batch-schedule increase\)"),
        ({"batch_schedule": "increase", "max_batch": 16},
         r"invalid max_batch: 16; valid range is \[32, inf\]"),
        ({"batch_schedule": "increase", "order": "full"}, "batch_schedule needs mini-batches"),
        ({"batch_schedule": "increase", "parallel": "hogwild", "nproc": 2},
         "batch_schedule is not available with parallel hogwild; valid: parallel none"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(OptimlabError, match=message) as err:
        DECAYING.replace(**change)
    assert "\n" not in str(err.value)
