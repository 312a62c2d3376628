"""write_report on awkward studies: one seed, no test split, all runs failed, no final runs."""

from __future__ import annotations

import re

import pytest
import report_records as rr

from optimlab.errors import OptimlabError
from optimlab.lab.report import analyse_records, verdicts, write_report


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    study = rr.study(targets={}, schedules={})
    out = tmp_path_factory.mktemp("edge")
    return write_report(rr.edge_records(), study, out), analyse_records(rr.edge_records(), study)


def test_edge_report_draws_only_what_the_data_supports(edge):
    paths, _ = edge
    stems = {p.stem for p in paths["figures"].glob("*.png")}
    assert stems == {p.stem for p in paths["figures"].glob("*.svg")}
    # No curves for the all-failed and the tuning-only problem, no tuning plot where every
    # trial failed, no profile with a single timed problem, no schedules figure.
    assert stems == {"curves_tiny_reg", "lr_sensitivity_tiny_reg", "lr_sensitivity_tune_only_mlp"}
    html = paths["html"].read_text(encoding="utf-8")
    assert html.count("<img ") == len(stems)
    md = paths["markdown"].read_text(encoding="utf-8")
    assert re.search(r"\b(nan|inf)\b", md, re.IGNORECASE) is None


def test_edge_verdicts(edge):
    paths, analysis = edge
    by_problem = {v.problem: v for v in verdicts(analysis)}
    reg = by_problem["tiny_reg"]
    assert reg.metric.key == "val_loss" and reg.best == "adam"
    assert reg.separated is None  # one seed each: the spread is unknown
    assert by_problem["broken"].best is None
    assert by_problem["tune_only_mlp"].best is None
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "single finished seed" in md
    assert "Failed: adam 2 of 2 final runs and 1 of 1 tuning trial" in md
    assert "RuntimeError: CUDA out of memory (synthetic)" in md
    assert "Traceback" not in md  # only the first line of an error is shown


def test_no_test_split_falls_back_to_validation_curves(edge):
    paths, _ = edge
    md = paths["markdown"].read_text(encoding="utf-8")
    caption = md.split("figures/curves_tiny_reg.png)")[1].split("\n\n")[1]
    assert "dashed: validation" in caption


def test_unknown_schedule_is_reported_with_its_study_key(tmp_path):
    study = rr.study(targets={}, schedules={"adam": {"name": "cosine_typo", "params": {}}})
    with pytest.raises(OptimlabError, match=r"study\['schedules'\]\['adam'\].*cosine_typo"):
        write_report(rr.edge_records(), study, tmp_path)


def test_unknown_schedule_parameter_is_named(tmp_path):
    study = rr.study(schedules={"sgd": {"name": "cosine", "params": {"T_maxx": 5}}})
    with pytest.raises(OptimlabError, match=r"study\['schedules'\]\['sgd'\].*'T_maxx'"):
        write_report(rr.edge_records(), study, tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_rewriting_a_folder_drops_figures_the_new_report_lacks(tmp_path):
    study = rr.study(targets={}, schedules={})
    (tmp_path / "figures").mkdir()
    stale = tmp_path / "figures" / "schedules.png"
    stale.write_bytes(b"old")
    mine = tmp_path / "figures" / "notes.png"  # not a report figure name: left alone
    mine.write_bytes(b"user file")
    records = [r for r in rr.edge_records() if r["problem"] == "broken"]
    paths = write_report(records, study, tmp_path)
    assert not stale.exists() and mine.exists()
    assert "No final run finished" in paths["markdown"].read_text(encoding="utf-8")
