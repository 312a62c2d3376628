"""All the numbers of a report, computed once from the runs and read by every renderer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from optimlab.lab.report.runs import Metric, Run, Study, problem_metric, select, sorted_names
from optimlab.lab.report.stats import FinalStats, final_stats
from optimlab.lab.report.targets import (
    TargetTimes,
    default_target,
    profile_scores,
    target_times,
)

CLOCKS = ("time", "step", "epoch")


@dataclass(frozen=True)
class ProblemAnalysis:
    """One problem: its metric, per-optimizer final statistics and times to target."""

    problem: str
    metric: Metric
    runs: list[Run]
    stats: list[FinalStats]
    target: float | None
    target_from_study: bool
    times: list[TargetTimes]


@dataclass(frozen=True)
class Analysis:
    """The whole study: problems, optimizers and, with 2+ problems, profile scores."""

    study: Study
    runs: list[Run]
    labels: list[str]
    problems: list[ProblemAnalysis]
    clock: str
    profile_times: dict[str, dict[str, float]]
    scores: dict[str, float]


def analyse_problem(problem: str, runs: list[Run], study: Study) -> ProblemAnalysis:
    """Statistics and times to target for one problem's runs."""
    metric = problem_metric(runs, study)
    stats = [
        final_stats(select(runs, label=o), metric)
        for o in sorted_names(runs, "label")
        if select(runs, label=o, phase="final")
    ]
    from_study = problem in study.targets
    target = study.targets[problem] if from_study else default_target(stats)
    times: list[TargetTimes] = []
    if target is not None:
        times = [
            target_times(s.label, select(runs, label=s.label, phase="final"), metric, target)
            for s in stats
        ]
    return ProblemAnalysis(problem, metric, runs, stats, target, from_study, times)


def _clock(problems: list[ProblemAnalysis]) -> str:
    """The first clock that every run reaching a target recorded: seconds, else steps."""
    times = [t for p in problems for t in p.times]
    for clock in CLOCKS:
        if all(not math.isnan(getattr(t, clock)) for t in times):
            return clock
    return "epoch"


def analyse(runs: list[Run], study: Study) -> Analysis:
    """Analyse every problem; the profile needs two or more problems with a target."""
    problems = [
        analyse_problem(p, select(runs, problem=p), study) for p in sorted_names(runs, "problem")
    ]
    clock = _clock(problems)
    profile_times: dict[str, dict[str, float]] = {}
    for p in problems:
        row = {t.label: getattr(t, clock) for t in p.times}
        # NaN (a clock missing) would poison the ratios; such a run counts as not timed.
        row = {o: (math.inf if math.isnan(v) else v) for o, v in row.items()}
        # A target met at time 0 (already at the start) would make every ratio infinite.
        row = {o: max(v, 1e-9) for o, v in row.items()}
        if row:
            profile_times[p.problem] = row
    scores = profile_scores(profile_times) if len(profile_times) >= 2 else {}
    return Analysis(
        study=study,
        runs=runs,
        labels=sorted_names(runs, "label"),
        problems=problems,
        clock=clock,
        profile_times=profile_times,
        scores=scores,
    )
