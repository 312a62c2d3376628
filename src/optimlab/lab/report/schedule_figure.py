"""The schedules figure: each optimizer's learning rate against the step, as the study ran it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optimlab.errors import OptimlabError
from optimlab.lab.report.analysis import Analysis, ProblemAnalysis
from optimlab.lab.report.figures import FigureFile, new_figure, save
from optimlab.lab.report.runs import finite
from optimlab.schedules import create
from optimlab.schedules.registry import run_params

# Evaluating a schedule is a Python call per step; a few thousand points draw any curve.
MAX_POINTS = 2000


def final_steps(p: ProblemAnalysis, optimizer: str) -> int | None:
    """The most optimizer steps any final run of ``optimizer`` recorded on this problem."""
    steps = [
        finite(row.get("step"))
        for r in p.runs
        if r.label == optimizer and r.phase == "final"
        for row in r.history
    ]
    steps = [s for s in steps if s is not None and s > 0]
    return int(max(steps)) if steps else None


def schedule_params(
    spec: dict[str, Any], p: ProblemAnalysis, optimizer: str, steps: int | None = None
) -> dict[str, Any]:
    """The schedule's parameters as its runs used them: a missing ``lr`` is the final
    runs' tuned learning rate, a missing horizon their number of steps."""
    lr = next((s.lr for s in p.stats if s.label == optimizer and s.lr), None)
    return run_params(spec["name"], spec.get("params", {}), lr=lr, total_steps=steps)


def lr_curve(
    spec: dict[str, Any], params: dict[str, Any], steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Steps and learning rates of the schedule over ``steps`` steps."""
    schedule = create(spec["name"], **params)
    xs = np.unique(np.linspace(0, steps - 1, min(steps, MAX_POINTS)).round().astype(int))
    return xs, np.array([float(schedule(int(x))) for x in xs])


def _same(a: list, b: list) -> bool:
    """Whether two panels' lines are the same optimizers, schedules and values."""
    return len(a) == len(b) and all(
        x[:2] == y[:2] and np.array_equal(x[2], y[2]) and np.array_equal(x[3], y[3])
        for x, y in zip(a, b)
    )


def schedule_figure(
    analysis: Analysis, palette: dict[str, str], out_dir: Path
) -> FigureFile | None:
    """A panel per group of problems with identical schedules; None when there are none."""
    schedules = analysis.study.schedules
    if not schedules:
        return None
    panels: list[tuple[list[str], list]] = []
    for p in analysis.problems:
        lines = []
        for optimizer in sorted(set(schedules) & {r.label for r in p.runs}):
            steps = final_steps(p, optimizer)
            if steps is None:
                continue
            spec = schedules[optimizer]
            where = f"study['schedules'][{optimizer!r}] on problem {p.problem!r}"
            try:
                xs, ys = lr_curve(spec, schedule_params(spec, p, optimizer, steps), steps)
            except OptimlabError as err:
                raise OptimlabError(f"{where}: {err}") from None
            lines.append((optimizer, spec["name"], xs, ys))
        if not lines:
            continue
        # Problems whose schedules came out identical share one panel.
        same = next((panel for panel in panels if _same(panel[1], lines)), None)
        if same is None:
            panels.append(([p.problem], lines))
        else:
            same[0].append(p.problem)
    if not panels:
        return None
    fig, axes = new_figure(len(panels), height=3.2)
    for ax, (problems, lines) in zip(axes, panels):
        for optimizer, name, xs, ys in lines:
            ax.plot(xs, ys, color=palette[optimizer], lw=1.6, label=f"{optimizer}: {name}")
        ax.set_title(", ".join(problems), fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("learning rate")
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle("Learning-rate schedules", fontsize=11)
    caption = (
        "The learning rate each scheduled optimizer used against the step, over as many steps "
        "as its final runs took; where the study gave no base lr, the tuned one is used."
    )
    return save(fig, out_dir, "schedules", "Learning-rate schedules", caption)
