"""Adam's bias correction against the same rule without it, and against RMSprop.

Kingma & Ba (2015, section 6.4 and Figure 4) train with beta2 close to 1 and show that
without the correction the first steps are too large (``v`` starts at zero, so
``m / sqrt(v)`` is ``(1 - beta1) / sqrt(1 - beta2)`` times too big at step one) and
training becomes unstable at the larger rates, while corrected Adam stays stable. Three
contenders run through the run builder (:func:`optimlab.run.build_run`) on the same
model, seeds and batches, for beta2 in the grid and each rate of a log grid: ``adam``,
``adam`` with ``bias_correction=False`` (beta1 0.9 for both) and ``rmsprop`` with
``alpha = beta2`` and no momentum. The number is the last epoch's mean training loss,
averaged over seeds (a diverged run counts as diverged, not as a number).
"""

from __future__ import annotations

import math
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

CONTENDERS = ("adam", "adam_uncorrected", "rmsprop")
LABELS = {"adam": "Adam", "adam_uncorrected": "Adam without bias correction",
          "rmsprop": "RMSprop (alpha = beta2)"}  # fmt: skip
#: From this beta2 up the paper expects the uncorrected rule to become unstable.
NEAR_ONE = 0.999


def settings(contender: str, beta2: float) -> tuple[str, dict[str, Any]]:
    """The registry optimizer and its hyperparameters for one contender."""
    if contender == "rmsprop":
        return "rmsprop", {"alpha": beta2}
    hp: dict[str, Any] = {"betas": (0.9, beta2)}
    if contender == "adam_uncorrected":
        hp["bias_correction"] = False
    return "adam", hp


def final_loss(budget: Mapping[str, Any], context: Context, contender: str, beta2: float,
               lr: float, seed: int) -> float | None:  # fmt: skip
    """The last epoch's mean training loss of one run; None when the run diverged."""
    from optimlab.run import RunConfig, build_run

    optimizer, hp = settings(contender, beta2)
    config = RunConfig(problem=budget["problem"], optimizer=optimizer, lr=lr, hp=hp,
                       epochs=budget["epochs"], seed=seed, threads=budget.get("threads"),
                       data_dir=context.data_dir, download=context.download)  # fmt: skip
    result = build_run(config).fit()
    loss = result.final.get("loss")
    if result.status == "diverged" or loss is None or not math.isfinite(loss):
        return None
    return float(loss)


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    grid = {}
    for beta2 in budget["beta2"]:
        for contender in CONTENDERS:
            row = []
            for lr in budget["lrs"]:
                losses = [final_loss(budget, context, contender, beta2, lr, s)
                          for s in range(budget["seeds"])]  # fmt: skip
                row.append(None if None in losses else float(np.mean(losses)))
            grid[f"{beta2:g}/{contender}"] = row
    numbers = {"problem": budget["problem"], "epochs": budget["epochs"],
               "seeds": budget["seeds"], "lrs": list(budget["lrs"]),
               "beta2": list(budget["beta2"]), "loss": grid}  # fmt: skip
    return Measured(numbers)


def _inf(values: list[float | None]) -> np.ndarray:
    return np.array([np.inf if v is None else v for v in values], dtype=float)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(4.2 * len(n["beta2"]), 4.4)
    axes = np.atleast_1d(fig.subplots(1, len(n["beta2"]), sharey=True))
    for ax, beta2 in zip(axes, n["beta2"], strict=True):
        for i, contender in enumerate(CONTENDERS):
            losses = _inf(n["loss"][f"{beta2:g}/{contender}"])
            finite = np.isfinite(losses)
            lrs = np.array(n["lrs"])
            ax.plot(lrs[finite], losses[finite], marker="o", color=style.PALETTE[i],
                    label=LABELS[contender])  # fmt: skip
            if (~finite).any():
                ax.plot(lrs[~finite], np.full((~finite).sum(), 3.0), marker="x",
                        linestyle="none", color=style.PALETTE[i])  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_title(f"beta2 = {beta2:g}")
        ax.grid(True, alpha=0.3, linewidth=0.6)
    axes[0].set_ylabel(f"training loss after {n['epochs']} epochs (x: diverged)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{n['problem']}, mean of {n['seeds']} seeds")
    return {"bias_correction": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Two parts. Stability: for every beta2 >= ``NEAR_ONE`` the uncorrected rule's loss at
    the largest rate is above corrected Adam's (or it diverged). Ranking: Adam's best loss
    over the grid (every beta2) is at most RMSprop's best. Reproduced when both hold."""
    loss = numbers["loss"]
    near = [b for b in numbers["beta2"] if b >= NEAR_ONE]

    def best(contender: str) -> float:
        return float(min(_inf(loss[f"{b:g}/{contender}"]).min() for b in numbers["beta2"]))

    unstable = []
    for b in near:
        top_adam = _inf(loss[f"{b:g}/adam"])[-1]
        top_plain = _inf(loss[f"{b:g}/adam_uncorrected"])[-1]
        if top_plain > top_adam:
            unstable.append(f"beta2 {b:g}: {top_plain:.3g} against {top_adam:.3g}")
    stable = len(unstable) == len(near) and bool(near)
    adam, rms = best("adam"), best("rmsprop")
    ranking = f"best loss over the grid: Adam {adam:.3g}, RMSprop {rms:.3g}"
    lr_top = numbers["lrs"][-1]
    if stable and adam <= rms:
        return Verdict(REPRODUCED, f"at lr {lr_top:g} the uncorrected rule ends higher "
                       f"({'; '.join(unstable)}), and {ranking}.")  # fmt: skip
    parts = []
    if not stable:
        parts.append(f"at lr {lr_top:g} with beta2 near 1 the uncorrected rule is not worse "
                     "than corrected Adam for every beta2")  # fmt: skip
    else:
        parts.append(f"the instability without correction reproduces at lr {lr_top:g} "
                     f"({'; '.join(unstable)})")  # fmt: skip
    if adam > rms:
        parts.append(f"but Adam does not outperform RMSprop at its best rate ({ranking})")
    return Verdict(NOT_REPRODUCED, ", ".join(parts) + ".")


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for b in numbers["beta2"]:
        for contender in CONTENDERS:
            cells = ["diverged" if v is None else f"{v:.3g}"
                     for v in numbers["loss"][f"{b:g}/{contender}"]]  # fmt: skip
            rows.append([f"{b:g}", LABELS[contender], *cells])
    return ["beta2", "rule", *(f"lr {lr:g}" for lr in numbers["lrs"])], rows


ENTRY = Entry(
    name="bias_correction",
    title="Adam's bias correction, and Adam against RMSprop",
    deck=deck("003"),
    slide="Comparisons",
    claim="Kingma and Ba (2015) show that bias correction helps Adam slightly outperform "
    "RMSprop: without it, with beta2 close to 1 (as sparse gradients need), the first "
    "steps are too large and training becomes unstable.",
    tier="quick",
    version=1,
    budgets={
        "quick": {
            "problem": "digits_mlp",
            "epochs": 2,
            "seeds": 2,
            "threads": 1,
            "beta2": [0.99, 0.999, 0.9999],
            "lrs": [0.001, 0.003, 0.01, 0.03],
        },
        "standard": {
            "problem": "fmnist_mlp",
            "epochs": 3,
            "seeds": 2,
            "threads": None,
            "beta2": [0.99, 0.999, 0.9999],
            "lrs": [0.0003, 0.001, 0.003, 0.01],
        },
        "full": {
            "problem": "fmnist_mlp",
            "epochs": 10,
            "seeds": 3,
            "threads": None,
            "beta2": [0.99, 0.999, 0.9999],
            "lrs": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03],
        },
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    threads=1,
    table=table,
    reference="Kingma & Ba, Adam, ICLR 2015, section 6.4 and Figure 4",
)
