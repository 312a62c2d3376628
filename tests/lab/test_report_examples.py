"""Time to target on the examples axis: what full-batch and line-search methods pay."""

from __future__ import annotations

import math

import numpy as np
import report_records as rr

from optimlab.lab.report import analyse_records
from optimlab.lab.report.fmt import num
from optimlab.lab.report.tables import target_table
from optimlab.lab.report.targets import first_reach


def test_examples_to_target_are_the_medians_of_the_first_reaching_rows():
    per_epoch = {"adam": 1000, "sgd": 3000, "rmsprop": 1000}  # sgd pays three times more
    records = []
    for r in rr.records(problems=("digits_mlp",)):
        rows = [{**row, "examples": row["epoch"] * per_epoch[r["label"]]}
                for row in r["history"]]  # fmt: skip
        records.append({**r, "history": rows})
    analysis = analyse_records(records, rr.study())
    (problem,) = analysis.problems
    for t in problem.times:
        finals = [r for r in analysis.runs if r.phase == "final" and r.label == t.label]
        hits = [first_reach(r, problem.metric, problem.target) for r in finals]
        want = [math.inf if h is None else h.epoch * per_epoch[t.label] for h in hits]
        assert t.examples == float(np.median(want))
    assert any(math.isfinite(t.examples) for t in problem.times)
    table = target_table(problem)
    assert table.headers[-1] == "examples"
    assert [row[-1] for row in table.rows] == [num(t.examples, 3) for t in problem.times]
