"""Optimizers that re-evaluate the loss through a closure (torch's LBFGS here): the trainer
drives them, counts the evaluations, and resumes them exactly."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo
from optimlab import problems
from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.train import Callback, Trainer, fit


class Killed(Exception):
    pass


class KillAt(Callback):
    order = 200  # after the checkpoint is written

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            raise Killed


def _lbfgs(problem):
    return torch.optim.LBFGS(problem.model.parameters(), lr=1, max_iter=5, history_size=5,
                             line_search_fn="strong_wolfe")  # fmt: skip


def _hand_run(epochs):
    """The same full-batch run written out by hand, counting the closure's calls."""
    problem = problems.build("logreg_digits", seed=0)
    opt = _lbfgs(problem)
    x, y = problem.splits.train.x, problem.splits.train.y
    calls = 0

    def closure():
        nonlocal calls
        opt.zero_grad(set_to_none=True)
        loss = problem.loss_fn(problem.model(x), y)
        loss.backward()
        calls += 1
        return loss

    for _ in range(epochs):
        opt.step(closure)
    return problem.model.state_dict(), calls


def test_full_batch_lbfgs_equals_the_hand_written_loop():
    problem = problems.build("logreg_digits", seed=0)
    result = fit(problem, _lbfgs(problem), epochs=3, order="full")
    weights, calls = _hand_run(3)
    for k, v in problem.model.state_dict().items():
        assert torch.equal(v, weights[k]), k
    n = len(problem.splits.train.x)
    assert [r["step"] for r in result.history] == [1, 2, 3]
    assert result.history[-1]["evaluations"] == calls > 3  # the line search evaluates more
    assert result.history[-1]["examples"] == calls * n


def _hessian_free(problem):
    return oo.create("hessian_free", problem.model.parameters(), cg_max_iter=20)


@pytest.mark.parametrize("make", [_lbfgs, _hessian_free])
def test_a_resumed_closure_run_continues_identically(tmp_path, make):
    whole = problems.build("logreg_digits", seed=0)
    ref = fit(whole, make(whole), epochs=4, order="full")
    first = problems.build("logreg_digits", seed=0)
    with pytest.raises(Killed):  # right after the second epoch's checkpoint
        fit(first, make(first), epochs=4, order="full", out_dir=tmp_path, callbacks=[KillAt(1)])
    again = problems.build("logreg_digits", seed=0)  # a fresh process would build it anew
    resumed = fit(again, make(again), epochs=4, order="full", out_dir=tmp_path)

    def no_time(rows):
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    assert no_time(resumed.history) == no_time(ref.history)
    for k, v in again.model.state_dict().items():
        assert torch.equal(v, whole.model.state_dict()[k])


def test_closure_optimizers_refuse_gradient_accumulation():
    problem = problems.build("logreg_digits", seed=0)
    with pytest.raises(OptimlabError, match="invalid grad_accumulation: 2; LBFGS"):
        Trainer(problem, _lbfgs(problem), epochs=1, grad_accumulation=2)


def test_first_order_runs_count_one_evaluation_per_batch():
    problem = problems.build("logreg_digits", seed=0)
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    result = fit(problem, opt, epochs=2, batch_size=100, grad_accumulation=2)
    n = len(problem.splits.train.x)
    batches = -(-n // 100)
    assert result.history[-1]["evaluations"] == 2 * batches
    assert result.history[-1]["examples"] == 2 * n


def test_full_batch_option(tmp_path, capsys):
    argv = ["train", "--problem", "logreg_digits", "--optimizer", "sgd", "--epochs", "3",
            "--full-batch", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert "completed 3 epochs (3 steps)" in capsys.readouterr().out
    assert main([*argv[:-3], "--order", "cyclic", "--quiet"]) == 2
    assert "--full-batch contradicts --order cyclic" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["lbfgs", "bfgs", "newton", "cg", "hessian_free"])
def test_second_order_optimizers_train_through_the_command_line(name, tmp_path, capsys):
    argv = ["train", "--problem", "logreg_digits", "--optimizer", name, "--full-batch",
            "--epochs", "2", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert "completed 2 epochs (2 steps)" in capsys.readouterr().out
    import json

    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    n = len(problems.build("logreg_digits").splits.train.x)
    assert rows[-1]["batch_size"] == n and rows[-1]["examples"] == rows[-1]["evaluations"] * n
    assert rows[-1]["evaluations"] >= 2 and "hvps" in rows[-1]
    # Newton's Hessian and Hessian-free's CG are built from curvature products
    assert (rows[-1]["hvps"] > 0) == (name in ("newton", "hessian_free"))
