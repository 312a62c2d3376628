"""``optimlab bench kfac``: K-FAC's training time against SGD's, side by side.

Both contenders train the same problem (``fmnist_mlp`` by default, DeepOBS' 784-1000-500-
100-10 ReLU MLP on Fashion-MNIST; ``digits_mlp`` where Fashion-MNIST's files are missing)
from the same initial weights on the same batches, each step as the Trainer takes it:
SGD runs forward, backward and ``step()``; K-FAC runs ``step(closure)``, the closure doing
the forward and backward pass. The runs advance in rounds of ``steps`` optimizer steps,
alternating (the order rotates each round), each round continuing its contender's own
run, after one warm-up round each that is not counted. The medians of the rounds' wall
and process CPU times give the ratio K-FAC / SGD, and the epoch time as the round's time
times the steps per epoch over ``steps`` (a whole epoch of fmnist_mlp is 469 steps).

With ``steps`` a multiple of K-FAC's inverse refresh interval, every round holds the
same share of refreshes. Goal: K-FAC <= 2x SGD's epoch time.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import time
from typing import Any

import torch

from optimlab.bench.parallel import default_problem, machine
from optimlab.errors import check_range

GOAL = 2.0


def _runner(name: str, problem: Any, model: torch.nn.Module, hp: dict[str, Any]):
    """A function that trains ``model`` on the given batches, and the losses it saw."""
    from optimlab import optim

    opt = optim.create(name, model.parameters(), **hp)
    loss_fn = problem.loss_fn
    losses: list[float] = []

    def train(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        for xb, yb in batches:
            if getattr(opt, "needs_closure", False):

                def closure(xb=xb, yb=yb) -> torch.Tensor:
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(model(xb), yb)
                    loss.backward()
                    return loss

                loss = opt.step(closure)
            else:
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
            losses.append(loss.detach())

    return opt, train, losses


def bench_kfac(
    problem: str | None = None,
    *,
    steps: int = 100,
    rounds: int = 3,
    batch_size: int | None = None,
    kfac: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Median seconds per round of ``steps`` steps of SGD and K-FAC, and their ratio."""
    from optimlab import optim, problems

    check_range("steps", steps, 1)
    check_range("rounds", rounds, 1)
    name = problem or default_problem()
    built = problems.build(name, seed=seed)
    x, y = built.splits.train.x, built.splits.train.y
    batch = batch_size or built.batch_size
    check_range("batch_size", batch, 1)
    kfac_hp = {**optim.get("kfac").hyperparameters(), **(kfac or {})}
    sgd_hp = {"lr": built.lr_hint or optim.get("sgd").hyperparameters()["lr"]}
    contenders = {
        "sgd": _runner("sgd", built, copy.deepcopy(built.model), sgd_hp),
        "kfac": _runner("kfac", built, copy.deepcopy(built.model), kfac_hp),
    }
    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []

    def next_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
        nonlocal order
        out = []
        for _ in range(steps):
            if len(order) < batch:
                order = torch.randperm(len(x), generator=gen).tolist()
            idx = torch.tensor(order[:batch])
            order = order[batch:]
            out.append((x[idx], y[idx]))
        return out

    wall: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    names = list(contenders)
    for r in range(rounds + 1):  # round 0 warms up
        batches = next_batches()
        for who in names[r % 2 :] + names[: r % 2]:
            t0, c0 = time.perf_counter(), time.process_time()
            contenders[who][1](batches)
            if r:
                wall[who].append(time.perf_counter() - t0)
                cpu[who].append(time.process_time() - c0)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    per_epoch = math.ceil(len(x) / batch)
    return {
        "problem": name,
        "batch_size": batch,
        "steps": steps,
        "rounds": rounds,
        "steps_per_epoch": per_epoch,
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "load": (load_before, load_after),
        "sgd": sgd_hp,
        "kfac": {k: kfac_hp[k] for k in ("fisher", "cov_interval", "inv_interval", "kl_clip")},
        "seconds_per_round": med,
        "cpu_seconds_per_round": med_cpu,
        "seconds_per_epoch": {k: v * per_epoch / steps for k, v in med.items()},
        "last_round_loss": {
            k: float(torch.stack(c[2][-steps:]).mean()) for k, c in contenders.items()
        },
        "kfac_over_sgd": med["kfac"] / med["sgd"],
        "cpu_kfac_over_sgd": med_cpu["kfac"] / med_cpu["sgd"],
    }


def format_result(r: dict[str, Any]) -> str:
    k = r["kfac"]
    lines = [
        f"kfac: {r['problem']}, batch {r['batch_size']}, {r['machine']}, {r['threads']} "
        f"threads; load average {r['load'][0]:.1f} before, {r['load'][1]:.1f} after",
        f"  median of {r['rounds']} interleaved rounds of {r['steps']} steps (after a warm-up "
        f"round); epoch = {r['steps_per_epoch']} steps; wall / process CPU time",
        f"  K-FAC: fisher {k['fisher']}, factors every {k['cov_interval']}, inverses every "
        f"{k['inv_interval']} steps, kl_clip {k['kl_clip']}; SGD: lr {r['sgd']['lr']}",
    ]
    for who in ("sgd", "kfac"):
        lines.append(
            f"  {who:5s} {r['seconds_per_round'][who] / r['steps'] * 1e3:8.1f} / "
            f"{r['cpu_seconds_per_round'][who] / r['steps'] * 1e3:8.1f} ms per step  "
            f"{r['seconds_per_epoch'][who]:7.1f} s per epoch  "
            f"mean loss of the last round {r['last_round_loss'][who]:.4f}"
        )
    verdict = "met" if r["kfac_over_sgd"] <= GOAL else "not met"
    lines.append(
        f"  K-FAC / SGD: {r['kfac_over_sgd']:.2f}x wall, {r['cpu_kfac_over_sgd']:.2f}x CPU "
        f"(goal <= {GOAL:g}x: {verdict})"
    )
    return "\n".join(lines)


def run_kfac_bench(problem: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Entry point of ``optimlab bench kfac``: measure and print."""
    r = bench_kfac(problem, **kwargs)
    print(format_result(r), flush=True)
    return r
