"""EarlyStopping and ReduceLROnPlateau (Keras semantics), ModelCheckpoint, callback order."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from train_toys import make_problem

from optimlab.errors import OptimlabError
from optimlab.train import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    fit,
    load_checkpoint,
)


def fake_trainer(lr=1.0, groups=1):
    model = nn.Linear(1, 1)
    params = [nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    opt = torch.optim.SGD([{"params": [p]} for p in params], lr=lr)
    return SimpleNamespace(model=model, optimizer=opt, stop_training=False, restored_epoch=None)


def drive(cb, values, monitor="val_loss", trainer=None):
    """Feed ``values`` epoch by epoch; return the epoch after which training stopped."""
    trainer = trainer or fake_trainer()
    cb.set_trainer(trainer)
    cb.on_train_begin({})
    for epoch, v in enumerate(values):
        cb.on_epoch_end(epoch, {monitor: v})
        if trainer.stop_training:
            return epoch
    return None


def reference_stop(values, patience, min_delta):
    """Keras' rule restated without a wait counter (no baseline): stop at the first epoch
    e > 0 that lies ``patience`` or more epochs after the last improvement."""
    best, last = None, 0
    for e, v in enumerate(values):
        if best is None or v < best - min_delta:
            best, last = v, e
        elif e - last >= patience and e > 0:
            return e
    return None


def test_early_stopping_hand_cases():
    assert drive(EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.91, 0.92]) == 3
    # min_delta is absolute: 0.95 is not 0.06 better than 1.0, 0.92 is.
    assert drive(EarlyStopping(patience=2, min_delta=0.06), [1.0, 0.95, 0.92, 0.9, 0.89]) == 4
    assert drive(EarlyStopping(patience=3, min_delta=0.06), [1.0, 0.95, 0.92, 0.9, 0.89]) is None
    # mode max, read from the name
    assert drive(EarlyStopping("val_accuracy", patience=1), [0.5, 0.6, 0.6], "val_accuracy") == 2


@pytest.mark.parametrize("trial", range(30))
def test_early_stopping_against_restated_rule(trial):
    rng = random.Random(trial)
    values = [rng.choice([1.0, 0.9, 0.8, 0.85, 0.7, 0.75, 0.95]) for _ in range(12)]
    patience, min_delta = rng.randint(0, 4), rng.choice([0.0, 0.03, 0.1])
    got = drive(EarlyStopping(patience=patience, min_delta=min_delta), values)
    assert got == reference_stop(values, patience, min_delta)


def test_baseline_only_resets_wait_when_beaten():
    values = [0.8, 0.7, 0.65, 0.6, 0.61]
    assert drive(EarlyStopping(patience=2), values) is None
    # Improvements that never beat 0.5 do not reset the counter: stop at the first
    # epoch without improvement once patience is used up.
    assert drive(EarlyStopping(patience=2, baseline=0.5), values) == 4
    assert drive(EarlyStopping(patience=2, baseline=0.75), values) is None


def test_start_from_epoch_ignores_early_epochs():
    values = [0.1, 0.2, 0.9, 0.95, 0.97]
    assert drive(EarlyStopping(patience=2), values) == 2
    assert drive(EarlyStopping(patience=2, start_from_epoch=2), values) == 4


def test_relative_threshold_mode():
    values = [100.0, 99.5, 99.0, 98.0]  # steps of 0.5%, 0.5%, 1%
    assert drive(EarlyStopping(patience=1, min_delta=0.008, threshold_mode="rel"), values) == 1
    assert drive(EarlyStopping(patience=2, min_delta=0.008, threshold_mode="rel"), values) is None


def _with_weights(trainer, value):
    with torch.no_grad():
        trainer.model.weight.fill_(value)


@pytest.mark.parametrize("restore", [True, False])
def test_restore_best_weights_at_end_without_early_stop(restore):
    trainer = fake_trainer()
    cb = EarlyStopping(patience=10, restore_best_weights=restore)
    cb.set_trainer(trainer)
    cb.on_train_begin({})
    for epoch, (w, v) in enumerate([(1.0, 0.5), (2.0, 0.3), (3.0, 0.4)]):
        _with_weights(trainer, w)
        cb.on_epoch_end(epoch, {"val_loss": v})
    assert not trainer.stop_training
    cb.on_train_end({})
    assert trainer.model.weight.item() == (2.0 if restore else 3.0)
    assert trainer.restored_epoch == (2 if restore else None)  # the second, counted from 1


def test_restore_best_weights_after_early_stop():
    trainer = fake_trainer()
    cb = EarlyStopping(patience=1, restore_best_weights=True)
    cb.set_trainer(trainer)
    cb.on_train_begin({})
    for epoch, (w, v) in enumerate([(1.0, 0.5), (2.0, 0.6)]):
        _with_weights(trainer, w)
        cb.on_epoch_end(epoch, {"val_loss": v})
    assert trainer.stop_training
    cb.on_train_end({})
    assert trainer.model.weight.item() == 1.0


def lr_trace(cb, values, lr=0.1):
    trainer = fake_trainer(lr=lr)
    cb.set_trainer(trainer)
    cb.on_train_begin({})
    out = []
    for epoch, v in enumerate(values):
        cb.on_epoch_end(epoch, {"val_loss": v})
        out.append(trainer.optimizer.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("trial", range(40))
def test_plateau_matches_torch_with_patience_shifted(trial):
    # Without cooldown Keras' patience p is torch's p - 1 (see the class docstring).
    rng = random.Random(trial)
    values = [1.0]
    for _ in range(25):
        values.append(values[-1] + rng.choice([-0.2, -0.01, 0.0, 0.05, 0.1]))
    patience = rng.randint(1, 4)
    min_delta = rng.choice([0.0, 0.005, 0.05])
    threshold_mode = rng.choice(["abs", "rel"])
    ours = lr_trace(
        ReduceLROnPlateau(
            factor=0.5,
            patience=patience,
            min_delta=min_delta,
            min_lr=0.01,
            threshold_mode=threshold_mode,
        ),
        values,
    )
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    torch_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        factor=0.5,
        patience=patience - 1,
        threshold=min_delta,
        threshold_mode=threshold_mode,
        min_lr=0.01,
    )
    theirs = []
    for v in values:
        torch_sched.step(v)
        theirs.append(opt.param_groups[0]["lr"])
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_plateau_cooldown_by_hand():
    # patience 1, cooldown 2, constant metric: reduce at epoch 1; epochs 2 and 3 cool
    # down (the counter restarts at 0 on epoch 3's decrement), so the next bad epoch
    # counted is 3, which reaches patience 1 again; and so on every second epoch.
    cb = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_delta=0)
    trace = lr_trace(cb, [1.0] * 7, lr=1.0)
    assert trace == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert cb.reductions == [1, 3, 5]


def test_plateau_min_lr_per_group():
    trainer = fake_trainer(lr=1.0, groups=2)
    cb = ReduceLROnPlateau(factor=0.1, patience=1, min_lr=[0.5, 0.0])
    cb.set_trainer(trainer)
    cb.on_train_begin({})
    for epoch in range(3):
        cb.on_epoch_end(epoch, {"val_loss": 1.0})
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([0.5, 0.01])


def test_plateau_refuses_a_schedule_as_lr():
    from optimlab import optim, schedules

    trainer = fake_trainer()
    sched = schedules.create("exponential", lr=0.5, gamma=0.9)
    trainer.optimizer = optim.create("sgd", [nn.Parameter(torch.zeros(1))], lr=sched)
    cb = ReduceLROnPlateau(patience=1)
    cb.set_trainer(trainer)
    cb.on_train_begin({})
    cb.on_epoch_end(0, {"val_loss": 1.0})
    with pytest.raises(OptimlabError, match="numeric lr"):
        cb.on_epoch_end(1, {"val_loss": 1.0})


@pytest.mark.parametrize(
    ("make", "word"),
    [
        (lambda: ReduceLROnPlateau(factor=1.0), "factor"),
        (lambda: ReduceLROnPlateau(mode="avg"), "min, max"),
        (lambda: EarlyStopping(monitor="val_thing"), "mode='min'"),
        (lambda: EarlyStopping(patience=-1), "patience"),
        (lambda: EarlyStopping(threshold_mode="pct"), "abs, rel"),
        (lambda: ModelCheckpoint("x", every_n_steps=0), "every_n_steps"),
    ],
)
def test_bad_callback_arguments(make, word):
    with pytest.raises(OptimlabError, match=word):
        make()


def test_early_stopping_in_a_run(problem):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.5)
    es = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)  # nothing improves by 10
    result = fit(problem, opt, epochs=10, callbacks=[es])
    assert result.status == "early_stopped"
    assert len(result.history) == 2 and es.stopped_epoch == 1


class Snapshots(Callback):
    """Keeps the weights at every epoch end (after every other callback but checkpointing)."""

    order = 50

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs):
        self.weights.append({k: v.clone() for k, v in self.trainer.model.state_dict().items()})


def test_model_checkpoint_last_and_best(tmp_path):
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=2.0)  # large: val loss jumps about
    snaps = Snapshots()
    result = fit(problem, opt, epochs=5, out_dir=tmp_path, callbacks=[snaps])
    vals = [r["val_loss"] for r in result.history]
    best = vals.index(min(vals))
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    best_state = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert last["epoch"] == 5 and last["status"] == "completed"
    assert best_state["epoch"] == best + 1
    for k, v in best_state["model"].items():
        assert torch.equal(v, snaps.weights[best][k])
    for k, v in last["model"].items():
        assert torch.equal(v, problem.model.state_dict()[k])
    assert result.summary["best"]["epoch"] == best + 1 == best_state["epoch"]  # from 1
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_callbacks_run_in_order_with_checkpoint_last(tmp_path, problem):
    seen = []

    class Tag(Callback):
        def __init__(self, name, order):
            super().__init__()
            self.name, self.order = name, order

        def on_epoch_end(self, epoch, logs):
            seen.append(self.name)

    ckpt = ModelCheckpoint(tmp_path)
    ckpt_end = ckpt.on_epoch_end
    ckpt.on_epoch_end = lambda e, logs: (seen.append("ckpt"), ckpt_end(e, logs))
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    fit(problem, opt, epochs=1, callbacks=[ckpt, Tag("b", 5), Tag("a", 0)])
    assert seen == ["a", "b", "ckpt"]


def test_a_missing_monitor_is_reported_once_by_every_watching_callback(tmp_path):
    """EarlyStopping, ReduceLROnPlateau and ModelCheckpoint warn once, then stay quiet."""
    import warnings

    from optimlab.train import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau

    for cb in (EarlyStopping(monitor="val_acc"), ReduceLROnPlateau(monitor="val_acc"),
               ModelCheckpoint(tmp_path, monitor="val_acc", save_last=False)):  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cb.on_epoch_end(0, {"val_loss": 1.0})
            cb.on_epoch_end(1, {"val_loss": 0.9})
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1, (type(cb).__name__, messages)
        assert "'val_acc' is not in the epoch logs" in messages[0] and "val_loss" in messages[0]
