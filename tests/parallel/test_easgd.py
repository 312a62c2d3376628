"""Synchronous and asynchronous elastic averaging SGD on real processes (gloo over
loopback), checked against SGD and against a plain loop of the paper's equations."""

from __future__ import annotations

import json

import pytest
import torch
from interrupting import Crash, CrashAt
from launching import final_weights, optimlab
from torch.func import functional_call

from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.run import RunConfig, build_run
from optimlab.train.batching import make_loader
from optimlab.train.distributed import share_bounds

ARGS = ["--problem", "logreg_digits", "--optimizer", "sgd", "--lr", "0.1", "--dtype", "float64",
        "--epochs", "2", "--threads", "1", "--quiet"]  # fmt: skip


def flat(weights):
    return torch.cat([w.reshape(-1) for w in weights.values()])


def checkpoint(out):
    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)


def test_one_worker_without_elastic_force_is_sgd(tmp_path):
    assert main(["train", *ARGS, "--out", str(tmp_path / "sgd")]) == 0
    proc = optimlab("train", *ARGS, "--parallel", "easgd", "--nproc", "1", "--easgd-rho", "0",
                    "--out", str(tmp_path / "easgd"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    worker = checkpoint(tmp_path / "easgd")["optimizer"]["replica"]["weights"]
    assert torch.equal(worker, flat(final_weights(tmp_path / "sgd")))
    # the center, which the run evaluates, stayed where it started
    start = build_run(RunConfig(problem="logreg_digits", optimizer="sgd", dtype="float64"))
    assert torch.equal(flat(final_weights(tmp_path / "easgd")),
                       flat(start.problem.model.state_dict()))  # fmt: skip


def synchronous_loop(config, workers, alpha, period):
    """Equations (5)-(6) of Zhang et al. with an exchange every ``period`` steps: worker
    ``r`` steps on share ``r`` of every global batch. Returns (center, [x_r])."""
    run = build_run(RunConfig(problem=config["problem"], optimizer="sgd", dtype="float64"))
    model, loss_fn = run.problem.model, run.problem.loss_fn
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    center = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    xs = [center.clone() for _ in range(workers)]
    train = run.problem.splits.train
    loader = make_loader(train.x, train.y, run.problem.batch_size, seed=0)
    t = 0
    for epoch in range(config["epochs"]):
        for xb, yb in loader.epoch(epoch):
            grads = []
            for r, x in enumerate(xs):
                lo, hi = share_bounds(len(xb), r, workers)
                params = {n: c.view_as(p).clone().requires_grad_() for n, c, p in
                          zip(names, x.split(sizes), model.parameters(), strict=True)}  # fmt: skip
                loss = loss_fn(functional_call(model, params, (xb[lo:hi],)), yb[lo:hi])
                parts = torch.autograd.grad(loss, list(params.values()))
                grads.append(torch.cat([g.reshape(-1) for g in parts]))
            if t % period == 0:
                diffs = [alpha * (x - center) for x in xs]
                xs = [x - d for x, d in zip(xs, diffs, strict=True)]
                center = center + sum(diffs)
            xs = [x - config["lr"] * g for x, g in zip(xs, grads, strict=True)]
            t += 1
    return center, xs


def test_two_synchronous_workers_follow_the_papers_equations(tmp_path):
    out = tmp_path / "easgd"
    proc = optimlab("train", *ARGS, "--parallel", "easgd", "--nproc", "2", "--easgd-rho", "2",
                    "--easgd-period", "3", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    center, xs = synchronous_loop({"problem": "logreg_digits", "epochs": 2, "lr": 0.1},
                                  workers=2, alpha=0.2, period=3)  # fmt: skip
    state = checkpoint(out)
    assert torch.allclose(flat(state["model"]), center, rtol=0, atol=1e-12)  # evaluated: c
    for rank, x in enumerate(xs):
        mine = state["ranks"][rank]["optimizer"]["replica"]
        assert torch.allclose(mine["weights"], x, rtol=0, atol=1e-12)
        assert torch.equal(
            mine["own"]["center"]["center"],
            state["ranks"][0]["optimizer"]["replica"]["own"]["center"]["center"],
        )  # every process keeps the same center
    assert not torch.allclose(xs[0], xs[1])  # the workers did differ


@pytest.mark.slow  # 3 processes; the server and the stale-center worker are tested faster
def test_asynchronous_workers_train_the_center_on_a_server(tmp_path):
    out = tmp_path / "async"
    proc = optimlab("train", *ARGS, "--parallel", "easgd_async", "--nproc", "3", "--easgd-rho",
                    "2", "--easgd-period", "2", "--easgd-momentum", "0.5",
                    "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # worker 0 steps 11 times per epoch and worker 1 10 times (of 21 batches); each
    # exchanges on its steps 0, 2, 4, ...: 6 + 5 in the first epoch, 5 + 5 in the second
    assert [r["updates"] for r in records] == [11, 21]
    assert records[-1]["val_accuracy"] > 0.8  # the center's, moved only by the exchanges


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"easgd_rho": 20.0}, "invalid easgd_rho: 20; alpha = lr * rho = 2 exceeds 1"),
        ({"easgd_rho": 6.0, "nproc": 2},
         "invalid easgd_rho: 6; beta = processes * alpha = 1.2 exceeds 1"),
        ({"easgd_momentum": 0.9, "optimizer": "adam"},
         "invalid optimizer 'adam' with easgd_momentum (EAMSGD)"),
        ({"easgd_momentum": 1.0}, "invalid easgd_momentum: 1.0; valid range is [0, 1)"),
        ({"parallel": "sync", "easgd_period": 2},
         "easgd_period needs parallel easgd or easgd_async"),
    ],
)  # fmt: skip
def test_bad_elastic_settings_are_named(settings, expected):
    given = {"parallel": "easgd", "optimizer": "sgd", "lr": 0.1, **settings}
    with pytest.raises(OptimlabError) as err:
        RunConfig(problem="logreg_digits", **given)
    assert expected in str(err.value)


def test_a_synchronous_run_resumes_exactly(tmp_path):
    # One worker in a process group of this process: the checkpoint must hold the
    # worker's weights, its velocity (EAMSGD) and the center, not only the evaluated model.
    import torch.distributed as dist

    from optimlab.parallel.easgd import EasgdWorld
    from optimlab.parallel.world import Place

    config = RunConfig(problem="logreg_digits", optimizer="sgd", lr=0.1, dtype="float64",
                       epochs=2, threads=1, parallel="easgd", easgd_rho=2.0, easgd_period=3,
                       easgd_momentum=0.5, checkpoint_every=8)  # fmt: skip
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)  # fmt: skip
    try:
        runs = {}
        for name, crash in (("straight", None), ("cut", CrashAt(30)), ("cut", None)):
            world = EasgdWorld(Place(0, 1, 0, 1), torch.device("cpu"), config)
            run = build_run(config.replace(out=str(tmp_path / name)), world=world,
                            callbacks=[crash] if crash else [])  # fmt: skip
            if crash:
                with pytest.raises(Crash):
                    run.fit()
                continue
            runs[name] = (run, run.fit())
    finally:
        dist.destroy_process_group()
    (straight, done), (resumed, again) = runs["straight"], runs["cut"]
    assert resumed.trainer.resumed_from == {"epoch": 1, "step": 24}
    for a, b in zip(straight.problem.model.parameters(), resumed.problem.model.parameters()):
        assert torch.equal(a, b)
    mine, theirs = straight.trainer.optimizer, resumed.trainer.optimizer
    assert torch.equal(mine.x, theirs.x) and torch.equal(mine.v, theirs.v)
    drop = {"time"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in done.history] == [
        {k: v for k, v in r.items() if k not in drop} for r in again.history
    ]
