"""Second-order methods where Newton fits: a lab study, judged per step and per cost.

A study of the lab (:mod:`optimlab.lab.runner`, protocol "fixed", resumable from its
checkpoints): ``logreg_digits`` (a linear softmax classifier, 650 parameters) with an L2
penalty of 1e-3 in the loss, so the minimum is finite and unique, full batch (one step
per epoch on the training set), with Newton (exact Hessian), L-BFGS, nonlinear CG,
Hessian-free, K-FAC and Adam, each at its registry defaults (Adam at lr 0.05, K-FAC at
lr 1, the natural gradient's unit step, since the defaults suit mini-batches). The
lab's report of the study (with its verdict and the cost axis of
:mod:`optimlab.lab.report.cost`) is kept beside the entry's figures.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

PROBLEM = "logreg_digits"
L2 = 1e-3
#: (optimizer, fixed settings) of each contender
CONTENDERS = (
    ("newton", {}),
    ("lbfgs", {}),
    ("cg", {}),
    ("hessian_free", {}),
    ("kfac", {"lr": 1.0}),
    ("adam", {"lr": 0.05}),
)
#: the target is a training loss within this fraction of the lowest one of its seed
WITHIN = 0.01
#: Newton must pay at least this many times L-BFGS's gradient-equivalents to the target
NEWTON_COST = 10.0
#: and L-BFGS at most this many times the cheapest contender's
LBFGS_SLACK = 2.0


def study_text(budget: Mapping[str, Any]) -> str:
    """The study file the entry runs."""
    lines = [
        'name = "second-order-gallery"',
        f'problems = ["{PROBLEM}"]',
        f"seeds = {budget['seeds']}",
        "full_batch = true",
        "[budget]",
        f"epochs = {budget['epochs']}",
        "[protocol]",
        'kind = "fixed"',
    ]
    for name, params in CONTENDERS:
        lines += ["[[optimizers]]", f'name = "{name}"', f"regularize = {{ l2 = {L2} }}"]
        if params:
            lines.append("params = { " + ", ".join(f"{k} = {v}" for k, v in params.items()) + " }")
    return "\n".join(lines) + "\n"


def _median(values: list[float | None]) -> float | None:
    """The median over seeds, None (not reached) unless at least half have a value."""
    got = [v for v in values if v is not None]
    if not got or 2 * len(got) < len(values):
        return None
    if len(got) < len(values):  # the missing ones count as infinitely large
        got += [math.inf] * (len(values) - len(got))
    value = float(np.median(got))
    return value if math.isfinite(value) else None


def _reach(run: Any, target: float) -> tuple[float | None, float | None, float | None]:
    """Steps, gradient-equivalents and seconds to the first weights whose training loss
    is at most ``target`` (None each when none is). In full batch an epoch row's loss is
    that of the weights before its one step, which the rows before it paid for: row
    ``i`` (from 0) holds ``f(w_i)``, reached after ``i`` steps at the cost recorded by
    row ``i - 1`` (nothing for ``w_0``)."""
    from optimlab.lab.report.cost import gradient_equivalents
    from optimlab.lab.report.runs import finite

    costs = gradient_equivalents(run)
    paid: tuple[float | None, float | None] = (0.0, 0.0)
    for i, (row, cost) in enumerate(zip(run.history, costs, strict=True)):
        loss = finite(row.get("loss"))
        if loss is not None and loss <= target:
            return float(i), *paid
        paid = (cost, finite(row.get("time")))
    return None, None, None


def measure(records: list[dict[str, Any]], study: dict[str, Any]) -> dict[str, Any]:
    """The entry's numbers from the study's records: per contender its final training
    loss, validation accuracy and cost, and its steps, gradient-equivalents and seconds
    to the target; the report's verdict."""
    from optimlab.lab.report import analyse_records, verdicts
    from optimlab.lab.report.cost import costs
    from optimlab.lab.report.curves import curve_runs
    from optimlab.lab.report.runs import finite

    analysis = analyse_records(records, study)
    (problem,) = analysis.problems
    finals = {c.label: c for c in costs(problem)}
    # each seed draws its own validation split, so its own training set: a target per seed
    f_star: dict[str, float] = {}
    for run in problem.runs:
        losses = [finite(row.get("loss")) for row in run.history]
        low = min((x for x in losses if x is not None), default=math.inf)
        f_star[str(run.seed)] = min(f_star.get(str(run.seed), math.inf), low)
    targets = {seed: f * (1 + WITHIN) for seed, f in f_star.items()}
    numbers: dict[str, Any] = {"problem": PROBLEM, "f_star": f_star, "targets": targets}
    for stat in problem.stats:
        runs, _ = curve_runs([r for r in problem.runs if r.label == stat.label])
        reached = [_reach(r, targets[str(r.seed)]) for r in runs]
        c = finals[stat.label]
        numbers[stat.label] = {
            "seeds": len(runs),
            "train_loss": c.loss,
            "val_accuracy": stat.mean if stat.n else None,
            "gradient_equivalents": c.gradient_equivalents,
            "hvps": None if math.isnan(c.hvps) else c.hvps,
            "seconds": c.time,
            "steps": finite(runs[0].history[-1].get("step")) if runs else None,
            **{f"{k}_to_target": _median([x[i] for x in reached])
               for i, k in enumerate(("steps", "gradient_equivalents", "seconds"))},
        }  # fmt: skip
    (v,) = verdicts(analysis)
    numbers["verdict"] = {"metric": v.metric.key, "best": v.best, "runner_up": v.runner_up,
                          "separated": v.separated, "text": " ".join(v.sentences)}  # fmt: skip
    return numbers


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.lab import parse_study
    from optimlab.lab.report.runs import read_runs
    from optimlab.lab.runner import run_study, study_facts
    from optimlab.lab.store import Store

    text = study_text(budget)
    spec = parse_study(text, source="the second_order entry's study")
    with tempfile.TemporaryDirectory() as scratch:
        result = run_study(spec, context.study_folder(text, scratch), quiet=True)
        records = list(Store(result["storage"]).records())
    study = study_facts(spec)
    numbers = measure(records, study)
    return Measured(numbers, {"runs": read_runs(records)})


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.lab.report.cost import gradient_equivalents
    from optimlab.lab.report.runs import finite
    from optimlab.viz import style

    runs = [r for r in measured.data["runs"] if r.phase == "final"]
    n = measured.numbers
    fig = figures.figure(13.0, 4.4)
    axes = fig.subplots(1, 3)
    labels = [name for name, _ in CONTENDERS]
    for i, label in enumerate(labels):
        colour = style.PALETTE[i % len(style.PALETTE)]
        for j, run in enumerate(r for r in runs if r.label == label):
            loss = [finite(row.get("loss")) for row in run.history]
            clocks = ([finite(row.get("step")) for row in run.history],
                      gradient_equivalents(run),
                      [finite(row.get("time")) for row in run.history])  # fmt: skip
            for ax, x in zip(axes, clocks, strict=True):
                ax.plot([np.nan if v is None else v for v in x],
                        [np.nan if v is None else v for v in loss],
                        "-o", markersize=2.5, color=colour, linewidth=1.2,
                        label=label if j == 0 else None)  # fmt: skip
    for ax, xlabel in zip(axes, ("step (full batch)", "gradient-equivalents (examples)",
                                 "seconds"), strict=True):  # fmt: skip
        for target in n["targets"].values():
            ax.axhline(target, color="0.5", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        if xlabel != "step (full batch)":
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training loss (with the L2 penalty)")
        ax.grid(True, alpha=0.3, linewidth=0.6)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{PROBLEM}, L2 {L2:g}, every seed; dotted: within {WITHIN:.0%} of the "
                 "lowest loss of each seed")  # fmt: skip
    return {"second_order": fig}


def _steps(x: float) -> str:
    return "1 step" if x == 1 else f"{x:.0f} steps"


def _show(x: float | None, digits: int = 3) -> str:
    return "never" if x is None else f"{x:.{digits}g}"


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when L-BFGS (full batch) reaches the target (a training loss within
    1% of the lowest any run of the same seed reached; medians over the seeds) at no
    more than twice the gradient-equivalents of the cheapest contender that reaches it;
    Newton reaches it too but pays at least 10 times L-BFGS's gradient-equivalents (its
    Hessian alone costs one Hessian-vector product per parameter); and Adam, a
    first-order method given the same number of full-batch steps, does not reach it.
    The lab report's verdict (on validation accuracy) is quoted, not judged; K-FAC, CG
    and Hessian-free are reported."""
    problems = []
    lbfgs, newton, adam = numbers["lbfgs"], numbers["newton"], numbers["adam"]
    costs = [numbers[name]["gradient_equivalents_to_target"] for name, _ in CONTENDERS]
    reached = [c for c in costs if c is not None]
    lb = lbfgs["gradient_equivalents_to_target"]
    if lb is None:
        problems.append("L-BFGS does not reach the target")
    elif lb > LBFGS_SLACK * min(reached):
        problems.append(
            f"L-BFGS needs {lb:.3g} gradient-equivalents to the target, more than "
            f"{LBFGS_SLACK:g} times the cheapest ({min(reached):.3g})"
        )
    nt = newton["gradient_equivalents_to_target"]
    if nt is None:
        problems.append("Newton does not reach the target")
    elif lb is not None and nt < NEWTON_COST * lb:
        problems.append(f"Newton needs {nt:.3g} gradient-equivalents to the target, less than "
                        f"{NEWTON_COST:g} times L-BFGS's {lb:.3g}")  # fmt: skip
    if adam["steps_to_target"] is not None:
        problems.append(f"Adam reaches the target too, in {adam['steps_to_target']:.0f} steps")
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    return Verdict(
        REPRODUCED,
        f"L-BFGS reaches a training loss within {WITHIN:.0%} of the lowest after "
        f"{_steps(lbfgs['steps_to_target'])} and {lb:.3g} gradient-equivalents; Newton after "
        f"{_steps(newton['steps_to_target'])} but {nt:.3g} gradient-equivalents "
        f"({nt / lb:.0f} times as many, {newton['hvps']:.0f} Hessian-vector products in its "
        f"run); Adam ends at {adam['train_loss']:.3g} within the same budget of "
        f"{adam['steps']:.0f} steps, above its target. The lab report's verdict: "
        f"{numbers['verdict']['text']}",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per contender: its end of run and its way to the target."""
    rows = []
    for name, _ in CONTENDERS:
        r = numbers[name]
        rows.append([
            name, _show(r["train_loss"], 4), _show(r["val_accuracy"], 4),
            _show(r["steps_to_target"]), _show(r["gradient_equivalents_to_target"]),
            _show(r["seconds_to_target"]), _show(r["gradient_equivalents"]),
            "-" if r["hvps"] is None else f"{r['hvps']:.0f}",
        ])  # fmt: skip
    headers = ["optimizer", "train loss", "val accuracy", "steps to target",
               "grad-equivalents to target", "seconds to target", "grad-equivalents, total",
               "curvature products"]  # fmt: skip
    return headers, rows


ENTRY = Entry(
    name="second_order",
    title="Newton, quasi-Newton, Krylov and K-FAC where Newton fits",
    deck=deck("003"),
    slide="Newton's method; BFGS and L-BFGS",
    claim="Where the model is small enough, Newton's method can be run, but each step "
    "costs the Hessian: one Hessian-vector product per parameter before the O(n^3) "
    "solve. L-BFGS, which builds its curvature from gradients alone, works very well "
    "in full batch, deterministic mode, at a small fraction of that cost; a first-order "
    "method given the same number of steps is far behind.",
    tier="standard",
    version=1,
    budgets={
        "standard": {"seeds": 2, "epochs": 15},
        "full": {"seeds": 3, "epochs": 25},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="a lab study (optimlab.lab.runner) and its report (optimlab.lab.report, "
    "the cost axis of optimlab.lab.report.cost); lecture 003, Newton's method, BFGS and "
    "L-BFGS; Nocedal & Wright, Numerical Optimization, ch. 6-7; Martens 2010; Martens & "
    "Grosse 2015",
)
