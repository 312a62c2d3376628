"""Snapshot ensembles, SWA/EMA weight averaging and test-time augmentation, against hand
computations over the weights recorded during training."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.regularize.ensembles import SnapshotEnsemble, SoftmaxEnsemble, WeightAveraging
from optimlab.regularize.tta import tta_predict, tta_views
from optimlab.schedules import ScheduleAdapter, SnapshotCycles
from optimlab.train import fit
from optimlab.train.callback import Callback

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from train_toys import make_problem  # noqa: E402


class Recorder(Callback):
    order = 5  # after the averaging callbacks (order 0)

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_batch_end(self, step, logs):
        self.weights[step] = {k: v.clone() for k, v in self.trainer.model.state_dict().items()}


def test_snapshots_at_cycle_ends():
    problem = make_problem()
    steps_per_epoch = math.ceil(144 / 16)
    total, cycles = 4 * steps_per_epoch, 3
    schedule = SnapshotCycles(lr=0.2, total_steps=total, cycles=cycles)
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.2)
    snap, rec = SnapshotEnsemble.from_schedule(schedule, m=2), Recorder()
    result = fit(
        problem, opt, epochs=4, batch_size=16, scheduler=ScheduleAdapter(opt, schedule),
        callbacks=[snap, rec],
    )  # fmt: skip
    assert len(snap.snapshots) == cycles
    assert snap.steps == [e + 1 for e in schedule.cycle_ends()]
    for step, state in zip(snap.steps, snap.snapshots, strict=True):
        for k in state:
            assert torch.equal(state[k], rec.weights[step][k])
    # the ensemble of the last m = 2 snapshots averages their softmax outputs
    x = problem.splits.test.x
    members = []
    for state in snap.snapshots[-2:]:
        model = make_problem().model
        model.load_state_dict(state)
        members.append(model.eval()(x).softmax(-1))
    ens = snap.ensemble()
    torch.testing.assert_close(ens.predict_proba(x), (members[0] + members[1]) / 2)
    torch.testing.assert_close(ens(x).exp(), ens.predict_proba(x))
    assert "ens_val_accuracy" in result.history[-1]


def test_snapshot_errors():
    with pytest.raises(OptimlabError):
        SnapshotEnsemble([])
    with pytest.raises(OptimlabError):
        SoftmaxEnsemble([])


@pytest.mark.parametrize("decay", [None, 0.8])
def test_weight_averaging_by_hand(decay):
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    avg, rec = WeightAveraging(decay=decay, start=3, every=2), Recorder()
    result = fit(problem, opt, epochs=2, batch_size=32, callbacks=[avg, rec])
    steps = [s for s in sorted(rec.weights) if s > 3 and (s - 3) % 2 == 0]
    assert int(avg.averaged.n_averaged) == len(steps)
    for name, p in avg.averaged.module.named_parameters():
        seq = [rec.weights[s][name] for s in steps]
        if decay is None:
            expected = torch.stack(seq).mean(0)
        else:
            expected = seq[0]
            for w in seq[1:]:
                expected = decay * expected + (1 - decay) * w
        torch.testing.assert_close(p.detach(), expected)
    prefix = "swa_" if decay is None else "ema_"
    assert math.isfinite(result.history[-1][prefix + "val_loss"])


def test_swa_recomputes_batch_norm():
    problem = make_problem()
    problem.model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    avg = WeightAveraging()
    fit(problem, opt, epochs=1, batch_size=32, callbacks=[avg])
    avg.recompute_bn()
    model = avg.averaged.module
    # the running mean equals the training-set mean of the BN inputs (momentum=None:
    # a cumulative average over equal batches except the last, weighted by batch count)
    x = problem.splits.train.x
    batches = [x[i : i + 32] for i in range(0, len(x), 32)]
    means = torch.stack([model[0](b).mean(0) for b in batches]).detach()
    torch.testing.assert_close(model[1].running_mean, means.mean(0))


def test_tta_flip_average_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.randn(5, 1, 4, 4)
    expected = (model(x).softmax(-1) + model(x.flip(-1)).softmax(-1)) / 2
    torch.testing.assert_close(tta_predict(model, x), expected)
    assert len(tta_views(x, flips=True, crop_padding=1)) == 10
    # the shifted views: the top-left corner crop moves the content down-right by p
    view = tta_views(x, flips=False, crop_padding=1)[1]
    assert torch.equal(view[:, :, 1:, 1:], x[:, :, :3, :3])
