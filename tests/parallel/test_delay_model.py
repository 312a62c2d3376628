"""The delay model: asynchronous methods replayed in one process with a seeded
staleness (``simulate_delay``), checked against the serial methods and against plain
loops of the papers' updates (float64, logistic regression on digits: 21 steps per
epoch)."""

from __future__ import annotations

import json

import pytest
import torch
from interrupting import Crash, CrashAt
from torch.func import functional_call

from optimlab.errors import OptimlabError
from optimlab.parallel.delay import parse_delay
from optimlab.run import RunConfig, build_run
from optimlab.train.batching import make_loader

BASE = {"problem": "logreg_digits", "lr": 0.1, "dtype": "float64", "epochs": 2, "threads": 1,
        "log_every": 5}  # fmt: skip
STALENESS_KEYS = {"staleness_mean", "staleness_max", "updates", "time"}


def fit(config, **kwargs):
    run = build_run(config, **kwargs)
    result = run.fit()
    return run, result


def weights(run):
    return {k: v.clone() for k, v in run.problem.model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def records(result, drop=STALENESS_KEYS):
    return [{k: v for k, v in r.items() if k not in drop} for r in result.history]


@pytest.mark.parametrize("parallel", ["downpour", "delay_tolerant"])
def test_staleness_zero_is_the_server_rule_run_serially(parallel):
    config = RunConfig(**BASE, optimizer="adagrad", hp={"initial_accumulator_value": 0.1})
    serial_run, serial = fit(config)
    run, simulated = fit(config.replace(parallel=parallel, simulate_delay="fixed:0"))
    assert same(weights(run), weights(serial_run))
    assert records(simulated) == records(serial, drop={"time"})
    assert [r["staleness_max"] for r in simulated.history] == [0, 0]
    assert [r["updates"] for r in simulated.history] == [21, 42]


def stale_sgd(config, k):
    """Plain SGD whose step t uses the gradient at the weights of step max(t - k, 0)."""
    run = build_run(config.replace(parallel="none", simulate_delay=None))
    model, loss_fn = run.problem.model, run.problem.loss_fn
    names = [name for name, _ in model.named_parameters()]
    history = [[p.detach().clone() for p in model.parameters()]]
    train = run.problem.splits.train
    loader = make_loader(train.x, train.y, run.problem.batch_size, seed=config.seed)
    for epoch in range(config.epochs):
        for xb, yb in loader.epoch(epoch):
            stale = history[max(len(history) - 1 - k, 0)]
            params = {n: w.clone().requires_grad_() for n, w in zip(names, stale, strict=True)}
            loss = loss_fn(functional_call(model, params, (xb,)), yb)
            grads = torch.autograd.grad(loss, list(params.values()))
            history.append([w - config.lr * g for w, g in zip(history[-1], grads, strict=True)])
    return dict(zip(names, history[-1], strict=True))


def test_fixed_staleness_is_sgd_with_old_gradients(tmp_path):
    k = 3
    config = RunConfig(**BASE, optimizer="sgd", parallel="downpour",
                       simulate_delay=f"fixed:{k}", out=str(tmp_path))  # fmt: skip
    run, result = fit(config)
    assert same(weights(run), stale_sgd(config, k))
    assert not same(weights(run), stale_sgd(config, 0))  # the delay changed the run
    recorded = json.loads((tmp_path / "staleness.json").read_text())["shards"]
    assert recorded == [[0, 1, 2] + [3] * 39]  # the first fetches find fewer versions
    last = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert last[-1]["staleness_mean"] == 3.0 and last[-1]["staleness_max"] == 3


def test_a_recorded_trace_is_replayed(tmp_path):
    (tmp_path / "staleness.json").write_text(json.dumps({"shards": [[2, 2], [2]]}))
    config = RunConfig(**BASE, optimizer="sgd", parallel="downpour", simulate_delay="fixed:2")
    fixed, _ = fit(config)
    traced, _ = fit(config.replace(simulate_delay=f"trace:{tmp_path}"))
    assert same(weights(traced), weights(fixed))
    assert parse_delay(f"trace:{tmp_path / 'staleness.json'}").values == (2, 2, 2)


def test_uniform_staleness_is_drawn_from_the_seed():
    config = RunConfig(**BASE, optimizer="adagrad", parallel="delay_tolerant",
                       simulate_delay="uniform:4")  # fmt: skip
    (one, _), (two, _) = fit(config), fit(config)
    assert same(weights(one), weights(two))
    drawn = one.trainer.world.staleness[0]
    assert set(drawn) <= set(range(5)) and len(set(drawn[5:])) == 5  # every value occurs
    other, _ = fit(config.replace(seed=1))
    assert other.trainer.world.staleness[0] != drawn


@pytest.mark.parametrize(
    ("crash", "checkpoint"),
    [(15, {"epoch": 0, "step": 10}),  # mid-epoch: the replica's own weights in the model
     (27, {"epoch": 1, "step": 21})],  # epoch end: the server's weights in the model
)  # fmt: skip
def test_a_simulated_run_resumes_exactly(tmp_path, crash, checkpoint):
    config = RunConfig(**BASE, optimizer="adagrad", parallel="delay_tolerant",
                       simulate_delay="uniform:3", n_push=2, checkpoint_every=10)  # fmt: skip
    straight, done = fit(config.replace(out=str(tmp_path / "straight")))
    with pytest.raises(Crash):
        fit(config.replace(out=str(tmp_path / "cut")), callbacks=[CrashAt(crash)])
    resumed, again = fit(config.replace(out=str(tmp_path / "cut")))
    assert resumed.trainer.resumed_from == checkpoint
    assert same(weights(resumed), weights(straight))
    assert records(again, drop={"time"}) == records(done, drop={"time"})
    staleness = [(tmp_path / d / "staleness.json").read_text() for d in ("straight", "cut")]
    assert staleness[0] == staleness[1]


def elastic_loop(config, k, alpha, period, delta):
    """Asynchronous EASGD (Algorithm 1; EAMSGD, Algorithm 2, for delta > 0) of one
    worker whose reads of the center are k exchanges old. Returns (center, worker)."""
    run = build_run(config.replace(parallel="none", simulate_delay=None, easgd_rho=None,
                                   easgd_period=None, easgd_momentum=None))  # fmt: skip
    model, loss_fn = run.problem.model, run.problem.loss_fn
    names = [name for name, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    x = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    v = torch.zeros_like(x)
    centers = [x.clone()]
    train = run.problem.splits.train
    loader = make_loader(train.x, train.y, run.problem.batch_size, seed=config.seed)
    t = 0
    for epoch in range(config.epochs):
        for xb, yb in loader.epoch(epoch):
            point = x + delta * v
            params = {n: c.view_as(p).clone().requires_grad_() for n, c, p in
                      zip(names, point.split(sizes), model.parameters(), strict=True)}  # fmt: skip
            loss = loss_fn(functional_call(model, params, (xb,)), yb)
            g = torch.cat([d.reshape(-1) for d in torch.autograd.grad(loss, list(params.values()))])
            if t % period == 0:
                read = centers[max(len(centers) - 1 - k, 0)]
                d = alpha * (x - read)
                x = x - d
                centers.append(centers[-1] + d)
            if delta:
                v = delta * v - config.lr * g
                x = x + v
            else:
                x = x - config.lr * g
            t += 1
    return centers[-1], x


@pytest.mark.parametrize("delta", [0.0, 0.6])
def test_async_easgd_with_stale_center_reads_is_the_papers_loop(delta):
    k, rho, period = 2, 3.0, 2
    config = RunConfig(**BASE, optimizer="sgd", parallel="easgd_async",
                       simulate_delay=f"fixed:{k}", easgd_rho=rho, easgd_period=period,
                       easgd_momentum=delta or None)  # fmt: skip
    run, result = fit(config)
    center, worker = elastic_loop(config, k, config.lr * rho, period, delta)
    model = torch.cat([p.detach().reshape(-1) for p in run.problem.model.parameters()])
    replica = run.trainer.optimizer
    mine = replica.x if delta else replica.view
    assert torch.allclose(model, center, rtol=0, atol=1e-13)
    assert torch.allclose(mine, worker, rtol=0, atol=1e-13)
    assert result.history[-1]["updates"] == 21  # one exchange every 2 of 42 steps
    assert result.history[-1]["staleness_max"] == k


def test_easgd_with_rho_zero_leaves_the_worker_to_sgd():
    config = RunConfig(**BASE, optimizer="sgd")
    serial, _ = fit(config)
    run, _ = fit(config.replace(parallel="easgd_async", simulate_delay="uniform:3", easgd_rho=0.0))
    flat = torch.cat([p.reshape(-1) for p in weights(serial).values()])
    assert torch.equal(run.trainer.optimizer.view, flat)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"simulate_delay": "fixed:-1"},
         "invalid simulate_delay 'fixed:-1': '-1' is not a whole number >= 0; valid: fixed:K"),
        ({"simulate_delay": "poisson:2"}, "invalid simulate_delay 'poisson:2': unknown kind"),
        ({"simulate_delay": "trace:/nonexistent/run"}, "no file '/nonexistent/run'"),
        ({"simulate_delay": "fixed:2", "nproc": 2},
         "invalid nproc: 2 with simulate_delay; valid: 1"),
        ({"simulate_delay": "fixed:2", "servers": 2},
         "servers is not available with simulate_delay"),
        ({"parallel": "sync", "simulate_delay": "fixed:2"},
         "simulate_delay needs parallel downpour or delay_tolerant or easgd_async"),
        ({"n_fetch": 0}, "invalid n_fetch: 0; valid range is [1, inf]"),
        ({"parallel": "easgd", "n_push": 2}, "n_push needs parallel downpour or delay_tolerant"),
    ],
)  # fmt: skip
def test_bad_delay_settings_are_named(settings, expected):
    given = {"parallel": "downpour", **settings}
    with pytest.raises(OptimlabError) as err:
        RunConfig(**BASE, optimizer="sgd", **given)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
