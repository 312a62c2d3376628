"""Regularizers against overfitting (Srivastava et al.'s Table 9), and early stopping.

One over-parameterized network trains long enough to overfit without regularization,
then under each of Table 9's regularizers that optimlab has (L2, max-norm, dropout + L2,
dropout + max-norm), the same seeds and batches, SGD with momentum 0.9, every run built by
:func:`optimlab.run.build_run` from the ``regularize`` options of ``optimlab train``.
Measured per setting: the test error after the last epoch (mean over seeds, with the
spread), and for the unregularized run its validation-loss curve: the epoch where it is
lowest, how far it has risen by the end, and the test error at that epoch (what early
stopping on validation error, the lecture's rule, would have kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import (
    NOT_REPRODUCED,
    REPRODUCED,
    Context,
    Entry,
    Measured,
    Verdict,
    problem_data,
)

#: Table 9's rows that optimlab can run, in the paper's order (test error 1.62, 1.35,
#: 1.25 and 1.05 % on MNIST), each expected to beat the one before.
TABLE9 = ("l2", "max_norm", "dropout+l2", "dropout+max_norm")
SETTINGS = ("none", *TABLE9)
#: The unregularized run counts as overfitting when its final validation loss is this much
#: above its minimum.
OVERFIT_RISE = 0.10


def options(setting: str, budget: Mapping[str, Any]) -> dict[str, Any]:
    """The ``regularize`` options of a setting, with the budget's strengths."""
    out: dict[str, Any] = {}
    for part in setting.split("+"):
        if part != "none":
            out[part] = budget[part]
    return out


def train(budget: Mapping[str, Any], context: Context, setting: str, seed: int) -> list[dict]:
    """The per-epoch history of one run."""
    from optimlab.run import RunConfig, build_run

    config = RunConfig(problem=budget["problem"], optimizer="momentum", lr=budget["lr"],
                       hp={"momentum": 0.9}, epochs=budget["epochs"], seed=seed,
                       threads=budget.get("threads"), regularize=options(setting, budget),
                       data_dir=context.data_dir, download=context.download)  # fmt: skip
    return build_run(config).fit().history


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    histories = {s: [train(budget, context, s, seed) for seed in range(budget["seeds"])]
                 for s in SETTINGS}  # fmt: skip
    rows = {}
    for setting, runs in histories.items():
        errors = [100 * (1 - h[-1]["test_accuracy"]) for h in runs]
        rows[setting] = {"test_error": float(np.mean(errors)), "spread": float(np.ptp(errors)),
                         "regularize": options(setting, budget)}  # fmt: skip

    def mean_curve(key: str) -> np.ndarray:
        return np.array([[e[key] for e in h] for h in histories["none"]]).mean(axis=0)

    val = mean_curve("val_loss")
    val_err, test_err = (
        100 * (1 - mean_curve("val_accuracy")),
        100 * (1 - mean_curve("test_accuracy")),
    )
    low = int(val.argmin())
    best = int(val_err.argmin())  # the first epoch of the lowest validation error
    numbers = {
        "problem": budget["problem"],
        "epochs": budget["epochs"],
        "seeds": budget["seeds"],
        "settings": rows,
        "unregularized": {
            "val_loss_min_epoch": low + 1,  # epochs count from 1
            "val_loss_min": float(val[low]),
            "val_loss_final": float(val[-1]),
            "rise": float(val[-1] / val[low] - 1),
            "best_val_epoch": best + 1,
            "val_error_min": float(val_err[best]),
            "val_error_final": float(val_err[-1]),
            "test_error_at_best_val": float(test_err[best]),
            "test_error_final": float(test_err[-1]),
        },
    }
    curves = {s: np.array([[e["val_loss"] for e in h] for h in runs]).mean(axis=0)
              for s, runs in histories.items()}  # fmt: skip
    return Measured(numbers, curves)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(12.0, 4.6)
    ax, ax_bar = fig.subplots(1, 2)
    for i, (setting, curve) in enumerate(measured.data.items()):
        # The unregularized curve dashed and on top: a regularizer that changes nothing
        # (max-norm above the weights' norms) would hide it.
        plain = setting == "none"
        ax.plot(np.arange(1, len(curve) + 1), curve, color=style.PALETTE[i], label=setting,
                linestyle="--" if plain else "-", zorder=3 if plain else 2)  # fmt: skip
    best = n["unregularized"]["best_val_epoch"]
    ax.axvline(best, color="0.5", linestyle=":",
               label=f"lowest validation error, unregularized (epoch {best})")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{n['problem']}: validation loss, mean of {n['seeds']} seeds")
    # Below the figure (the bars share the colours): inside, it covered the curves.
    figures.legend_outside(fig, ax, ncols=6)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    names = list(n["settings"])
    errors = [n["settings"][s]["test_error"] for s in names]
    spreads = [n["settings"][s]["spread"] / 2 for s in names]
    ax_bar.bar(names, errors, yerr=spreads, color=[style.PALETTE[i] for i in range(len(names))])
    ax_bar.set_ylabel("test error after the last epoch (%)")
    ax_bar.set_title("Table 9's regularizers (bars: half the seed range)")
    ax_bar.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax_bar.grid(True, axis="y", alpha=0.3, linewidth=0.6)
    return {"overfitting": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when the unregularized net overfits (final validation loss at least
    ``OVERFIT_RISE`` above its minimum) and the test errors follow Table 9's order
    (L2 > max-norm > dropout + L2 > dropout + max-norm, strictly)."""
    un = numbers["unregularized"]
    errors = {s: numbers["settings"][s]["test_error"] for s in TABLE9}
    order = " > ".join(f"{s} {errors[s]:.2f}%" for s in TABLE9)
    if un["rise"] < OVERFIT_RISE:
        return Verdict(
            NOT_REPRODUCED,
            f"the unregularized net did not overfit in {numbers['epochs']} epochs (validation "
            f"loss {un['rise']:+.0%} from its minimum to the end), so the regularizers had "
            "nothing to prevent.",
        )
    wrong = [f"{a} ({errors[a]:.2f}%) is not above {b} ({errors[b]:.2f}%)"
             for a, b in zip(TABLE9, TABLE9[1:]) if not errors[a] > errors[b]]  # fmt: skip
    stop = (f"early stopping on validation error at epoch {un['best_val_epoch']} keeps "
            f"{un['test_error_at_best_val']:.2f}% test error against "
            f"{un['test_error_final']:.2f}% at the end")  # fmt: skip
    overfits = (f"the unregularized net overfits (validation loss {un['rise']:+.0%} after "
                f"epoch {un['val_loss_min_epoch']}; {stop})")  # fmt: skip
    if wrong:
        return Verdict(
            NOT_REPRODUCED, f"{overfits}, but Table 9's order does not hold: {'; '.join(wrong)}."
        )
    return Verdict(REPRODUCED, f"{overfits} and the test errors follow Table 9's order: {order}.")


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    paper = {"l2": "1.62", "max_norm": "1.35", "dropout+l2": "1.25", "dropout+max_norm": "1.05"}
    rows = [[s, ", ".join(f"{k}={v}" for k, v in r["regularize"].items()) or "-",
             f"{r['test_error']:.2f} (range {r['spread']:.2f})", paper.get(s, "-")]
            for s, r in numbers["settings"].items()]  # fmt: skip
    return ["setting", "options", "test error %", "Table 9 (MNIST) %"], rows


ENTRY = Entry(
    name="overfitting",
    title="Dropout, L2 and max-norm against overfitting (Srivastava et al.'s Table 9)",
    deck=deck("002"),
    slide="Performance on MNIST (Table 9); Early Stopping",
    claim="On MNIST, Srivastava et al. (2014) rank the regularizers by test error: L2 1.62 %, "
    "max-norm 1.35 %, dropout + L2 1.25 %, dropout + max-norm 1.05 %. Without "
    "regularization the validation error stops decreasing and starts to go back up; early "
    "stopping keeps the model where it is lowest.",
    tier="quick",
    version=2,
    budgets={
        "quick": {
            "problem": "digits_mlp",
            "epochs": 40,
            "seeds": 2,
            "lr": 0.05,
            "threads": 1,
            "l2": 1e-3,
            "max_norm": 3.0,
            "dropout": 0.3,
        },
        "standard": {
            "problem": "fmnist_overfit",
            "epochs": 20,
            "seeds": 2,
            "lr": 0.05,
            "threads": None,
            "l2": 1e-4,
            "max_norm": 3.0,
            "dropout": 0.5,
        },
        "full": {
            "problem": "fmnist_overfit",
            "epochs": 60,
            "seeds": 3,
            "lr": 0.05,
            "threads": None,
            "l2": 1e-4,
            "max_norm": 3.0,
            "dropout": 0.5,
        },
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    threads=1,
    table=table,
    reference="Srivastava et al., Dropout, JMLR 2014, Table 9",
)
