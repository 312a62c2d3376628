"""The second_order entry: its verdict rule on fixed numbers, and a small real study
through the gallery's runner, run twice (the second run resumes the stored study)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from gallery_helpers import assert_contradicted, assert_verdict, changed

from optimlab.gallery.entries import second_order
from optimlab.gallery.entry import REPRODUCED
from optimlab.gallery.runner import WORK, run_gallery
from optimlab.lab.store import Store


def _contender(loss, acc, total, hvps, steps, cost, secs):
    return {"seeds": 2, "train_loss": loss, "val_accuracy": acc, "gradient_equivalents": total,
            "hvps": hvps, "seconds": 1.0, "steps": 15.0, "steps_to_target": steps,
            "gradient_equivalents_to_target": cost, "seconds_to_target": secs}  # fmt: skip


def so_numbers() -> dict:
    return {
        "problem": "logreg_digits",
        "f_star": {"0": 0.1144, "1": 0.1188},
        "targets": {"0": 0.1156, "1": 0.1200},
        "newton": _contender(0.1168, 0.9583, 1.27e7, 9750.0, 13.0, 1.10e7, 9.36),
        "lbfgs": _contender(0.1166, 0.9583, 2.02e5, 0.0, 1.0, 2.91e4, 0.07),
        "cg": _contender(0.1166, 0.9583, 2.13e5, 0.0, 2.0, 6.66e4, 0.11),
        "hessian_free": _contender(0.1172, 0.9583, 3.15e5, 190.0, 14.0, 2.91e5, 1.13),
        "kfac": _contender(0.5626, 0.9306, 1.94e4, 0.0, None, None, None),
        "adam": _contender(0.2091, 0.934, 1.94e4, None, None, None, None),
        "verdict": {"metric": "val_accuracy", "best": "cg", "runner_up": "hessian_free",
                    "separated": False, "text": "cg and hessian_free tie on mean val_accuracy."},
    }  # fmt: skip


def test_reproduced():
    verdict = assert_verdict(second_order.rule, so_numbers(), REPRODUCED)
    assert "after 1 step and 2.91e+04 gradient-equivalents" in verdict.reason
    assert "(378 times as many, 9750 Hessian-vector products" in verdict.reason
    assert verdict.reason.endswith("cg and hessian_free tie on mean val_accuracy.")
    # the report's verdict is quoted, not judged
    flipped = changed(so_numbers(), "verdict.separated", True)
    assert second_order.rule(flipped).status == REPRODUCED


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("lbfgs.gradient_equivalents_to_target", None, "L-BFGS does not reach the target"),
        ("lbfgs.gradient_equivalents_to_target", 1.5e5, "than 2 times the cheapest (6.66e+04)"),
        ("newton.gradient_equivalents_to_target", None, "Newton does not reach the target"),
        ("newton.gradient_equivalents_to_target", 2e5, "less than 10 times L-BFGS's 2.91e+04"),
        ("adam.steps_to_target", 12.0, "Adam reaches the target too, in 12 steps"),
    ],
)
def test_not_reproduced_when_numbers_contradict(path, value, words):
    assert_contradicted(second_order.rule, so_numbers(), path, value, words)


def test_the_table():
    headers, rows = second_order.table(so_numbers())
    assert headers[3] == "steps to target" and len(rows) == 6
    assert rows[1] == ["lbfgs", "0.1166", "0.9583", "1", "2.91e+04", "0.07", "2.02e+05", "0"]
    assert rows[5][3:6] == ["never", "never", "never"] and rows[5][-1] == "-"


def test_the_study_file_has_every_contender_in_full_batch():
    from optimlab.lab import parse_study

    spec = parse_study(second_order.study_text({"seeds": 2, "epochs": 3}))
    assert [o.name for o in spec.optimizers] == [n for n, _ in second_order.CONTENDERS]
    assert spec.run["order"] == "full" and spec.protocol == "fixed"
    assert all(o.regularize == {"l2": second_order.L2} for o in spec.optimizers)


@pytest.mark.slow
def test_a_small_study_through_the_runner_and_resumed(tmp_path):
    entry = dataclasses.replace(second_order.ENTRY, budgets={
        "standard": {"seeds": 1, "epochs": 2}, "full": {"seeds": 1, "epochs": 2}})  # fmt: skip
    first = run_gallery(tmp_path, tier="standard", pool=[entry], report=lambda _: None)
    record = first.records["second_order"]
    assert record["status"] == "done", record.get("traceback")
    (work,) = (tmp_path / "second_order" / WORK).glob("study-*")  # one study per budget
    store = Store(f"sqlite:///{work / 'study.db'}")
    runs = list(store.records())
    assert sorted(r["label"] for r in runs) == sorted(n for n, _ in second_order.CONTENDERS)
    assert (work / "report" / "report.md").read_text().count("## Loss against cost") == 1
    numbers = record["numbers"]
    # the numbers come from the study: Newton's products are one per parameter per step
    newton = next(r for r in runs if r["label"] == "newton")
    assert numbers["newton"]["hvps"] == newton["history"][-1]["hvps"] == 2 * 650
    assert numbers["adam"]["hvps"] is None
    assert second_order.rule(numbers).to_json() == record["verdict"]
    # the entry's result removed, the study kept: the rerun resumes it and trains nothing
    (tmp_path / "second_order" / "result.json").unlink()
    again = run_gallery(tmp_path, tier="standard", pool=[entry], report=lambda _: None)
    assert again.computed == ["second_order"]
    assert json.dumps(list(store.records()), sort_keys=True) == json.dumps(runs, sort_keys=True)
    assert again.records["second_order"]["numbers"] == numbers


def test_each_budget_runs_its_study_in_a_folder_of_its_own(tmp_path):
    from optimlab.gallery.entry import Context

    context = Context(work=str(tmp_path))
    quick = second_order.study_text({"seeds": 1, "epochs": 2})
    standard = second_order.study_text({"seeds": 2, "epochs": 15})
    assert context.study_folder(quick, "scratch") == context.study_folder(quick, "other")
    assert context.study_folder(quick, "scratch") != context.study_folder(standard, "scratch")
    assert context.study_folder(quick, "scratch").parent == tmp_path
    assert Context().study_folder(quick, "scratch").name == "scratch"
