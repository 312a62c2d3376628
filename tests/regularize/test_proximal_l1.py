"""Proximal L1 and L1 switched on late, through the ``regularize`` options and the trainer.

The sparsity fact: least squares with an orthonormal design (``X^T X = I``) and the
objective ``||X w - y||^2 / 2 + lam ||w||_1`` has the lasso solution
``w* = soft(X^T y, lam)`` (Tibshirani 1996, section 2.2), so proximal gradient descent
converges to it with exactly the predicted zeros, while the penalty (subgradient) form
never lands on zero.
"""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

from optimlab.data.splits import Split, Splits
from optimlab.errors import OptimlabError
from optimlab.problems.problem import Problem
from optimlab.regularize import (
    ProximalL1,
    ScheduledPenalty,
    l1,
    options,
    soft_threshold_,
    with_penalty,
)
from optimlab.train import Trainer
from resume_checks import Crash, CrashAt, assert_same_result

LAM = 0.25
# X^T y: the least-squares solution; |z_i| <= LAM for the coordinates lasso zeroes
Z = torch.tensor([3.0, -2.0, 0.5, -0.3, 0.05, 1.5, -0.04, 0.2, -0.24, 0.9, 0.0, -1.1])


def half_sum_of_squares(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * (out - y).pow(2).sum()


def orthonormal_problem(n: int = 40) -> Problem:
    """``y = X Z + r`` with orthonormal columns of X and ``r`` orthogonal to them."""
    g = torch.Generator().manual_seed(7)
    d = Z.numel()
    q, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
    noise = torch.randn(n, 1, generator=g, dtype=torch.float64)
    residual = noise - q @ (q.T @ noise)
    y = q @ Z.to(torch.float64).unsqueeze(1) + residual
    torch.manual_seed(0)
    model = nn.Linear(d, 1, bias=False).double()
    return _problem(model, q, y, half_sum_of_squares, n)


def _problem(model: nn.Module, x, y, loss, batch_size: int) -> Problem:
    split = Split(x, y)
    splits = Splits("toy", split, split, split, "regression", (x.shape[1],))
    return Problem(name="toy", model=model, loss_fn=loss, metrics={}, splits=splits,
                   batch_size=batch_size, epochs=1, task="regression")  # fmt: skip


def train(problem: Problem, regularize: dict, lr: float, steps: int, **kw) -> Problem:
    opt = torch.optim.SGD(problem.model.parameters(), lr=lr)
    new, kwargs = options.apply(regularize, problem, {"seed": 0})
    Trainer(new, opt, steps=steps, log_every=1, **kwargs, **kw).run()
    return new


def test_soft_threshold_by_hand():
    w = torch.tensor([1.5, -0.2, 0.2, -3.0, 0.0], dtype=torch.float64)
    soft_threshold_(w, 0.5)
    assert w.tolist() == [1.0, 0.0, 0.0, -2.5, 0.0]


def test_proximal_gradient_reaches_the_lasso_solution_with_exact_zeros():
    problem = train(orthonormal_problem(), {"l1": LAM, "l1_method": "proximal"}, 0.5, 80)
    w = problem.model.weight.detach()[0]
    z = Z.to(torch.float64)
    expected = torch.sign(z) * (z.abs() - LAM).clamp_min(0)
    torch.testing.assert_close(w, expected, rtol=0, atol=1e-12)
    predicted_zeros = z.abs() <= LAM
    assert predicted_zeros.sum() == 5
    assert torch.equal(w == 0, predicted_zeros)  # exactly zero, and only there


def test_penalty_form_gives_no_exact_zeros():
    problem = train(orthonormal_problem(), {"l1": LAM}, 0.5, 80)
    w = problem.model.weight.detach()[0]
    z = Z.to(torch.float64)
    assert torch.count_nonzero(w) == w.numel()
    # the coordinates lasso zeroes keep jumping across 0 instead, each step a subgradient
    # step of size lr * (lam + |z_i|) <= 2 lr lam, so they stay within lam of 0
    assert (w[z.abs() <= LAM].abs() <= LAM).all()
    big = z.abs() > LAM
    torch.testing.assert_close(w[big], (z - LAM * torch.sign(z))[big], rtol=0, atol=1e-12)


def test_proximal_step_uses_the_lr_of_the_step_taken():
    """The trainer's scheduler moves ``lr`` after each step; the threshold is that of the
    step just taken (lr 0.5, then 0.05), not the next one's."""
    x = torch.ones(4, 2, dtype=torch.float64)
    problem = _problem(nn.Linear(2, 1, bias=False).double(), x, torch.zeros(4, 1),
                       lambda out, y: 0.0 * out.sum(), 4)  # fmt: skip
    with torch.no_grad():
        problem.model.weight.copy_(torch.tensor([[1.0, -1.0]]))
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 if t == 0 else 0.1)
    new, kwargs = options.apply({"l1": 0.4, "l1_method": "proximal"}, problem, {"seed": 0})
    Trainer(new, opt, steps=2, scheduler=sched, **kwargs).run()
    w = new.model.weight.detach()[0]
    torch.testing.assert_close(w, torch.tensor([0.78, -0.78], dtype=torch.float64))


def regression_problem(seed: int = 3, n: int = 32) -> Problem:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = x @ torch.randn(5, 1, generator=g, dtype=torch.float64) + 0.1
    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    return _problem(model, x, y, nn.functional.mse_loss, 8)


def run_state(regularize: dict, steps: int) -> tuple[dict, list]:
    problem = regression_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    new, kwargs = options.apply(regularize, problem, {"seed": 0})
    trainer = Trainer(new, opt, steps=steps, batch_size=8, log_every=1, **kwargs)
    trainer.run()
    state = {k: v.clone() for k, v in new.model.state_dict().items()}
    return state, [r["loss"] for r in trainer.step_log]


@pytest.mark.parametrize("method", ["penalty", "proximal"])
@pytest.mark.parametrize("start", [{"l1_start_step": 6}, {"l1_start_epoch": 2}])  # 4 steps/epoch
def test_l1_switched_on_late(method, start):
    lam, lr, k = 0.05, 0.1, 8 if "l1_start_epoch" in start else 6
    late = {"l1": lam, "l1_method": method, **start}
    plain_k, losses_k = run_state({}, k)
    late_k, late_losses_k = run_state(late, k)
    # before the switch: the unregularized run, bit for bit
    assert all(torch.equal(plain_k[n], late_k[n]) for n in plain_k)
    assert late_losses_k == losses_k
    # the first step after it: the same data step, plus L1's, on the weights only
    plain, _ = run_state({}, k + 1)
    late, _ = run_state(late, k + 1)
    w_prev, w_plain = plain_k["weight"], plain["weight"]
    if method == "penalty":
        expected = w_plain - lr * lam * torch.sign(w_prev)
    else:
        expected = torch.sign(w_plain) * (w_plain.abs() - lr * lam).clamp_min(0)
    torch.testing.assert_close(late["weight"], expected, rtol=0, atol=1e-14)
    assert not torch.equal(late["weight"], w_plain)
    assert torch.equal(late["bias"], plain["bias"])


def test_a_penalty_scaled_by_a_schedule_of_the_step():
    """``c(t) * l1`` with c = 0 for t < 3, then 2: step 4 adds twice L1's step."""
    lam, lr = 0.05, 0.1

    def weights_after(steps: int, scheduled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        problem = regression_problem()
        callbacks = []
        if scheduled:
            pen = ScheduledPenalty(l1(problem.model, lam), schedule=lambda t: 2.0 * (t >= 3))
            problem, callbacks = with_penalty(problem, pen), [pen]
        opt = torch.optim.SGD(problem.model.parameters(), lr=lr)
        Trainer(problem, opt, steps=steps, batch_size=8, callbacks=callbacks).run()
        return problem.model.weight.detach().clone(), problem.model.bias.detach().clone()

    w3, b3 = weights_after(3, False)
    assert torch.equal(weights_after(3, True)[0], w3)
    w4, b4 = weights_after(4, False)
    w4_scheduled, b4_scheduled = weights_after(4, True)
    expected = w4 - lr * 2.0 * lam * torch.sign(w3)
    torch.testing.assert_close(w4_scheduled, expected, rtol=0, atol=1e-14)
    assert torch.equal(b4_scheduled, b4)


def test_proximal_l1_outside_a_run_needs_its_params():
    w = nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=0.1)
    ProximalL1(0.5, [w]).apply(opt)
    assert w.tolist() == [0.95, 0.95]
    with pytest.raises(OptimlabError, match="pass params="):
        ProximalL1(0.5).apply(opt)


def test_scheduled_penalty_needs_the_trainer_clock():
    w = nn.Parameter(torch.ones(2))
    pen = ScheduledPenalty(lambda: w.abs().sum(), start_step=3)
    with pytest.raises(OptimlabError, match="trainer's callbacks"):
        pen()


@pytest.mark.parametrize(
    "opts, match",
    [({"l1": 0.1, "l1_method": "prox"}, "l1_method 'prox'; valid: penalty, proximal"),
     ({"l1_method": "proximal"}, "l1_method needs l1"),
     ({"l1": 0.1, "l1_start_step": -1}, "l1_start_step: -1; valid: an integer >= 0"),
     ({"l1": 0.1, "l1_start_epoch": 1.5}, "l1_start_epoch"),
     ({"l1": 0.1, "l1_start_step": 2, "l1_start_epoch": 1}, "one of l1_start_step and"),
     ({"kl_sparsity": 0.0}, "kl_sparsity"), ({"kl_sparsity": 1.0, "kl_target": 1.0}, "kl_target"),
     ({"kl_target": 0.1}, "kl_target needs kl_sparsity")],
)  # fmt: skip
def test_invalid_options_are_one_line_errors(opts, match):
    with pytest.raises(OptimlabError, match=match) as err:
        options.validate(opts)
    assert "\n" not in str(err.value)


def test_command_line_flags_reach_the_options():
    from optimlab.cli.train import add_regularization_arguments, regularization_options

    p = argparse.ArgumentParser()
    add_regularization_arguments(p)
    args = p.parse_args(["--l1", "0.01", "--l1-method", "proximal", "--l1-start-epoch", "3",
                         "--kl-sparsity", "0.5", "--kl-target", "0.1"])  # fmt: skip
    assert regularization_options(args) == {
        "l1": 0.01, "l1_method": "proximal", "l1_start_epoch": 3, "kl_sparsity": 0.5,
        "kl_target": 0.1,
    }  # fmt: skip


def test_cli_train_with_proximal_l1_switched_on_late(tmp_path):
    from optimlab.cli import main

    argv = ["train", "--problem", "linreg", "--optimizer", "sgd", "--epochs", "2", "--quiet",
            "--l1", "0.05", "--l1-method", "proximal", "--l1-start-epoch", "1"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0


def test_study_files_take_the_keys_and_name_a_bad_one():
    from optimlab.lab import parse_study

    head = 'problems = ["linreg"]\n[[optimizers]]\nname = "sgd"\n'
    spec = parse_study(head + 'regularize = { l1 = 0.01, l1_method = "proximal", '
                       "l1_start_epoch = 2 }\n")  # fmt: skip
    assert spec.optimizers[0].regularize == {
        "l1": 0.01, "l1_method": "proximal", "l1_start_epoch": 2,
    }  # fmt: skip
    with pytest.raises(OptimlabError, match=r"line 4: .*regularize: invalid l1_method 'ista'"):
        parse_study(head + 'regularize = { l1 = 0.01, l1_method = "ista" }\n', source="s.toml")


def test_an_interrupted_late_proximal_run_resumes_bit_identically(tmp_path):
    from optimlab.run import RunConfig, build_run

    settings = dict(
        problem="linreg", optimizer="sgd", lr=0.05, epochs=3, seed=2, checkpoint_every=10,
        regularize={"l1": 0.5, "l1_method": "proximal", "l1_start_step": 15},
    )  # fmt: skip
    straight = build_run(RunConfig(**settings, out=str(tmp_path / "a")))
    straight_result = straight.fit()
    crashed = RunConfig(**settings, out=str(tmp_path / "b"))
    with pytest.raises(Crash):
        build_run(crashed, callbacks=[CrashAt(step=23)]).fit()
    resumed = build_run(crashed, resume=True)
    result = resumed.fit()
    assert resumed.trainer.resumed_from["step"] == 20
    weights = straight.trainer.model.state_dict()
    assert_same_result(straight_result, weights, result, resumed.trainer.model.state_dict())
    assert (weights["weight"] == 0).any()  # the threshold did act after step 15


def test_proximal_l1_is_refused_where_servers_apply_the_optimizer():
    from optimlab.run import RunConfig

    with pytest.raises(OptimlabError, match="l1_method proximal is not available with parallel "
                       "downpour; valid: parallel none, sync, local_sgd or hogwild"):  # fmt: skip
        RunConfig(problem="linreg", optimizer="sgd", parallel="downpour", nproc=2,
                  regularize={"l1": 0.1, "l1_method": "proximal"})  # fmt: skip
