"""The report flags a selected setting at the edge of the values tried."""

from __future__ import annotations

import report_records as rr

from optimlab.lab.report import analyse_records, write_report
from optimlab.lab.report.edges import edges


def _records_with_adam_at(lr: float) -> list[dict]:
    out = []
    for r in rr.records(problems=("digits_mlp",)):
        if r["label"] == "adam" and r["phase"] == "final":
            r = {**r, "params": {"lr": lr}}
        out.append(r)
    return out


def test_a_selection_at_the_edge_is_flagged_and_an_inner_one_is_not(tmp_path):
    low = min(rr.LRS)
    analysis = analyse_records(_records_with_adam_at(low), rr.study())
    found = edges(analysis.runs)
    assert [(e.label, e.key, e.side) for e in found] == [("adam", "lr", "lowest")]
    assert (found[0].low, found[0].high) == (min(rr.LRS), max(rr.LRS))
    paths = write_report(_records_with_adam_at(low), rr.study(), tmp_path)
    text = paths["markdown"].read_text()
    assert "At the edge of the search space" in text
    assert "adam: the selected lr = 0.0001 is the lowest value tried" in text
    # the untouched grid: every tuned lr (1e-3, 1e-1) lies inside 1e-4..1
    assert edges(analyse_records(rr.records(problems=("digits_mlp",)), rr.study()).runs) == []
