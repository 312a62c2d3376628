"""The report's tables: final performance, time to target, profile scores, run status."""

from __future__ import annotations

import math
from collections import Counter

from optimlab.lab.report.analysis import Analysis, ProblemAnalysis
from optimlab.lab.report.document import Bullets, Table
from optimlab.lab.report.fmt import count, num, seconds
from optimlab.lab.report.runs import STATUSES
from optimlab.lab.report.stats import ranked


def better_word(mode: str) -> str:
    return "higher" if mode == "max" else "lower"


def final_table(p: ProblemAnalysis) -> Table:
    """Mean, standard deviation and best of the selection metric per optimizer, best first."""
    key = p.metric.key
    order = ranked(p.stats)
    order += [s for s in p.stats if s not in order]
    rows = [
        [
            s.label,
            num(s.lr, 3),
            count(s.n, s.runs),
            num(s.mean),
            num(s.std),
            num(s.best),
            str(s.diverged),
            str(s.failed),
        ]
        for s in order
    ]
    caption = (
        f"{key} over the final seeds ({better_word(p.metric.mode)} is better). 'seeds' counts "
        "runs that finished with a finite value out of all final runs; std is the sample "
        "standard deviation (ddof = 1); diverged and failed runs are not in the statistics."
    )
    headers = ["optimizer", "lr", "seeds", f"mean {key}", "std", "best", "diverged", "failed"]
    return Table(headers, rows, caption, frozenset({1, 2, 3, 4, 5, 6, 7}))


def target_table(p: ProblemAnalysis) -> Table | None:
    """Runs reaching the target and median epoch, time, steps and examples evaluated to
    it; None without target."""
    if p.target is None or not p.times:
        return None
    rows = [
        [t.label, count(t.reached, t.runs), num(t.epoch, 3), seconds(t.time), num(t.step, 6),
         num(t.examples, 3)]
        for t in p.times
    ]  # fmt: skip
    sign = "≥" if p.metric.mode == "max" else "≤"
    source = (
        "set by the study"
        if p.target_from_study
        else "the median over optimizers of each one's mean final value"
    )
    caption = (
        f"Target: {p.metric.key} {sign} {num(p.target)} ({source}). Medians over the final "
        "seeds of the first epoch reaching it, its wall-clock time, optimizer steps and the "
        "examples evaluated until then (forward-backward passes times their batch size: "
        "line searches and full batches pay here); a seed that never reaches it counts as "
        "infinitely slow (∞ = fewer than half got there)."
    )
    headers = ["optimizer", "reached", "epoch", "time", "steps", "examples"]
    return Table(headers, rows, caption, frozenset({1, 2, 3, 4, 5}))


def scores_table(analysis: Analysis) -> Table | None:
    """Profile score and the number of problems where each optimizer reached the target."""
    if not analysis.scores:
        return None
    n = len(analysis.profile_times)
    order = sorted(analysis.scores.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = []
    for optimizer, score in order:
        reached = sum(
            math.isfinite(row.get(optimizer, math.inf)) for row in analysis.profile_times.values()
        )
        rows.append([optimizer, f"{score:.3f}", count(reached, n)])
    caption = "Performance-profile score (area under rho over tau in [1, 4], divided by 3)."
    return Table(["optimizer", "score", "problems reached"], rows, caption, frozenset({1, 2}))


def status_table(analysis: Analysis) -> Table:
    """How every run ended, per problem, optimizer and phase."""
    groups: dict[tuple[str, str, str], Counter[str]] = {}
    for run in analysis.runs:
        groups.setdefault((run.problem, run.label, run.phase), Counter())[run.status] += 1
    rows = []
    for (problem, optimizer, phase), counts in sorted(groups.items()):
        ended = ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in STATUSES if counts[s])
        rows.append([problem, optimizer, phase, str(sum(counts.values())), ended])
    headers = ["problem", "optimizer", "phase", "runs", "how they ended"]
    return Table(headers, rows, "Every run of the study by outcome.", frozenset({3}))


def failures(analysis: Analysis, limit: int = 20, width: int = 200) -> Bullets | None:
    """The first line of each failed run's error (at most ``limit``); None when none failed."""
    failed = [r for r in analysis.runs if r.status == "failed"]
    if not failed:
        return None
    items = []
    for run in failed[:limit]:
        first = (run.error.strip().splitlines() or ["no error message recorded"])[0]
        if len(first) > width:
            first = first[: width - 1] + "…"
        seed = "" if run.seed is None else f", seed {run.seed}"
        lr = "" if run.lr is None else f", lr {num(run.lr, 3)}"
        items.append(f"{run.problem} / {run.label} ({run.phase}{seed}{lr}): {first}")
    if len(failed) > limit:
        items.append(f"… and {len(failed) - limit} more failed runs.")
    return Bullets(items)
