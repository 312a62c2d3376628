"""Statistics over the final seeds: the numbers behind the final-performance table."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optimlab.lab.report.runs import FINISHED, Metric, Run, is_diverged


@dataclass(frozen=True)
class FinalStats:
    """One optimizer's final runs on one problem.

    ``values`` are the selection metric of the runs that finished with a finite value;
    ``std`` is the sample standard deviation (ddof = 1), NaN with fewer than two values.
    A run that finished with a non-finite metric counts as diverged.
    """

    problem: str
    label: str  # the contender's label, as in the study file
    metric: Metric
    values: tuple[float, ...]
    runs: int
    diverged: int
    failed: int
    lr: float | None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else math.nan

    @property
    def best(self) -> float:
        return self.metric.best(self.values) if self.values else math.nan


def final_stats(runs: list[Run], metric: Metric) -> FinalStats:
    """Summarise one problem-optimizer pair's ``final`` runs (all other runs are ignored)."""
    finals = [run for run in runs if run.phase == "final"]
    values: list[float] = []
    diverged = failed = 0
    for run in finals:
        value = run.value(metric.key)
        if run.status == "failed":
            failed += 1
        elif is_diverged(run, metric.key):
            diverged += 1
        elif run.status in FINISHED and value is not None:
            values.append(value)
    lrs = [run.lr for run in finals if run.lr is not None]
    first = runs[0]
    return FinalStats(
        problem=first.problem,
        label=first.label,
        metric=metric,
        values=tuple(values),
        runs=len(finals),
        diverged=diverged,
        failed=failed,
        lr=lrs[0] if lrs else None,
    )


@dataclass(frozen=True)
class Welch:
    """Welch's t statistic for two means and its Welch-Satterthwaite degrees of freedom."""

    t: float
    df: float


def welch(a: FinalStats, b: FinalStats) -> Welch | None:
    """Welch's t of ``a.mean - b.mean``; None when either side has fewer than two values."""
    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se = math.sqrt(va + vb)
    diff = a.mean - b.mean
    if se == 0:
        return Welch(t=math.copysign(math.inf, diff) if diff else 0.0, df=math.nan)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return Welch(t=diff / se, df=df)


def ranked(stats: list[FinalStats]) -> list[FinalStats]:
    """The pairs with at least one finished final run, best mean first (ties by name)."""
    usable = [s for s in stats if s.n]
    sign = -1.0 if (usable and usable[0].metric.mode == "max") else 1.0
    return sorted(usable, key=lambda s: (sign * s.mean, s.label))
