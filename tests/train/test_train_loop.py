"""The trainer against a hand-written loop, budgets, schedules, sampling, divergence."""

from __future__ import annotations

import copy
import json
import math
import time

import pytest
import torch
from torch import nn
from train_toys import accuracy, make_problem, without_time

from optimlab import optim, schedules
from optimlab.errors import OptimlabError
from optimlab.train import Callback, Trainer, fit, load_checkpoint
from optimlab.train import trainer as trainer_module
from optimlab.train.batching import make_loader


def hand_loop(problem, opt_factory, epochs, batch_size, seed, order="random"):
    """The plain loop every course writes, on the loader's batches; returns the model,
    per-epoch (train loss, train accuracy, val loss) and per-step losses."""
    model = copy.deepcopy(problem.model)
    opt = opt_factory(model.parameters())
    x, y = problem.splits.train.x, problem.splits.train.y
    loader = make_loader(x, y, batch_size, order=order, seed=seed)
    records, step_losses = [], []
    for e in range(epochs):
        model.train()
        loss_total = acc_total = 0.0
        count = 0
        for xb, yb in loader.epoch(e):
            opt.zero_grad()
            out = model(xb)
            loss = problem.loss_fn(out, yb)
            loss.backward()
            opt.step()
            step_losses.append(loss.item())
            loss_total += loss.item() * len(xb)
            acc_total += accuracy(out, yb).item() * len(xb)
            count += len(xb)
        model.eval()
        with torch.no_grad():
            val = problem.loss_fn(model(problem.splits.val.x), problem.splits.val.y).item()
        records.append((loss_total / count, acc_total / count, val))
    return model, records, step_losses


@pytest.mark.parametrize("chunk", [32, 4])
def test_matches_hand_written_loop(monkeypatch, chunk):
    # chunk: batches buffered before the train metrics are computed (9 per epoch here)
    monkeypatch.setattr(trainer_module, "CHUNK_BATCHES", chunk)
    problem = make_problem(dtype=torch.float64)
    ref_model, ref_records, ref_steps = hand_loop(
        problem, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), 3, 16, seed=5
    )
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1, momentum=0.9)
    result = fit(problem, opt, epochs=3, batch_size=16, seed=5, log_every=1)
    for p, q in zip(problem.model.parameters(), ref_model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert len(result.history) == 3
    for record, (loss, acc, val) in zip(result.history, ref_records, strict=True):
        assert record["loss"] == pytest.approx(loss, rel=1e-12)
        assert record["accuracy"] == pytest.approx(acc, rel=1e-12)
        assert record["val_loss"] == pytest.approx(val, rel=1e-12)
    assert [r["loss"] for r in result.step_log] == pytest.approx(ref_steps, rel=1e-12)
    assert result.status == "completed"
    assert result.summary["steps"] == len(ref_steps) == 27  # 144 samples / 16 = 9 per epoch


def test_loss_sampled_every_k_steps():
    problem = make_problem(dtype=torch.float64)
    _, _, ref_steps = hand_loop(problem, lambda p: torch.optim.SGD(p, lr=0.05), 2, 16, seed=0)
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.05)
    result = fit(problem, opt, epochs=2, batch_size=16, log_every=4)
    assert [r["step"] for r in result.step_log] == [4, 8, 12, 16]
    assert [r["epoch"] for r in result.step_log] == [1, 1, 2, 2]
    assert [r["loss"] for r in result.step_log] == pytest.approx(
        [ref_steps[s - 1] for s in (4, 8, 12, 16)], rel=1e-12
    )


def test_same_seed_same_metrics_and_other_seed_differs():
    def run(seed):
        problem = make_problem(seed=seed, dropout=0.3)
        opt = torch.optim.Adam(problem.model.parameters(), lr=0.01)
        result = fit(problem, opt, epochs=2, seed=seed, log_every=3)
        return result, [p.detach().clone() for p in problem.model.parameters()]

    (a, pa), (b, pb), (c, _) = run(1), run(1), run(2)
    assert without_time(a.history) == without_time(b.history)
    assert a.step_log == b.step_log
    assert all(torch.equal(p, q) for p, q in zip(pa, pb, strict=True))
    assert without_time(a.history) != without_time(c.history)


def test_test_metrics_equal_a_direct_evaluation(problem):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    result = fit(problem, opt, epochs=1, eval_batch_size=7)  # uneven eval batches
    model = problem.model.eval()
    with torch.no_grad():
        out = model(problem.splits.test.x)
        loss = problem.loss_fn(out, problem.splits.test.y).item()
        acc = accuracy(out, problem.splits.test.y).item()
    assert result.final["test_loss"] == pytest.approx(loss, rel=1e-6)
    assert result.final["test_accuracy"] == pytest.approx(acc, rel=1e-6)


def test_step_budget_ends_mid_epoch(problem):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    result = fit(problem, opt, steps=12, batch_size=16)
    assert result.summary["steps"] == 12
    assert [r["step"] for r in result.history] == [9, 12]
    assert result.status == "completed"


def test_time_budget(problem):
    class Slow(Callback):
        def on_batch_end(self, step, logs):
            time.sleep(0.01)

    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    t0 = time.perf_counter()
    result = fit(problem, opt, seconds=0.15, epochs=1000, callbacks=[Slow()])
    assert result.status == "time_budget"
    assert result.summary["wall_time"] >= 0.15
    assert time.perf_counter() - t0 < 5
    assert 0 < result.summary["steps"] < 1000 * 9
    assert result.history  # the cut-short epoch is still evaluated


def test_scheduler_stepped_per_optimizer_step(problem):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    result = fit(problem, opt, epochs=2, batch_size=16, scheduler=sched, log_every=1)
    for record in result.step_log:  # sampled after the step's scheduler step
        assert record["lr"] == pytest.approx(0.5 * 0.9 ** record["step"], rel=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.9**18, rel=1e-12)


def test_schedule_given_as_the_optimizers_lr(problem):
    # optimlab's optimizers take a schedule as lr; the trainer logs its value.
    lr = schedules.create("exponential", lr=0.5, gamma=0.9)
    opt = optim.create("sgd", problem.model.parameters(), lr=lr)
    result = fit(problem, opt, epochs=2, batch_size=16, log_every=4)
    for record in result.step_log:
        assert record["lr"] == pytest.approx(0.5 * 0.9 ** record["step"], rel=1e-12)
    assert [r["lr"] for r in result.history] == pytest.approx([0.5 * 0.9**9, 0.5 * 0.9**18])


def test_scheduler_stepped_per_epoch(problem):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    result = fit(problem, opt, epochs=3, scheduler=sched, scheduler_interval="epoch")
    assert [r["lr"] for r in result.history] == [0.5, 0.25, 0.125]
    assert opt.param_groups[0]["lr"] == 0.0625


def test_batch_size_schedule(problem):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    result = fit(problem, opt, epochs=3, batch_size_schedule=lambda e: 16 * 2**e)
    assert [r["batch_size"] for r in result.history] == [16, 32, 64]
    # 144 training samples: ceil(144/16) + ceil(144/32) + ceil(144/64) steps
    assert [r["step"] for r in result.history] == [9, 9 + 5, 9 + 5 + 3]


def regression_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(144, 6, generator=g)
    y = x @ torch.randn(6, 1, generator=g)
    torch.manual_seed(0)
    return (nn.Linear(6, 1), nn.functional.mse_loss, {}, {"train": (x, y)})


@pytest.mark.parametrize("log_every", [1, 1000])
def test_divergence_is_a_result_and_keeps_last_good_checkpoint(tmp_path, log_every):
    model, loss_fn, metrics, splits = regression_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    # A sane LR for two epochs (18 steps), then one that makes GD blow up.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < 18 else 1e4)
    result = fit(
        (model, loss_fn, metrics, splits),
        opt,
        epochs=50,
        batch_size=16,
        scheduler=sched,
        out_dir=tmp_path,
        log_every=log_every,
    )
    assert result.status == "diverged"
    assert len(result.history) == 2 and all(math.isfinite(r["loss"]) for r in result.history)
    assert result.summary["diverged_at"]["epoch"] == 3
    assert not math.isfinite(result.summary["diverged_at"]["loss"])
    assert "last good checkpoint" in result.summary["message"]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["epoch"] == 2 and state["step"] == 18
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged"


@pytest.mark.parametrize("out", [False, True])
def test_divergence_in_the_first_epoch_says_no_checkpoint(tmp_path, out):
    model, loss_fn, metrics, splits = regression_problem()
    opt = torch.optim.SGD(model.parameters(), lr=1000.0)
    result = fit(
        (model, loss_fn, metrics, splits),
        opt,
        epochs=20,
        batch_size=16,
        log_every=1,
        out_dir=tmp_path if out else None,
    )
    assert result.status == "diverged" and result.summary["diverged_at"]["epoch"] == 1
    expected = "no checkpoint had been written yet" if out else "no checkpoint was written"
    assert expected in result.summary["message"]
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"order": "sorted"}, "cyclic"),
        ({"batch_size": 0}, "batch_size"),
        ({"grad_accumulation": 0}, "grad_accumulation"),
        ({"scheduler_interval": "batch"}, "epoch"),
        ({"resume": "yes"}, "auto"),
        ({"checkpoint_every": 3}, "out_dir"),
    ],
)
def test_bad_arguments_name_the_argument(problem, kwargs, word):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    with pytest.raises(OptimlabError, match=word):
        Trainer(problem, opt, **kwargs)


def test_needs_a_budget():
    model, loss_fn, metrics, splits = regression_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(OptimlabError, match="epochs, steps or seconds"):
        Trainer((model, loss_fn, metrics, splits), opt, batch_size=4)
