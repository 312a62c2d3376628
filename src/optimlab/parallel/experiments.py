"""The experiments of docs/parallel.md (``examples/parallel_experiments.py`` runs them):

    python examples/parallel_experiments.py staleness [--problem sparse_logreg]
    python examples/parallel_experiments.py easgd       # real processes (2 workers)

``staleness``: accuracy against staleness for Downpour with AdaGrad on the server and
with delay-tolerant AdaGrad (AdaRevision), through the delay model (every fetch ``K``
updates old, ``simulate_delay fixed:K``), each rule at each ``K`` with every learning
rate of a grid, and the best one by final validation loss: logistic regression on
digits (20 epochs, 420 updates) or the sparse logistic regression (2 epochs, 1126
updates). It runs in one process; the same command gives the same table.

``easgd``: synchronous EASGD with 2 worker processes on the digits MLP, over a grid of
the elastic strength ``rho`` and the communication period ``tau``, against synchronous
SGD on the same global batches. The model measured is the center.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from typing import Any

# problem -> (epochs, staleness values K, learning rates)
STALENESS = {
    "logreg_digits": (20, (0, 4, 16, 64), (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)),
    "sparse_logreg": (2, (0, 16, 64, 256), (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)),
}
RULES = {"downpour": "AdaGrad", "delay_tolerant": "AdaRevision"}
RHOS = (1.0, 4.0, 10.0)
TAUS = (1, 4, 16)


def _final(summary_or_history: Any) -> dict[str, float]:
    """The last epoch's record of a run (a RunResult's history or a summary)."""
    if isinstance(summary_or_history, dict):
        return dict(summary_or_history["final"])
    return dict(summary_or_history[-1])


def staleness(problem: str = "logreg_digits") -> list[dict[str, Any]]:
    """One row per (rule, K, lr): the final epoch's losses and accuracies."""
    from optimlab.run import RunConfig, build_run

    epochs, ks, lrs = STALENESS[problem]
    rows = []
    for parallel in RULES:
        for k in ks:
            for lr in lrs:
                config = RunConfig(problem=problem, optimizer="adagrad", lr=lr,
                                   epochs=epochs, threads=1, parallel=parallel,
                                   simulate_delay=f"fixed:{k}", log_every=1000)  # fmt: skip
                final = _final(build_run(config).fit().history)
                rows.append({"rule": parallel, "k": k, "lr": lr, **final})
    return rows


def best_by_validation(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """For each (rule, K), the row of the lr with the lowest final validation loss
    (a diverged run's NaN never wins)."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        key = (row["rule"], row["k"])
        value = row["val_loss"] if math.isfinite(row["val_loss"]) else math.inf
        if key not in best or value < best[key]["val_loss"]:
            best[key] = row
    return best


def staleness_table(rows: list[dict[str, Any]]) -> str:
    best = best_by_validation(rows)
    ks = sorted({r["k"] for r in rows})
    lrs = sorted({r["lr"] for r in rows})
    lines = ["| K (updates) | " + " | ".join(
        f"{name}: val loss (lr), test acc." for name in RULES.values()) + " |",
        "|---|" + "---|" * len(RULES)]  # fmt: skip
    for k in ks:
        cells = []
        for rule in RULES:
            r = best[(rule, k)]
            cells.append(f"{r['val_loss']:.3f} ({r['lr']:g}), {r['test_accuracy']:.3f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "Every learning rate (final validation loss):", "",
              "| rule | K | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " |",
              "|---|---|" + "---|" * len(lrs)]  # fmt: skip
    for rule in RULES:
        for k in ks:
            by_lr = {r["lr"]: r["val_loss"] for r in rows if r["rule"] == rule and r["k"] == k}
            cells = " | ".join(f"{by_lr[lr]:.3f}" for lr in lrs if lr in by_lr)
            lines.append(f"| {RULES[rule]} | {k} | {cells} |")
    return "\n".join(lines)


def easgd(rhos: Sequence[float] = RHOS, taus: Sequence[int] = TAUS, epochs: int = 4,
          nproc: int = 2) -> list[dict[str, Any]]:  # fmt: skip
    """Synchronous EASGD over the (rho, tau) grid and synchronous SGD, each launched in
    ``nproc`` processes (digits_mlp, SGD with lr 0.05, global batches of 32)."""
    from optimlab.parallel.launch import LaunchOptions, launch
    from optimlab.run import RunConfig

    base = {"problem": "digits_mlp", "optimizer": "sgd", "lr": 0.05, "epochs": epochs,
            "threads": 1, "nproc": nproc, "log_every": 1000}  # fmt: skip
    rows = []
    summary = launch(RunConfig(**base, parallel="sync"), LaunchOptions(), resume=False)
    rows.append({"method": "sync", "rho": None, "tau": 1, **_final(summary)})
    for rho in rhos:
        for tau in taus:
            config = RunConfig(**base, parallel="easgd", easgd_rho=rho, easgd_period=tau)
            summary = launch(config, LaunchOptions(), resume=False)
            rows.append({"method": "easgd", "rho": rho, "tau": tau, **_final(summary)})
    return rows


def easgd_table(rows: list[dict[str, Any]], lr: float = 0.05, nproc: int = 2) -> str:
    lines = ["| method | rho | alpha = lr rho | tau | exchanges per worker | center's val loss "
             "| val acc. | test acc. |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        steps = r["step"]
        if r["method"] == "sync":
            lines.append(f"| sync SGD | - | - | - | {steps} all-reduces of gradients | "
                         f"{r['val_loss']:.3f} | {r['val_accuracy']:.3f} | "
                         f"{r['test_accuracy']:.3f} |")  # fmt: skip
            continue
        exchanges = math.ceil(steps / r["tau"])
        lines.append(f"| EASGD | {r['rho']:g} | {lr * r['rho']:g} | {r['tau']} | {exchanges} | "
                     f"{r['val_loss']:.3f} | {r['val_accuracy']:.3f} | "
                     f"{r['test_accuracy']:.3f} |")  # fmt: skip
    return "\n".join(lines)


EXPERIMENTS = ("staleness", "easgd")


def report(experiment: str, problem: str = "logreg_digits") -> str:
    """The machine line and the Markdown table of one experiment."""
    import torch

    from optimlab.errors import unknown_name

    if experiment not in EXPERIMENTS:
        raise unknown_name("experiment", experiment, EXPERIMENTS)
    head = (f"machine: {platform.machine()}, {torch.get_num_threads()} threads available, "
            f"torch {torch.__version__}")  # fmt: skip
    if experiment == "staleness":
        if problem not in STALENESS:
            raise unknown_name("problem", problem, STALENESS)
        return f"{head}\nproblem: {problem}\n{staleness_table(staleness(problem))}"
    return f"{head}\n{easgd_table(easgd())}"
