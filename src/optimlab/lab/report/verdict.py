"""The verdict: short sentences computed from the final statistics, one block per problem.

The rule for "the gap exceeds the seed spread": the difference of the two best means is
larger than the larger of their two sample standard deviations (ddof = 1). Welch's t is
reported beside it so a reader can apply a stricter test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from optimlab.lab.report.analysis import Analysis, ProblemAnalysis
from optimlab.lab.report.fmt import num, plural
from optimlab.lab.report.runs import Metric, is_diverged
from optimlab.lab.report.stats import FinalStats, Welch, ranked, welch


@dataclass(frozen=True)
class ProblemVerdict:
    """The comparison of the two best optimizers on one problem.

    ``separated`` is True when the gap exceeds the larger seed standard deviation, False
    when it does not, None when it cannot be judged (fewer than two optimizers or seeds).
    """

    problem: str
    metric: Metric
    best: str | None = None
    runner_up: str | None = None
    gap: float = math.nan
    spread: float = math.nan
    separated: bool | None = None
    welch: Welch | None = None
    sentences: list[str] = field(default_factory=list)


def _stat(s: FinalStats) -> str:
    spread = "" if math.isnan(s.std) else f" ± {num(s.std, 2)}"
    return f"{num(s.mean)}{spread} over {plural(s.n, 'seed')}"


def _welch_text(w: Welch | None) -> str:
    if w is None:
        return ""
    df = "" if math.isnan(w.df) else f", {w.df:.1f} df"
    # The sign only says which mean is larger; the sentence already names the better one.
    return f" (Welch |t| = {num(abs(w.t), 3)}{df})"


def _comparison(a: FinalStats, b: FinalStats) -> tuple[float, float, bool | None, str]:
    """Gap, larger spread, separation and the sentence weighing the gap against the seeds."""
    gap = abs(a.mean - b.mean)
    if a.n < 2 or b.n < 2:
        single = a.label if a.n < 2 else b.label
        return (
            gap,
            math.nan,
            None,
            f"With a single finished seed for {single} the seed spread is unknown, so the "
            "gap cannot be weighed against noise.",
        )
    spread = max(a.std, b.std)
    w = _welch_text(welch(a, b))
    if spread == 0:
        separated = gap > 0
        how = "exceeds" if separated else "does not exceed"
        return gap, spread, separated, f"Both have zero seed spread, so the gap {how} it{w}."
    ratio = gap / spread
    if gap > spread:
        text = (
            f"The gap is {ratio:.2g} times the larger seed standard deviation ({num(spread, 2)}): "
            f"it exceeds the seed spread{w}."
        )
        return gap, spread, True, text
    text = (
        f"The gap is {ratio:.2g} times the larger seed standard deviation ({num(spread, 2)}): "
        f"it is within the seed spread, so these seeds do not separate {a.label} from "
        f"{b.label}{w}."
    )
    return gap, spread, False, text


def _troubles(p: ProblemAnalysis) -> str:
    """Diverged and failed counts per optimizer and phase, or a sentence saying there were none."""
    parts: dict[str, list[str]] = {"diverged": [], "failed": []}
    for optimizer in sorted({r.label for r in p.runs}):
        found: dict[str, list[str]] = {"diverged": [], "failed": []}
        for phase, noun in (("final", "final run"), ("tune", "tuning trial")):
            runs = [r for r in p.runs if r.label == optimizer and r.phase == phase]
            bad = {
                "diverged": sum(is_diverged(r, p.metric.key) for r in runs),
                "failed": sum(r.status == "failed" for r in runs),
            }
            for kind, k in bad.items():
                if k:
                    found[kind].append(f"{k} of {plural(len(runs), noun)}")
        for kind, items in found.items():
            if items:
                parts[kind].append(f"{optimizer} {' and '.join(items)}")
    if not parts["diverged"] and not parts["failed"]:
        return "No run diverged or failed."
    return " ".join(
        f"{kind.capitalize()}: {'; '.join(items)}." for kind, items in parts.items() if items
    )


def problem_verdict(p: ProblemAnalysis) -> ProblemVerdict:
    """The verdict for one problem."""
    key = p.metric.key
    order = ranked(p.stats)
    troubles = _troubles(p)
    if not order:
        text = f"No final run finished with a finite {key}, so no optimizer can be ranked."
        return ProblemVerdict(p.problem, p.metric, sentences=[text, troubles])
    a = order[0]
    if len(order) == 1:
        text = f"Only {a.label} has finished final runs ({key} {_stat(a)}); nothing to compare."
        return ProblemVerdict(p.problem, p.metric, best=a.label, sentences=[text, troubles])
    b = order[1]
    gap, spread, separated, weighed = _comparison(a, b)
    better = "highest" if p.metric.mode == "max" else "lowest"
    if gap == 0:
        lead = f"{a.label} and {b.label} tie on mean {key}: {_stat(a)} and {_stat(b)}."
    else:
        lead = (
            f"{a.label} has the {better} mean {key}, {_stat(a)}, ahead of the runner-up "
            f"{b.label} ({_stat(b)}) by {num(gap, 3)}."
        )
    return ProblemVerdict(
        problem=p.problem,
        metric=p.metric,
        best=a.label,
        runner_up=b.label,
        gap=gap,
        spread=spread,
        separated=separated,
        welch=welch(a, b),
        sentences=[lead, weighed, troubles],
    )


def overall(analysis: Analysis) -> list[str]:
    """The cross-problem sentence from the performance-profile scores (2+ problems)."""
    if not analysis.scores:
        return []
    order = sorted(analysis.scores.items(), key=lambda kv: (-kv[1], kv[0]))
    unit = {"time": "seconds", "step": "optimizer steps", "epoch": "epochs"}[analysis.clock]
    first, score = order[0]
    text = (
        f"Across {plural(len(analysis.profile_times), 'problem')}, {first} has the highest "
        f"performance-profile score, {score:.2f} (time to target counted in {unit}; "
        "1 = fastest on every problem, 0 = never within 4 times the fastest)"
    )
    if len(order) > 1:
        rest = ", ".join(f"{o} {s:.2f}" for o, s in order[1:])
        text += f"; then {rest}"
    return [text + "."]


def verdicts(analysis: Analysis) -> list[ProblemVerdict]:
    """One verdict per problem, in problem order."""
    return [problem_verdict(p) for p in analysis.problems]
