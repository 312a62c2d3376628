"""Quasi-Newton on mini-batches: why the same batch should be used over several iterations.

The lab's experiment (:mod:`optimlab.lab.batch_pairs`): L-BFGS on ``logreg_digits``, a
fresh batch every iteration, and at every pair of consecutive iterates the curvature pair
``y`` formed from two batches' gradients (``fresh``) and from one batch's (``same``),
each against the full training set's secant at the same points. Then the same training
with every batch kept for ``repeats`` iterations, for the loss each way ends at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

#: the fresh pairs' error on short steps must be at least this many times the same-batch one's
RATIO = 2.0
#: and grow faster as the steps shrink, its log-log slope lower by at least this
SLOPE_GAP = 0.25


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.lab import batch_pairs as bp

    seeds = range(budget["seeds"])
    size, steps = budget["batch_size"], budget["steps"]
    measured = [bp.pairs(steps=steps, batch_size=size, seed=s) for s in seeds]
    numbers: dict[str, Any] = {
        "problem": bp.PROBLEM,
        "batch_size": size,
        "steps": steps,
        "seeds": budget["seeds"],
        "repeats": budget["repeats"],
        "unmoved": sum(m.unmoved for m in measured),
        **{way: bp.summary(measured, way) for way in bp.WAYS},
    }
    for name, repeats in (("fresh_run", 1), ("kept_run", budget["repeats"])):
        runs = [bp.final_loss(repeats, steps=steps, batch_size=size, seed=s) for s in seeds]
        numbers[name] = {key: [r[key] for r in runs] for key in ("train_loss", "val_accuracy")}
    return Measured(numbers, measured)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.lab.batch_pairs import WAYS
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(12.5, 4.6)
    ax_pairs, ax_loss = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    labels = {"fresh": "two batches (a fresh batch each iteration)",
              "same": "one batch at both points (a kept batch)"}  # fmt: skip
    for i, way in enumerate(WAYS):
        norms = [x for m in measured.data for x in m.step_norms]
        errors = [e for m in measured.data for e in m.errors[way]]
        ax_pairs.scatter(norms, errors, s=9, alpha=0.5, color=style.PALETTE[i],
                         label=f"{labels[way]}: slope {n[way]['slope']:.2f}")  # fmt: skip
    ax_pairs.set_xscale("log")
    ax_pairs.set_yscale("log")
    ax_pairs.set_xlabel("step length |s| = |w_k+1 - w_k|")
    ax_pairs.set_ylabel("|y - y_full| / |y_full|")
    ax_pairs.set_title("the curvature pair's error against the full set's secant")
    ax_pairs.legend(fontsize=8)
    seeds = range(n["seeds"])
    width = 0.38
    for j, (name, label) in enumerate(
        (("fresh_run", "fresh batch"), ("kept_run", f"kept {n['repeats']} iterations"))
    ):
        ax_loss.bar([s + (j - 0.5) * width for s in seeds], n[name]["train_loss"], width,
                    color=style.PALETTE[j], label=label)  # fmt: skip
    ax_loss.set_yscale("log")
    ax_loss.set_xticks(list(seeds), [f"seed {s}" for s in seeds])
    ax_loss.set_ylabel("full training loss")
    ax_loss.set_title(f"after {n['steps']} iterations")
    ax_loss.legend(fontsize=8)
    for ax in (ax_pairs, ax_loss):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle(f"L-BFGS on {n['problem']}, batches of {n['batch_size']}")
    return {"lbfgs_batches": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when the pairs formed from two batches are the worse estimate where
    L-BFGS relies on them, on short steps: their median error there is at least twice
    that of the pairs formed from one batch; their error grows as the steps shrink
    (log-log slope at least 0.25 below the one-batch pairs'), as sampling noise that
    does not shrink with the step makes it; and no one-batch pair has ``s . y <= 0``
    (each batch's loss is convex). The losses of the two trainings are reported, not
    judged."""
    fresh, same = numbers["fresh"], numbers["same"]
    problems = []
    ratio = fresh["short_step_median_error"] / same["short_step_median_error"]
    if ratio < RATIO:
        problems.append(
            f"on the shortest third of the steps the two-batch pairs' median error "
            f"({fresh['short_step_median_error']:.3g}) is only {ratio:.2f} times the one-batch "
            f"pairs' ({same['short_step_median_error']:.3g})"
        )
    if fresh["slope"] > same["slope"] - SLOPE_GAP:
        problems.append(
            f"the two-batch pairs' error does not grow faster as the steps shrink (log-log "
            f"slope {fresh['slope']:.2f} against {same['slope']:.2f})"
        )
    if same["nonpositive"] > 0:
        problems.append(f"{same['nonpositive']:.1%} of the one-batch pairs have s . y <= 0")
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    return Verdict(
        REPRODUCED,
        f"a pair from two batches' gradients missed the full set's secant by a median "
        f"{fresh['short_step_median_error']:.2g} times its length on short steps, one from a "
        f"single batch by {same['short_step_median_error']:.2g}; the two-batch error grows "
        f"as the step shrinks (slope {fresh['slope']:.2f} against {same['slope']:.2f}), "
        f"and {fresh['nonpositive']:.1%} of those pairs had s . y <= 0 against none of the "
        f"one-batch pairs.",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per way of forming the pair: its errors and signs; then the two trainings."""
    rows = [
        [way, str(numbers[way]["pairs"]), f"{numbers[way]['median_error']:.3g}",
         f"{numbers[way]['short_step_median_error']:.3g}", f"{numbers[way]['slope']:.2f}",
         f"{numbers[way]['nonpositive']:.1%}"]
        for way in ("fresh", "same")
    ]  # fmt: skip
    for name, label in (("fresh_run", "train: fresh batch"),
                        ("kept_run", f"train: kept {numbers['repeats']} iterations")):  # fmt: skip
        losses = ", ".join(f"{v:.3g}" for v in numbers[name]["train_loss"])
        accuracy = ", ".join(f"{v:.3f}" for v in numbers[name]["val_accuracy"])
        rows.append([label, "-", f"loss {losses}", f"val acc {accuracy}", "-", "-"])
    headers = ["pair from", "pairs", "median error", "on short steps", "log-log slope",
               "s . y <= 0"]  # fmt: skip
    return headers, rows


_BUDGET = {"batch_size": 256, "repeats": 4}
ENTRY = Entry(
    name="lbfgs_batches",
    title="Quasi-Newton on mini-batches: keep the batch",
    deck=deck("001"),
    slide="Second-order methods",
    claim="Quasi-Newton methods estimate the Hessian from observed gradients; they can be "
    "used on mini-batches, but the same batch should be used over several iterations: a "
    "difference of two batches' gradients holds their sampling noise, which does not "
    "shrink with the step, so it stops measuring curvature just where the steps get short.",
    tier="quick",
    version=1,
    budgets={
        "quick": {"steps": 100, "seeds": 3, **_BUDGET},
        "standard": {"steps": 200, "seeds": 5, **_BUDGET},
        "full": {"steps": 300, "seeds": 10, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="the lab's experiment (optimlab.lab.batch_pairs); Nocedal & Wright, Numerical "
    "Optimization, sec. 6.1 (the secant equation); Schraudolph, Yu & Guenter 2007 (online "
    "L-BFGS: both gradients of a pair from the same sample)",
)
