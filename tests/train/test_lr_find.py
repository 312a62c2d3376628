"""The LR range test: sweep, smoothing, early stop, restoration, readings, CLI."""

from __future__ import annotations

import copy
import json
import math
import re
import time
from subprocess import PIPE

import numpy as np
import pytest
import torch
from torch import nn

from killed import optimlab_process, sigkill
from optimlab import optim, problems
from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.train.lr_find import LRFindLog, lr_find, lr_sequence, smooth, suggest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _scalar_model() -> nn.Module:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    return model


def _ema(values: list[float], beta: float) -> list[float]:
    """s_t as a weighted mean: sum_k beta^(t-k) (1-beta) l_k / (1 - beta^t)."""
    out = []
    for t in range(1, len(values) + 1):
        weights = [(1 - beta) * beta ** (t - k) for k in range(1, t + 1)]
        out.append(sum(w * v for w, v in zip(weights, values[:t])) / (1 - beta**t))
    return out


def _assert_same(a: object, b: object) -> None:
    """Nested dicts/lists of tensors and numbers are equal (tensors by torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


# ---- the sweep ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["exp", "linear"])
def test_lr_sequence_is_the_closed_form_on_every_group(mode):
    lo, hi, n = 1e-4, 3.0, 25
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    opt = torch.optim.SGD(
        [{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 0.5}], lr=0.1
    )
    seen: list[list[float]] = []

    def constant_loss(out, y):  # a flat loss: nothing diverges, every step is recorded
        seen.append([g["lr"] for g in opt.param_groups])
        return out.sum() * 0.0 + 1.0

    batches = [(torch.ones(4, 2), None)]
    result = lr_find(model, opt, constant_loss, batches, min_lr=lo, max_lr=hi, steps=n, mode=mode)
    if mode == "exp":
        want = [
            math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (n - 1)) for i in range(n)
        ]
    else:
        want = list(np.linspace(lo, hi, n))
    assert not result.stopped_early and len(result.lrs) == n
    np.testing.assert_allclose(result.lrs, want, rtol=1e-12)
    np.testing.assert_allclose(seen, [[lr, lr] for lr in want], rtol=1e-12)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]  # restored
    # A flat loss gives nothing to read: NaNs and a reason.
    assert math.isnan(result.suggested_lr) and all(map(math.isnan, result.bounds))
    assert "did not fall" in result.note


def test_a_tensor_lr_is_driven_in_place_and_restored():
    model = _scalar_model()
    lr = torch.tensor(0.25)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    seen = []

    def loss_fn(out, y):
        seen.append(float(opt.param_groups[0]["lr"]))
        return out.sum() * 0.0 + 1.0

    lr_find(model, opt, loss_fn, [(torch.ones(1, 1), None)], min_lr=1e-2, max_lr=1.0, steps=3)
    assert seen == pytest.approx([1e-2, 1e-1, 1.0], rel=1e-6)
    assert opt.param_groups[0]["lr"] is lr and float(lr) == 0.25


def test_short_iterables_are_cycled():
    model = _scalar_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    order: list[int] = []

    def loss_fn(out, y):
        order.append(int(y))
        return out.sum() * 0.0 + 1.0

    one_shot = ((torch.ones(1, 1), k) for k in range(3))
    lr_find(model, opt, loss_fn, one_shot, steps=8)
    assert order == [0, 1, 2, 0, 1, 2, 0, 1]
    order.clear()
    lr_find(model, opt, loss_fn, [(torch.ones(1, 1), 7), (torch.ones(1, 1), 8)], steps=5)
    assert order == [7, 8, 7, 8, 7]
    with pytest.raises(OptimlabError, match="batches"):
        lr_find(model, opt, loss_fn, [], steps=5)


# ---- smoothing ------------------------------------------------------------------------


def test_smoothing_is_the_bias_corrected_ema():
    # By hand, beta = 0.5: a = 0.5, 1.25, 2.125 over 1 - 0.5^t = 0.5, 0.75, 0.875.
    assert smooth([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 5 / 3, 17 / 7], rel=1e-12)
    assert smooth([2.0] * 5, 0.98) == pytest.approx([2.0] * 5, rel=1e-12)  # no start-up bias
    assert smooth([3.0, 1.0], 0.0) == [3.0, 1.0]

    values = [2.0, 1.5, 1.7, 1.1, 0.9, 1.0, 0.6]
    model = _scalar_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    it = iter(values)

    def scripted(out, y):
        return out.sum() * 0.0 + next(it)

    result = lr_find(model, opt, scripted, [(torch.ones(1, 1), None)], steps=7, smoothing=0.8)
    assert result.losses == pytest.approx(values, rel=1e-6)
    assert result.smoothed == pytest.approx(_ema(result.losses, 0.8), rel=1e-12)


# ---- early stop -----------------------------------------------------------------------


def test_stops_when_gradient_descent_diverges():
    # f(w) = w^2 (L = 2): w <- (1 - 2 lr) w contracts for lr < 1 and grows for lr > 1.
    model = _scalar_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = 80
    result = lr_find(
        model, opt, lambda out, y: out.pow(2).mean(), [(torch.ones(1, 1), None)],
        min_lr=1e-3, max_lr=1e3, steps=steps, smoothing=0.9,
    )  # fmt: skip
    assert result.stopped_early and len(result.lrs) < steps
    s = result.smoothed
    assert s[-1] > 4.0 * min(s[:-1])
    assert all(s[i] <= 4.0 * min(s[: i + 1]) for i in range(len(s) - 1))
    assert result.lrs[-1] > 1.0  # cannot diverge while GD still contracts
    assert torch.equal(model.weight, torch.ones(1, 1))  # restored


def test_a_non_finite_loss_stops_the_test():
    model = _scalar_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def loss_fn(out, y):
        calls.append(1)
        return out.sum() * 0.0 + (math.nan if len(calls) == 6 else 1.0)

    result = lr_find(model, opt, loss_fn, [(torch.ones(1, 1), None)], steps=20)
    assert result.stopped_early and len(result.lrs) == 6 and math.isnan(result.losses[-1])


def _strict_json(text: str) -> dict:
    """JSON as the standard has it: NaN and Infinity are refused."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} in the file")

    return json.loads(text, parse_constant=refuse)


def test_the_log_saves_every_few_points_and_finishes_with_the_readings(tmp_path):
    model = _scalar_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "points.json"
    log = LRFindLog(path, {"problem": "w^2"}, every=4)
    sizes = []

    def on_point(lr, loss, smoothed):
        log.add(lr, loss, smoothed)
        sizes.append(len(_strict_json(path.read_text())["lr"]) if path.exists() else 0)

    result = lr_find(
        model, opt, lambda out, y: out.pow(2).mean(), [(torch.ones(1, 1), None)],
        min_lr=1e-3, max_lr=1e3, steps=80, smoothing=0.9, on_point=on_point,
    )  # fmt: skip
    n = len(result.lrs)
    assert sizes == [4 * (k // 4) for k in range(1, n + 1)]  # the file after each point
    partial = _strict_json(path.read_text())
    assert partial["finished"] is False and partial["settings"] == {"problem": "w^2"}
    assert partial["lr"] == result.lrs[: len(partial["lr"])]
    log.finish(result)
    done = _strict_json(path.read_text())
    assert done["finished"] is True and done["stopped_early"] is True
    assert done["lr"] == result.lrs and len(done["loss"]) == len(done["smoothed"]) == n
    assert done["suggested_lr"] == result.suggested_lr
    assert done["bounds"] == list(result.bounds)


# ---- restoration and readings on digits ------------------------------------------------


def test_digits_readings_lie_in_the_range_and_nothing_is_trained():
    problem = problems.build("digits_mlp", seed=0, batch_norm=True, dropout=0.1)
    model = problem.model
    opt = optim.create("adam", model.parameters(), lr=1e-3)
    loader = problem.loader("train")
    for x, y in list(loader.epoch(0))[:3]:  # some optimizer state and gradients to keep
        opt.zero_grad()
        problem.loss_fn(model(x), y).backward()
        opt.step()
    model.eval()
    model_before = copy.deepcopy(model.state_dict())
    opt_before = copy.deepcopy(opt.state_dict())
    grads_before = [p.grad.clone() for p in model.parameters()]
    moments = [opt.state[p]["exp_avg"] for p in model.parameters()]
    rng_before = torch.get_rng_state()
    first_before = next(model.parameters()).detach().clone()
    twin_model = copy.deepcopy(model)
    twin_opt = optim.create("adam", twin_model.parameters(), lr=1e-3)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))

    trained = {}

    def loss_fn(out, target):  # watch the weights move during the test
        trained["last"] = next(model.parameters()).detach().clone()
        return problem.loss_fn(out, target)

    lo, hi = 1e-6, 10.0
    result = lr_find(model, opt, loss_fn, problem.loader("train"), min_lr=lo, max_lr=hi)
    assert not torch.equal(trained["last"], first_before)  # the test did train

    assert result.note == ""
    base, top = result.bounds
    assert lo <= base < top <= hi
    assert lo <= result.suggested_lr <= hi
    i = result.lrs.index(result.suggested_lr)
    assert result.smoothed[i] < result.smoothed[0]  # the suggestion sits on the fall

    _assert_same(model.state_dict(), model_before)
    _assert_same(opt.state_dict(), opt_before)
    for p, g in zip(model.parameters(), grads_before):
        assert torch.equal(p.grad, g)
    assert not model.training
    assert all(opt.state[p]["exp_avg"] is m for p, m in zip(model.parameters(), moments))
    assert torch.equal(torch.get_rng_state(), rng_before)
    # Training on afterwards is exactly training without the test.
    x, y = next(iter(problem.loader("train").epoch(5)))
    for m, o in ((model, opt), (twin_model, twin_opt)):
        torch.manual_seed(1)  # the same dropout masks
        m.train()
        o.zero_grad()
        problem.loss_fn(m(x), y).backward()
        o.step()
    _assert_same(model.state_dict(), twin_model.state_dict())


def test_suggestion_and_bounds_on_a_known_curve():
    # s(u) = 2 - tanh(2 (u - c)), u = log10(lr): steepest at u = c, falls by D from s_top.
    c, n = -3.0, 161
    u = np.linspace(-7.0, 1.0, n)
    lrs = list(10.0**u)
    s = 2.0 - np.tanh(2.0 * (u - c))
    suggested, (base, top), note = suggest(lrs, list(s))
    step = u[1] - u[0]
    assert note == ""
    assert abs(math.log10(suggested) - c) <= step / 2 + 1e-12
    drop = s[0] - s[-1]
    for lr, frac in ((base, 0.1), (top, 0.9)):
        # the first u where s <= s_top - frac * D, solved for u in closed form
        u_star = c + math.atanh(2.0 - s[0] + frac * drop) / 2.0
        assert 0 <= math.log10(lr) - u_star < step + 1e-12


def test_abrupt_drop_takes_base_from_smiths_rule_of_thumb():
    lrs = [10.0**k for k in range(-6, 2)]
    s = [3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.1, 2.0]
    suggested, (base, top), _ = suggest(lrs, s)
    assert top == lrs[4] and base == pytest.approx(top / 4)
    assert suggested in lrs[:5]


def test_a_dip_on_the_plateau_is_not_the_start_of_the_fall():
    lrs = [10.0**k for k in range(-7, 3)]
    # s_top = 3, s_min = 1: the 10% level is 2.8 (index 1 dips below it), the 90% level 1.2
    s = [3.0, 2.75, 3.0, 3.0, 3.0, 2.5, 1.5, 1.0, 1.2, 2.0]
    _, (base, top), _ = suggest(lrs, s)
    assert (base, top) == (lrs[5], lrs[7])


# ---- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_lr": 0.0}, "min_lr"),
        ({"min_lr": -1e-3}, "min_lr"),
        ({"min_lr": 1e-2, "max_lr": 1e-2}, "max_lr"),
        ({"min_lr": 1e-2, "max_lr": 1e-3}, "max_lr"),
        ({"steps": 1}, "steps"),
        ({"mode": "cubic"}, "mode"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"diverge_factor": 1.0}, "diverge_factor"),
    ],
)
def test_invalid_settings_name_the_argument(kwargs, name):
    model = _scalar_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(OptimlabError, match=rf"invalid {name}: .*valid"):
        lr_find(model, opt, lambda o, y: o.sum(), [(torch.ones(1, 1), None)], **kwargs)
    assert torch.equal(model.weight, torch.ones(1, 1))


# ---- CLI -------------------------------------------------------------------------


def test_cli_prints_the_readings_and_writes_the_default_png(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["lr-find", "--problem", "digits_mlp", "--optimizer", "sgd", "--min-lr", "1e-5"]
    assert main([*argv, "--steps", "60"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "lr_find_digits_mlp_sgd.png").read_bytes()[:8] == PNG_MAGIC
    suggested = float(re.search(r"suggested\s+lr (\S+)", out).group(1))
    base, top = map(float, re.search(r"base_lr (\S+), max_lr (\S+)", out).groups())
    assert 1e-5 <= base < top <= 10.0 and 1e-5 <= suggested <= 10.0
    data = _strict_json((tmp_path / "lr_find_digits_mlp_sgd.json").read_text())
    assert data["finished"] is True and f"{data['suggested_lr']:.3g}" == f"{suggested:.3g}"
    assert data["settings"]["steps"] == 60 and data["settings"]["batch_size"] == 32
    assert data["stopped_early"] or len(data["lr"]) == 60
    assert data["lr"] == pytest.approx(lr_sequence(1e-5, 10.0, 60)[: len(data["lr"])])


def test_a_killed_lr_find_leaves_the_points_it_measured(tmp_path):
    """A real process, killed with SIGKILL mid-test: its data file is whole and holds the
    points measured up to its last save; the figure, drawn at the end, is not there."""
    steps, every = 1_000_000, 5
    data, figure = tmp_path / "lrf.json", tmp_path / "lrf.png"
    argv = ["lr-find", "--problem", "digits_mlp", "--optimizer", "sgd", "--min-lr", "1e-6",
            "--max-lr", "1e-3", "--steps", str(steps), "--save-every", str(every),
            "--out", str(figure)]  # fmt: skip
    with optimlab_process(*argv, stdout=PIPE, stderr=PIPE) as proc:
        deadline, seen = time.monotonic() + 600, 0
        while seen < 4 * every:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no points were saved"
            if data.exists():
                seen = len(_strict_json(data.read_text())["lr"])  # each read is whole
            time.sleep(0.05)
        sigkill(proc)
    saved = _strict_json(data.read_text())
    n = len(saved["lr"])
    assert saved["finished"] is False and n >= 4 * every and n % every == 0
    assert saved["settings"]["steps"] == steps and saved["settings"]["problem"] == "digits_mlp"
    assert saved["lr"] == pytest.approx(lr_sequence(1e-6, 1e-3, steps)[:n], rel=1e-12)
    assert len(saved["loss"]) == len(saved["smoothed"]) == n
    assert all(math.isfinite(v) for v in saved["loss"])
    assert saved["smoothed"] == pytest.approx(smooth(saved["loss"], 0.98), rel=1e-9)
    assert not figure.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--problem", "digitz", "--optimizer", "sgd"], "unknown problem 'digitz'"),
        (["--problem", "digits_mlp", "--optimizer", "sgdd"], "unknown optimizer 'sgdd'"),
        (["--problem", "digits_mlp", "--optimizer", "sgd", "--min-lr", "0"], "--min-lr"),
        (["--problem", "digits_mlp", "--optimizer", "sgd", "--steps", "1"], "--steps"),
        (["--problem", "digits_mlp", "--optimizer", "sgd", "--out", "a.jpg"], "--out"),
        (["--problem", "digits_mlp", "--optimizer", "sgd", "--hp", "lr=1"], "--hp lr"),
    ],
)
def test_cli_mistakes_exit_2_with_one_line(extra, message, capsys):
    assert main(["lr-find", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    if "unknown problem" in message:
        for name in problems.available():
            assert name in err


# ---- slow: does the suggestion train well? ----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_suggestion_beats_ten_times_smaller_and_larger(name):
    from optimlab.train import fit

    def final_loss(lr: float) -> float:
        problem = problems.build("digits_mlp", seed=0)
        opt = optim.create(name, problem.model.parameters(), lr=lr)
        history = fit(problem, opt, epochs=5, progress=False).history
        loss = history[-1]["loss"] if history else math.inf  # no epoch: diverged at once
        return loss if math.isfinite(loss) else math.inf

    problem = problems.build("digits_mlp", seed=0)
    opt = optim.create(name, problem.model.parameters())
    result = lr_find(problem.model, opt, problem.loss_fn, problem.loader("train"), steps=300)
    lr = result.suggested_lr
    assert final_loss(lr) < min(final_loss(lr / 10), final_loss(lr * 10))
