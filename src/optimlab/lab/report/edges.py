"""Selected settings at the edge of what was tried: the search space may be too narrow.

A tuned value equal to the smallest or largest value its tuning runs tried says that the
best setting may lie outside the range (DeepOBS' learning-rate grid, a random search's
box): the report names the value and the range and suggests widening it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optimlab.lab.report.runs import Run


@dataclass(frozen=True)
class Edge:
    problem: str
    label: str
    key: str
    value: float
    low: float
    high: float

    @property
    def side(self) -> str:
        return "lowest" if self.value == self.low else "highest"

    def sentence(self) -> str:
        return (
            f"{self.problem} / {self.label}: the selected {self.key} = {self.value:.3g} is "
            f"the {self.side} value tried (tried {self.low:.3g} to {self.high:.3g}); the best "
            f"setting may lie beyond it: widen the search on that side."
        )


def edges(runs: list[Run]) -> list[Edge]:
    """Each numeric hyperparameter of a final configuration that sits at the low or high
    end of the values its tuning runs tried (when they tried more than one)."""
    found = []
    finals = {(r.problem, r.label): r.params for r in runs if r.phase == "final"}
    for (problem, label), params in sorted(finals.items()):
        where = ("tune", problem, label)
        tuned = [r.params for r in runs if (r.phase, r.problem, r.label) == where]
        for key, value in sorted(params.items()):
            if not _number(value):
                continue
            tried = sorted({p[key] for p in tuned if _number(p.get(key))})
            if len(tried) > 1 and value in (tried[0], tried[-1]):
                found.append(Edge(problem, label, key, value, tried[0], tried[-1]))
    return found


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
