"""The report's cost axis on a small real study: gradient-equivalents come from the
counts the runs recorded (examples, curvature products, batch sizes), wall time from
their clocks."""

from __future__ import annotations

import pytest

from optimlab.lab import parse_study
from optimlab.lab.report import analyse_records
from optimlab.lab.report.cost import cost_table, costs, gradient_equivalents
from optimlab.lab.report.runs import read_run
from optimlab.lab.runner import run_study
from optimlab.lab.store import Store

STUDY = """
name = "cost"
problems = ["linreg"]
seeds = 1
batch_size = 64
[budget]
epochs = 3
[protocol]
kind = "fixed"
[[optimizers]]
name = "hessian_free"
run = { order = "full" }
[[optimizers]]
name = "sgd"
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("cost")
    result = run_study(parse_study(STUDY), out, quiet=True)
    records = list(Store(result["storage"]).records())
    return out, records


def _by_label(records):
    return {r["label"]: r for r in records}


def test_gradient_equivalents_add_each_epochs_products_times_its_batch(study):
    _, records = study
    by = _by_label(records)
    hf = by["hessian_free"]["history"]
    assert hf[-1]["hvps"] > 0  # the curvature products are there to count
    # full batch: every product is on the whole training set, batch_size examples
    expected, products, before = [], 0, 0
    for row in hf:
        products += (row["hvps"] - before) * row["batch_size"]
        before = row["hvps"]
        expected.append(row["examples"] + products)
    assert hf[-1]["batch_size"] > 64  # the training set, not the study's batch
    got = gradient_equivalents(read_run(by["hessian_free"], 0))
    assert got == pytest.approx(expected, rel=1e-12)
    assert got[-1] > hf[-1]["examples"]
    # a first-order run records no products: its axis is its examples
    sgd = by["sgd"]["history"]
    assert "hvps" not in sgd[-1]
    assert gradient_equivalents(read_run(by["sgd"], 1)) == [row["examples"] for row in sgd]


def test_the_report_shows_the_axis_beside_wall_time(study):
    out, records = study
    study_facts = {"name": "cost", "metric": "val_loss", "mode": "min", "protocol": "fixed"}
    analysis = analyse_records(records, study_facts)
    (problem,) = analysis.problems
    by = _by_label(records)
    got = {c.label: c for c in costs(problem)}
    for label, record in by.items():
        last = record["history"][-1]
        assert got[label].time == last["time"]  # the run's clock, not a new one
        assert got[label].loss == pytest.approx(last["loss"])
    hf_last = by["hessian_free"]["history"][-1]
    assert got["hessian_free"].hvps == hf_last["hvps"]
    assert got["hessian_free"].gradient_equivalents == pytest.approx(
        gradient_equivalents(read_run(by["hessian_free"], 0))[-1]
    )
    table = cost_table(problem)
    rows = {row[0]: row for row in table.rows}
    assert rows["sgd"][4] == "–"
    md = (out / "report" / "report.md").read_text()
    assert "## Loss against cost" in md and "figures/cost_linreg.png" in md
    assert (out / "report" / "figures" / "cost_linreg.svg").stat().st_size > 1000
