"""Inputs in arbitrary units, standardized and whitened: how many GD steps each needs.

The lab's whitening experiment (:func:`optimlab.lab.whitening.run`): a linear regression
with bias on two correlated features in the units of the lectures' table (x1 about 110,
x2 about 0.02), full batch, float64. GD runs at lr = 1/lambda_max and momentum at Goh's
optimal (lr, beta) for each representation's Hessian, until f - f* <= tol (f(0) - f*) or
the step budget runs out (then the count is recorded as None: more than the budget).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

REPRESENTATIONS = ("raw", "standardize", "zca_whiten")


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.lab import whitening as we

    rows = we.run(budget["n"], tol=budget["tol"], max_steps=budget["max_steps"],
                  seed=budget["seed"])  # fmt: skip
    numbers = {
        r.representation: {
            "condition": r.condition,
            "gd_steps": r.gd_steps,
            "momentum_steps": r.momentum_steps,
            "gd_gap": r.gd_gap,
            "momentum_gap": r.momentum_gap,
        }
        for r in rows
    }
    numbers["max_steps"] = budget["max_steps"]
    return Measured(numbers)


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
    ax_cond.bar(x, [n[r]["condition"] for r in REPRESENTATIONS], color=style.PALETTE[0])
    ax_cond.set_yscale("log")
    ax_cond.set_xticks(x, REPRESENTATIONS)
    ax_cond.set_title("condition number of A^T A, A = [X, 1]")
    width = 0.38
    for j, key in enumerate(("gd_steps", "momentum_steps")):
        values = [n[r][key] for r in REPRESENTATIONS]
        shown = [cap if v is None else v for v in values]
        bars = ax_steps.bar(x + (j - 0.5) * width, shown, width, color=style.PALETTE[j + 1])
        for bar, v in zip(bars, values, strict=True):
            text = f"> {cap}" if v is None else str(v)
            ax_steps.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                              ha="center", va="bottom", fontsize=8)  # fmt: skip
            if v is None:
                bar.set_hatch("//")
    ax_steps.set_yscale("log")
    ax_steps.set_xticks(x, REPRESENTATIONS)
    ax_steps.set_title("steps to f - f* <= 1e-6 (f(0) - f*); hatched: budget ran out")
    handles = [Patch(color=style.PALETTE[1], label="GD"),
               Patch(color=style.PALETTE[2], label="momentum")]  # fmt: skip
    ax_steps.legend(handles=handles, fontsize=8)
    for ax in (ax_cond, ax_steps):
        ax.grid(True, axis="y", alpha=0.3, linewidth=0.6)
    fig.suptitle("linear regression on two correlated features in arbitrary units")
    return {"whitening": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when the condition number falls from raw to standardized to whitened
    (whitened = 1 within 1e-6), GD needs strictly fewer steps standardized than raw and no
    more whitened than standardized, exactly one step whitened, and momentum keeps the
    same order. A count over the budget counts as more than the budget."""
    cap = numbers["max_steps"]
    raw, std, white = (numbers[r] for r in REPRESENTATIONS)
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
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    return Verdict(
        REPRODUCED,
        f"the condition number falls from {raw['condition']:.2g} (raw) to "
        f"{std['condition']:.3g} (standardized) to 1 (whitened); GD needs "
        f"{x_or_more(raw['gd_steps'], cap)}, {std['gd_steps']} and {white['gd_steps']} steps, "
        f"momentum {x_or_more(raw['momentum_steps'], cap)}, {std['momentum_steps']} and "
        f"{white['momentum_steps']}.",
    )


def x_or_more(steps: int | None, cap: int) -> str:
    return f"more than {cap}" if steps is None else str(steps)


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The lectures' units table: condition number and steps per representation."""
    cap = numbers["max_steps"]
    rows = [
        [rep, f"{numbers[rep]['condition']:.3g}", x_or_more(numbers[rep]["gd_steps"], cap),
         x_or_more(numbers[rep]["momentum_steps"], cap)]
        for rep in REPRESENTATIONS
    ]  # fmt: skip
    return ["inputs", "cond(A^T A)", "GD steps", "momentum steps"], rows


_BUDGET = {"n": 200, "tol": 1e-6, "seed": 0}
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
    version=1,
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
