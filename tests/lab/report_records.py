"""Synthetic run records for the report tests, shaped like the lab runner's output.

The construction fixes what the report must find:
- digits_mlp: adam's final val_accuracy is far above sgd's (gap >> seed spread); one
  rmsprop final seed diverges and one sgd final seed fails with an empty history.
- fmnist_mlp: adam and sgd are drawn from the same spread, a small gap (within noise).
- quadratic: regression (loss only, no accuracy and no test split).
- Every run follows the same saturating curve, so per epoch the target is met at the same
  epoch by every optimizer whose final value clears it; adam's epochs take the least time,
  rmsprop's final values stay below every target. Adam is thus always fastest and
  rmsprop never reaches a target.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

EPOCHS = 8
STEPS_PER_EPOCH = 20
SECONDS_PER_EPOCH = {"adam": 1.0, "sgd": 1.5, "rmsprop": 1.2}
OPTIMIZERS = ("adam", "rmsprop", "sgd")
LRS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)

# Final val_accuracy per seed (classification) and final val_loss (regression).
FINALS = {
    "digits_mlp": {
        "adam": [0.962, 0.958, 0.965, 0.960, 0.957],
        "sgd": [0.905, 0.901, 0.908, 0.903],
        "rmsprop": [0.842, 0.838, 0.845, 0.840],
    },
    "fmnist_mlp": {
        "adam": [0.884, 0.871, 0.893, 0.876, 0.879],
        "sgd": [0.881, 0.868, 0.889, 0.874, 0.872],
        "rmsprop": [0.761, 0.752, 0.770, 0.758, 0.765],
    },
    "quadratic": {
        "adam": [0.021, 0.024, 0.020, 0.023, 0.022],
        "sgd": [0.035, 0.037, 0.033, 0.036, 0.034],
        "rmsprop": [0.30, 0.32, 0.29, 0.31, 0.33],
    },
}
TARGETS = {"digits_mlp": 0.93, "fmnist_mlp": 0.80, "quadratic": 0.05}


def progress(epoch: int) -> float:
    """The share of the way to the final value after ``epoch`` epochs (1 at the end)."""
    return (1 - math.exp(-epoch / 2)) / (1 - math.exp(-EPOCHS / 2))


def history(
    problem: str, optimizer: str, final: float, epochs: int = EPOCHS, test: bool = True
) -> list[dict[str, Any]]:
    """Metric rows moving from a poor start to ``final`` along ``progress``.

    Problems named ``*_mlp`` are classification (accuracy and loss), the rest regression.
    """
    rows = []
    for e in range(1, epochs + 1):
        f = progress(e)
        row: dict[str, Any] = {
            "epoch": e,
            "time": e * SECONDS_PER_EPOCH[optimizer],
            "step": e * STEPS_PER_EPOCH,
            "lr": 0.01,
        }
        if problem.endswith("_mlp"):
            acc = 0.1 + (final - 0.1) * f
            row.update(accuracy=acc + 0.01, loss=2.3 * (1.05 - acc), val_accuracy=acc)
            row["val_loss"] = 2.3 * (1.04 - acc)
            if test:
                row.update(test_accuracy=acc - 0.005, test_loss=2.3 * (1.06 - acc))
        else:
            loss = 1.0 + (final - 1.0) * f
            row.update(loss=loss * 0.9, val_loss=loss)
        rows.append(row)
    return rows


def run(
    problem: str,
    optimizer: str,
    phase: str,
    lr: float,
    seed: int,
    final: float,
    status: str = "completed",
    test: bool = True,
) -> dict[str, Any]:
    rows = history(problem, optimizer, final, test=test)
    return {
        "problem": problem,
        "label": optimizer,
        "name": optimizer,
        "phase": phase,
        "params": {"lr": lr},
        "seed": seed,
        "status": status,
        "history": rows,
        "final": dict(rows[-1]),
        "wall_time": rows[-1]["time"],
    }


def diverged(problem: str, optimizer: str, phase: str, lr: float, seed: int) -> dict[str, Any]:
    """A run whose loss explodes in epoch 3 and ends as NaN."""
    rows = history(problem, optimizer, 0.5)[:2]
    rows.append({"epoch": 3, "loss": math.inf, "val_loss": math.nan, "time": 3.0, "step": 60})
    rows[1]["loss"] = 1e6
    return {
        "problem": problem,
        "label": optimizer,
        "name": optimizer,
        "phase": phase,
        "params": {"lr": lr},
        "seed": seed,
        "status": "diverged",
        "history": rows,
        "final": dict(rows[1]),
        "wall_time": 3.0,
    }


def failed(problem: str, optimizer: str, phase: str, lr: float, seed: int) -> dict[str, Any]:
    return {
        "problem": problem,
        "label": optimizer,
        "name": optimizer,
        "phase": phase,
        "params": {"lr": lr},
        "seed": seed,
        "status": "failed",
        "history": [],
        "final": {},
        "error": "RuntimeError: CUDA out of memory (synthetic)\nTraceback ...",
        "wall_time": 0.1,
    }


def tuned_lr(optimizer: str) -> float:
    return {"adam": 1e-3, "sgd": 1e-1, "rmsprop": 1e-3}[optimizer]


def tune_value(problem: str, optimizer: str, lr: float) -> float:
    """A bowl in log10(lr) around the tuned lr, peaking at the first seed's final value."""
    best = FINALS[problem][optimizer][0]
    distance = abs(math.log10(lr) - math.log10(tuned_lr(optimizer)))
    if problem.endswith("_mlp"):
        return max(0.1, best - 0.08 * distance**2)
    return best * (1 + distance**2)


def records(problems: tuple[str, ...] = tuple(FINALS), test: bool = True) -> list[dict[str, Any]]:
    """Tuning grids (largest lr diverges) and final seeds for each problem and optimizer."""
    out: list[dict[str, Any]] = []
    for problem in problems:
        for optimizer in OPTIMIZERS:
            for lr in LRS:
                if lr == LRS[-1]:
                    out.append(diverged(problem, optimizer, "tune", lr, 0))
                else:
                    value = tune_value(problem, optimizer, lr)
                    out.append(run(problem, optimizer, "tune", lr, 0, value, test=test))
            for seed, value in enumerate(FINALS[problem][optimizer]):
                out.append(
                    run(problem, optimizer, "final", tuned_lr(optimizer), seed, value, test=test)
                )
    if "digits_mlp" in problems:
        out.append(diverged("digits_mlp", "rmsprop", "final", tuned_lr("rmsprop"), 9))
        out.append(failed("digits_mlp", "sgd", "final", tuned_lr("sgd"), 9))
    return out


def study(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "synthetic comparison",
        "metric": "val_accuracy",
        "mode": "max",
        "protocol": "deepobs",
        "seeds": 5,
        "epochs": EPOCHS,
        "targets": dict(TARGETS),
        "schedules": {"sgd": {"name": "cosine", "params": {"T_max": EPOCHS * STEPS_PER_EPOCH}}},
        "created": "2025-01-01T00:00:00",
    }
    base.update(changes)
    return base


def usable_finals(problem: str, optimizer: str) -> np.ndarray:
    """The final-seed values the report's statistics must use (the finished ones)."""
    return np.array(FINALS[problem][optimizer], dtype=float)


def edge_records() -> list[dict[str, Any]]:
    """Awkward inputs in one study.

    - tiny_reg: regression with one final seed per optimizer and no test split; its
      diverged tuning trial holds inf and NaN.
    - broken: every run failed with an empty history.
    - tune_only_mlp: tuning trials (classification) and no final runs yet.
    """
    out: list[dict[str, Any]] = []
    for optimizer, final in (("adam", 0.04), ("sgd", 0.06)):
        out.append(run("quadratic", optimizer, "final", tuned_lr(optimizer), 0, final, test=False))
        out.append(run("quadratic", optimizer, "tune", 1e-2, 0, final * 2, test=False))
        out.append(diverged("quadratic", optimizer, "tune", 1.0, 0))
    for r in out:
        r["problem"] = "tiny_reg"
    for phase, seed in (("tune", 0), ("final", 0), ("final", 1)):
        out.append(failed("broken", "adam", phase, 1e-3, seed))
    for lr in LRS[:3]:
        value = tune_value("digits_mlp", "sgd", lr)
        out.append(run("tune_only_mlp", "sgd", "tune", lr, 0, value, test=False))
    return out


_WRITTEN: dict[str, Any] = {}


def full_report(tmp_path_factory: Any) -> dict[str, Any]:
    """The report of ``records()`` written once per test session (it takes seconds)."""
    from optimlab.lab.report import write_report

    if "paths" not in _WRITTEN:
        _WRITTEN["paths"] = write_report(records(), study(), tmp_path_factory.mktemp("report"))
    return _WRITTEN["paths"]
