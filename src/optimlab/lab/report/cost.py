"""The cost axis: training loss against gradient-equivalents and against wall time.

Per step, a second-order method does more than a first-order one (line-search
evaluations, Hessian-vector products), so a comparison per step or per epoch flatters
it. The runs record what they computed (cumulative, per epoch row): ``examples``, the
examples every forward-backward pass went through (closure calls included), ``hvps``,
the curvature products (Hessian-, Gauss-Newton- or Fisher-vector) of the optimizers that
count them, ``batch_size``, the batch each step of the epoch evaluated (the training
set's size in full batch), and ``time``, the seconds since the run began.

The convention, in examples: one forward-backward pass over a batch of ``B`` examples
costs ``B`` gradient-equivalents, and so does one curvature product on that batch (a
Hessian-vector product costs a small constant number of gradients, Pearlmutter 1994;
``optimlab bench curvature`` measures that constant, about 1-3 on the problems here).
So after epoch ``e``::

    gradient-equivalents(e) = examples(e) + sum over epochs i <= e of
                              (hvps(i) - hvps(i - 1)) * batch_size(i)

A run that records no ``hvps`` (a first-order optimizer) has none to add. The section
appears when a problem's final runs include one that records ``hvps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from optimlab.lab.report.analysis import ProblemAnalysis
from optimlab.lab.report.curves import curve_runs, quartiles
from optimlab.lab.report.document import Table
from optimlab.lab.report.figures import FigureFile, new_figure, save, slug
from optimlab.lab.report.fmt import count, num, seconds
from optimlab.lab.report.runs import Run, finite


def gradient_equivalents(run: Run) -> list[float | None]:
    """Per history row, the cumulative gradient-equivalents (see the module's
    convention); None from the first row that lacks ``examples`` (or, after a row with
    ``hvps``, lacks ``hvps`` or ``batch_size``)."""
    out: list[float | None] = []
    curvature, hvps_before, broken = 0.0, 0.0, False
    for row in run.history:
        examples = finite(row.get("examples"))
        hvps = finite(row.get("hvps"))
        if examples is None or broken:
            broken = True
            out.append(None)
            continue
        if hvps is not None:
            batch = finite(row.get("batch_size"))
            if batch is None:
                broken = True
                out.append(None)
                continue
            curvature += (hvps - hvps_before) * batch
            hvps_before = hvps
        elif hvps_before:
            broken = True
            out.append(None)
            continue
        out.append(examples + curvature)
    return out


def records_curvature(runs: list[Run]) -> bool:
    """Whether any of ``runs`` records curvature products."""
    return any(finite(row.get("hvps")) is not None for r in runs for row in r.history)


@dataclass(frozen=True)
class Cost:
    """One contender's final runs: medians over its seeds of the last row's training
    loss, gradient-equivalents, curvature products and seconds."""

    label: str
    runs: int
    loss: float
    gradient_equivalents: float
    hvps: float
    time: float


def _median(values: list[float | None]) -> float:
    finite_values = [v for v in values if v is not None]
    return float(np.median(finite_values)) if finite_values else float("nan")


def costs(p: ProblemAnalysis) -> list[Cost]:
    """Per contender with final runs, its :class:`Cost` (diverged seeds left out where
    others finished, as the learning curves do)."""
    out = []
    for label in sorted({r.label for r in p.runs}):
        runs, _ = curve_runs([r for r in p.runs if r.label == label])
        if not runs:
            continue
        last = [r.history[-1] for r in runs]
        out.append(Cost(
            label=label,
            runs=len(runs),
            loss=_median([finite(row.get("loss")) for row in last]),
            gradient_equivalents=_median([gradient_equivalents(r)[-1] for r in runs]),
            hvps=_median([finite(row.get("hvps")) for row in last]),
            time=_median([finite(row.get("time")) for row in last]),
        ))  # fmt: skip
    return out


def cost_table(p: ProblemAnalysis) -> Table | None:
    """The final training loss and what it cost, per contender; None when no final run
    of the problem records curvature products."""
    if not records_curvature([r for r in p.runs if r.phase == "final"]):
        return None
    rows = [
        [c.label, count(c.runs, c.runs), num(c.loss), num(c.gradient_equivalents, 3),
         "–" if c.hvps != c.hvps else num(c.hvps, 6), seconds(c.time)]
        for c in costs(p)
    ]  # fmt: skip
    caption = (
        "Medians over the final seeds at the end of each run. Gradient-equivalents, in "
        "examples: every forward-backward pass counts its batch's examples and every "
        "Hessian- (Gauss-Newton-, Fisher-) vector product the examples of the batch it is "
        "taken on, as one gradient would; '–': the optimizer counts no curvature products."
    )
    headers = ["optimizer", "runs", "train loss", "gradient-equivalents", "curvature products",
               "time"]  # fmt: skip
    return Table(headers, rows, caption, frozenset({1, 2, 3, 4, 5}))


def _axis(runs: list[Run], values: list[list[float | None]]) -> tuple[np.ndarray, np.ndarray]:
    """The median x (over seeds, per epoch row) and the median training loss, both cut
    to the rows every seed has."""
    n = min(len(v) for v in values)
    x = np.array([[np.nan if v[i] is None else v[i] for i in range(n)] for v in values])
    loss = np.array([[finite(r.history[i].get("loss")) or np.nan for i in range(n)]
                     for r in runs])  # fmt: skip
    return quartiles(x)[1], quartiles(loss)[1]


def cost_figure(p: ProblemAnalysis, palette: dict[str, str], out_dir: Path) -> FigureFile | None:
    """Training loss against gradient-equivalents and against seconds, the median over
    each contender's final seeds; None when no final run records curvature products."""
    if not records_curvature([r for r in p.runs if r.phase == "final"]):
        return None
    fig, axes = new_figure(2)
    handles = []
    positive = True
    for label in sorted({r.label for r in p.runs}):
        runs, _ = curve_runs([r for r in p.runs if r.label == label])
        if not runs:
            continue
        colour = palette[label]
        clocks = (
            [gradient_equivalents(r) for r in runs],
            [[finite(row.get("time")) for row in r.history] for r in runs],
        )
        for ax, values in zip(axes, clocks, strict=False):
            x, loss = _axis(runs, values)
            ax.plot(x, loss, "-o", color=colour, markersize=2.5, linewidth=1.4)
            positive = positive and bool(np.all(loss[np.isfinite(loss)] > 0))
        handles.append(Line2D([], [], color=colour, lw=2, label=label))
    for ax, xlabel in zip(axes, ("gradient-equivalents (examples)", "seconds"), strict=False):
        ax.set_xscale("log")
        if positive:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training loss")
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle(f"{p.problem}: training loss against cost", fontsize=11)
    caption = (
        "Median over the final seeds, one point per epoch: the training loss as the epoch "
        "recorded it (the mean over its batches, at the weights before each step; in full "
        "batch the loss before the epoch's one step) against the cost at the epoch's end. "
        "Left: gradient-equivalents (examples through forward-backward passes, plus each "
        "curvature product counted as one gradient of its batch); right: wall-clock "
        "seconds, evaluation included."
    )
    return save(fig, out_dir, f"cost_{slug(p.problem)}", f"Cost: {p.problem}", caption)
