"""Time and steps to a target, and AlgoPerf-style performance profiles.

A run reaches the target at the first history row whose selection metric is at least
as good as it. An optimizer's time on a problem is the median over its final seeds,
a seed that never reaches the target (or failed) counting as infinitely slow, so the
median is finite only when at least half the seeds get there.

Performance profile (AlgoPerf): with ``r[p, o] = t[p, o] / min_o t[p, o]``,
``rho_o(tau)`` is the fraction of problems with ``r[p, o] <= tau`` and the score is the
integral of ``rho_o`` over ``tau`` in ``[1, tau_max]`` divided by ``tau_max - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optimlab.errors import OptimlabError
from optimlab.lab.report.runs import Metric, Run, finite
from optimlab.lab.report.stats import FinalStats

TAU_MAX = 4.0


@dataclass(frozen=True)
class Reach:
    """Where one run first reached the target: its epoch, seconds, optimizer steps and
    examples evaluated (forward-backward passes times batch size: the cost axis on which
    full-batch, line-search and mini-batch methods compare)."""

    epoch: float | None
    time: float | None
    step: float | None
    examples: float | None = None


def first_reach(run: Run, metric: Metric, target: float) -> Reach | None:
    """The first history row of ``run`` meeting ``target``; None when none does."""
    for row in run.history:
        value = finite(row.get(metric.key))
        if value is not None and metric.reaches(value, target):
            return Reach(*(finite(row.get(k)) for k in ("epoch", "time", "step", "examples")))
    return None


def default_target(stats: Sequence[FinalStats]) -> float | None:
    """The median over optimizers of each one's mean final metric (None when no values).

    An optimizer's time to target is the median over its seeds, so the target must be
    one that a typical seed reaches: with this choice, roughly the better half of the
    optimizers get a finite time (a target from the best seeds would leave nearly
    every median infinite).
    """
    means = [s.mean for s in stats if s.n]
    return float(np.median(means)) if means else None


@dataclass(frozen=True)
class TargetTimes:
    """One optimizer's runs on one problem measured against the target."""

    label: str  # the contender's label, as in the study file
    runs: int
    reached: int
    epoch: float
    time: float
    step: float
    examples: float = math.nan


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.inf


def target_times(label: str, runs: Sequence[Run], metric: Metric, target: float) -> TargetTimes:
    """Median epoch, time, step and examples to ``target`` over ``runs`` (infinite when
    not reached).

    A reached row that lacks one of them gives NaN for that clock.
    """
    clocks: dict[str, list[float]] = {k: [] for k in ("epoch", "time", "step", "examples")}
    reached = 0
    for run in runs:
        hit = first_reach(run, metric, target)
        reached += hit is not None
        for key, values in clocks.items():
            value = math.inf if hit is None else getattr(hit, key)
            values.append(math.nan if value is None else value)
    return TargetTimes(
        label=label,
        runs=len(runs),
        reached=reached,
        **{key: _median(values) for key, values in clocks.items()},
    )


def _check_times(times: Mapping[str, Mapping[str, float]]) -> list[str]:
    optimizers = sorted({o for row in times.values() for o in row})
    for problem, row in times.items():
        for optimizer, t in row.items():
            if isinstance(t, bool) or not isinstance(t, int | float) or math.isnan(t) or t <= 0:
                raise OptimlabError(
                    f"time to target of {optimizer!r} on {problem!r} must be a positive "
                    f"number or inf, got {t!r}"
                )
    return optimizers


def ratios(times: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``r[problem][optimizer] = t / best t on that problem``; inf when it never got there.

    An optimizer missing from a problem counts as not reaching the target there.
    """
    optimizers = _check_times(times)
    out: dict[str, dict[str, float]] = {}
    for problem, row in times.items():
        best = min(row.values(), default=math.inf)
        out[problem] = {
            o: (row[o] / best if o in row and math.isfinite(row[o]) else math.inf)
            for o in optimizers
        }
    return out


def profile(
    times: Mapping[str, Mapping[str, float]], taus: Sequence[float]
) -> dict[str, list[float]]:
    """``rho_o(tau)`` for each optimizer at each ``tau``: the fraction of problems within it."""
    r = ratios(times)
    if not r:
        raise OptimlabError("a performance profile needs at least one problem")
    optimizers = sorted({o for row in r.values() for o in row})
    n = len(r)
    return {o: [sum(r[p][o] <= tau for p in r) / n for tau in taus] for o in optimizers}


def profile_scores(
    times: Mapping[str, Mapping[str, float]], tau_max: float = TAU_MAX
) -> dict[str, float]:
    """The normalised area under each optimizer's profile over ``[1, tau_max]``.

    ``rho`` is a step function, so the integral is exact: a problem solved with ratio
    ``r`` adds ``max(0, tau_max - r) / (tau_max - 1)`` divided by the number of problems.
    1.0 means fastest everywhere, 0 means never within ``tau_max`` of the fastest.
    """
    if not (finite(tau_max) is not None and tau_max > 1):
        raise OptimlabError(f"tau_max must be a finite number > 1, got {tau_max!r}")
    r = ratios(times)
    if not r:
        raise OptimlabError("a performance profile needs at least one problem")
    optimizers = sorted({o for row in r.values() for o in row})
    span = tau_max - 1.0
    return {
        o: sum(max(0.0, tau_max - r[p][o]) / span for p in r if math.isfinite(r[p][o])) / len(r)
        for o in optimizers
    }
