"""Inputs in arbitrary units, standardized and whitened: how many GD steps each needs.

The lab's whitening experiment (:func:`optimlab.lab.whitening.run`): a linear regression
with bias on two correlated features in the units of the lectures' table (x1 about 110,
x2 about 0.02), full batch, float64. GD runs at lr = 1/lambda_max and momentum at Goh's
optimal (lr, beta) for each representation's Hessian, until f - f* <= tol (f(0) - f*) or
the step budget runs out (then the count is recorded as None: more than the budget).
The features are drawn anew from each of several seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict
from optimlab.gallery.seeds import failing_seeds, log_range, mean_sd

REPRESENTATIONS = ("raw", "standardize", "zca_whiten")


KEYS = ("condition", "gd_steps", "momentum_steps", "gd_gap", "momentum_gap")


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.lab import whitening as we

    seeds = list(range(budget["seeds"]))
    numbers: dict[str, Any] = {rep: {key: [] for key in KEYS} for rep in REPRESENTATIONS}
    for seed in seeds:
        for r in we.run(budget["n"], tol=budget["tol"], max_steps=budget["max_steps"],
                        seed=seed):  # fmt: skip
            for key in KEYS:
                numbers[r.representation][key].append(getattr(r, key))
    numbers["max_steps"] = budget["max_steps"]
    numbers["seeds"] = seeds
    return Measured(numbers)


def one_seed(numbers: Mapping[str, Any], i: int) -> dict[str, Any]:
    """The ``i``-th seed's numbers, shaped as one run's: representation -> key -> value."""
    one: dict[str, Any] = {rep: {k: numbers[rep][k][i] for k in KEYS} for rep in REPRESENTATIONS}
    one["max_steps"] = numbers["max_steps"]
    return one


def _steps(value: int | None) -> float:
    return float("inf") if value is None else float(value)


def draw(measured: Measured) -> dict[str, Any]:
    from matplotlib.patches import Patch

    from optimlab.viz import style

    n = measured.numbers
    cap = n["max_steps"]
    fig = figures.figure(12.0, 4.4)
    ax_cond, ax_steps = fig.subplots(1, 2)
    x = np.arange(len(REPRESENTATIONS))
    conditions = [np.exp(np.mean(np.log(n[r]["condition"]))) for r in REPRESENTATIONS]
    ax_cond.bar(x, conditions, color=style.PALETTE[0])
    for i, r in enumerate(REPRESENTATIONS):
        ax_cond.plot([i] * len(n[r]["condition"]), n[r]["condition"], "o", color="black",
                     markersize=3)  # fmt: skip
    ax_cond.set_yscale("log")
    ax_cond.set_xticks(x, REPRESENTATIONS)
    ax_cond.set_title("condition number of A^T A, A = [X, 1] (dots: seeds)")
    width = 0.38
    for j, key in enumerate(("gd_steps", "momentum_steps")):
        # Per representation: the mean over seeds, a count over the budget counted as it.
        values = [None if None in n[r][key] else float(np.mean(n[r][key]))
                  for r in REPRESENTATIONS]  # fmt: skip
        shown = [cap if v is None else v for v in values]
        bars = ax_steps.bar(x + (j - 0.5) * width, shown, width, color=style.PALETTE[j + 1])
        for bar, v in zip(bars, values, strict=True):
            text = f"> {cap}" if v is None else f"{v:.3g}"
            ax_steps.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                              ha="center", va="bottom", fontsize=8)  # fmt: skip
            if v is None:
                bar.set_hatch("//")
    ax_steps.set_yscale("log")
    ax_steps.set_xticks(x, REPRESENTATIONS)
    ax_steps.set_title("steps to f - f* <= 1e-6 (f(0) - f*), mean over seeds; hatched: "
                       "budget ran out in a seed", fontsize=9)  # fmt: skip
    handles = [Patch(color=style.PALETTE[1], label="GD"),
               Patch(color=style.PALETTE[2], label="momentum")]  # fmt: skip
    ax_steps.legend(handles=handles, fontsize=8)
    for ax in (ax_cond, ax_steps):
        ax.grid(True, axis="y", alpha=0.3, linewidth=0.6)
    fig.suptitle("linear regression on two correlated features in arbitrary units, "
                 f"{len(n['seeds'])} seeds")  # fmt: skip
    return {"whitening": fig}


def check(one: Mapping[str, Any]) -> list[str]:
    """What contradicts the claim in one seed's numbers."""
    cap = one["max_steps"]
    raw, std, white = (one[r] for r in REPRESENTATIONS)
    problems = []
    if not (raw["condition"] > std["condition"] > white["condition"]):
        problems.append(
            f"the condition numbers do not fall ({raw['condition']:.3g}, {std['condition']:.3g}, "
            f"{white['condition']:.3g})"
        )
    if abs(white["condition"] - 1.0) > 1e-6:
        problems.append(f"whitened inputs have condition number {white['condition']:.6g}, not 1")
    for key, label in (("gd_steps", "GD"), ("momentum_steps", "momentum")):
        r, s, w = (_steps(x[key]) for x in (raw, std, white))
        if not (w <= s < r):
            problems.append(
                f"{label} needs {x_or_more(raw[key], cap)} raw, {x_or_more(std[key], cap)} "
                f"standardized, {x_or_more(white[key], cap)} whitened steps"
            )
    if white["gd_steps"] != 1:
        problems.append(f"GD needs {x_or_more(white['gd_steps'], cap)} steps whitened, not 1")
    return problems


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when, in every seed, the condition number falls from raw to
    standardized to whitened (whitened = 1 within 1e-6), GD needs strictly fewer steps
    standardized than raw and no more whitened than standardized, exactly one step
    whitened, and momentum keeps the same order. A count over the budget counts as more
    than the budget."""
    cap, seeds = numbers["max_steps"], numbers["seeds"]
    per_seed = [one_seed(numbers, i) for i in range(len(seeds))]
    problems = failing_seeds(seeds, per_seed, check)
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    raw, std, white = (numbers[r] for r in REPRESENTATIONS)
    return Verdict(
        REPRODUCED,
        f"in each of {len(seeds)} seeds (geometric mean and range, or mean ± sd): the "
        f"condition number falls from {log_range(raw['condition'])} (raw) to "
        f"{log_range(std['condition'], '.3g')} (standardized) to 1 (whitened); GD needs "
        f"{steps_over_seeds(raw['gd_steps'], cap)}, {steps_over_seeds(std['gd_steps'], cap)} "
        f"and {steps_over_seeds(white['gd_steps'], cap)} steps, momentum "
        f"{steps_over_seeds(raw['momentum_steps'], cap)}, "
        f"{steps_over_seeds(std['momentum_steps'], cap)} and "
        f"{steps_over_seeds(white['momentum_steps'], cap)}.",
    )


def steps_over_seeds(values: list[int | None], cap: int) -> str:
    """Step counts over seeds: mean ± sd, or how many seeds ran out of the budget."""
    over = sum(v is None for v in values)
    if over == len(values):
        return f"more than {cap}"
    if over:
        return f"more than {cap} in {over} of {len(values)} seeds"
    return mean_sd(values)


def x_or_more(steps: int | None, cap: int) -> str:
    return f"more than {cap}" if steps is None else str(steps)


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The lectures' units table: condition number and steps per representation, over
    the seeds."""
    cap = numbers["max_steps"]
    rows = [
        [rep, log_range(numbers[rep]["condition"], ".3g"),
         steps_over_seeds(numbers[rep]["gd_steps"], cap),
         steps_over_seeds(numbers[rep]["momentum_steps"], cap)]
        for rep in REPRESENTATIONS
    ]  # fmt: skip
    return ["inputs", "cond(A^T A)", "GD steps", "momentum steps"], rows


_BUDGET = {"n": 200, "tol": 1e-6, "seeds": 3}
ENTRY = Entry(
    name="whitening",
    title="Units, standardization and whitening",
    deck=deck("000"),
    slide="Motivation: Invariance",
    claim="Inputs in arbitrary units and correlated features stretch the loss into long "
    "ellipses: (stochastic) gradient descent bounces in the high-curvature directions and "
    "crawls in the low-curvature ones. Whitening (the inverse covariance) decorrelates the "
    "inputs and makes every direction alike.",
    tier="quick",
    version=2,
    budgets={
        "quick": {"max_steps": 2000, **_BUDGET},
        "standard": {"max_steps": 20000, **_BUDGET},
        "full": {"max_steps": 20000, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="the lab's whitening experiment (optimlab.lab.whitening); lecture 001, "
    "Units of measurements",
)
