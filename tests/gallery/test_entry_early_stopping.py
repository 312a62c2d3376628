"""The verdict rule of the early-stopping entry on fixed numbers, and real runs: the
callback's kept epoch is the model returned, and the runs resume from their checkpoints."""

from __future__ import annotations

import pytest
from gallery_helpers import assert_contradicted, assert_verdict, changed

from optimlab.gallery.entries import early_stopping as es
from optimlab.gallery.entry import AT_BUDGET, NOT_REPRODUCED, REPRODUCED, Context


def numbers() -> dict:
    def variant(trained, kept, acc):
        return {"epochs_trained": trained, "kept_epoch": kept, "test_accuracy": acc,
                "test_accuracy_mean": sum(acc) / len(acc),
                "test_accuracy_range": max(acc) - min(acc)}  # fmt: skip

    return {
        "problem": "fmnist_overfit", "epochs": 30, "seeds": 2, "patience": 5,
        "variants": {
            "to the end": variant([30, 30], [30, 30], [0.860, 0.864]),
            "stop on val_loss": variant([9, 11], [4, 6], [0.858, 0.861]),
            "stop on val_error": variant([14, 17], [9, 12], [0.868, 0.870]),
        },
        "to_the_end": {"val_loss_min_epoch": [4, 6], "rise": [0.8, 0.6]},
    }  # fmt: skip


def with_stopped_accuracy(acc: list[float]) -> dict:
    data = changed(numbers(), "variants.stop on val_error.test_accuracy", acc)
    return changed(data, "variants.stop on val_error.test_accuracy_mean", sum(acc) / len(acc))


def test_reproduced_when_the_stopped_model_is_as_good_in_fewer_epochs():
    assert_verdict(es.rule, numbers(), REPRODUCED, "after [14, 17] epochs of 30",
                   "86.90% (range 0.20)", "86.20% (range 0.40)")  # fmt: skip


def test_at_this_budget_only_when_a_little_worse():
    assert_verdict(es.rule, with_stopped_accuracy([0.858, 0.862]), AT_BUDGET, "0.20 points lower")


def test_not_reproduced_when_stopping_costs_accuracy():
    assert_verdict(
        es.rule, with_stopped_accuracy([0.850, 0.852]), NOT_REPRODUCED, "1.10 points lower"
    )


def test_not_reproduced_when_nothing_overfits():
    assert_contradicted(es.rule, numbers(), "to_the_end.rise", [0.02, 0.05], "did not overfit")


def test_not_reproduced_when_a_seed_never_stops():
    assert_contradicted(es.rule, numbers(),
                        "variants.stop on val_error.epochs_trained", [14, 30],
                        "did not stop before epoch 30")  # fmt: skip


def test_table_lists_every_run():
    headers, rows = es.table(numbers())
    assert [r[0] for r in rows] == list(es.VARIANTS)
    assert rows[2] == ["stop on val_error", "14, 17", "9, 12", "86.90% (range 0.20)"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    budget = {"problem": "digits_mlp", "epochs": 8, "seeds": 1, "lr": 0.05, "patience": 2,
              "threads": 1}  # fmt: skip
    runs = {v: es.train(budget, Context(work=str(work)), v, 0) for v in es.VARIANTS}
    return budget, work, runs


def test_the_returned_model_is_the_kept_epochs(small):
    budget, _, runs = small
    full = runs["to the end"]
    assert full["epochs_trained"] == full["kept_epoch"] == 8
    for variant in ("stop on val_loss", "stop on val_error"):
        r = runs[variant]
        # Same seed and batches: a stopped run is the run to the end, cut short.
        assert r["val_loss"] == pytest.approx(full["val_loss"][: r["epochs_trained"]], rel=1e-6)
        assert 1 <= r["kept_epoch"] <= r["epochs_trained"] <= 8
        # the model returned is the kept epoch's: its test accuracy, evaluated afterwards
        assert r["test_accuracy"] == pytest.approx(r["test_accuracy_by_epoch"][r["kept_epoch"] - 1])
    # the validation loss climbs after epoch 1 on digits: stopped after the patience
    stop = runs["stop on val_loss"]
    assert stop["epochs_trained"] == stop["kept_epoch"] + 2 < 8
    best = max(full["val_accuracy"][: runs["stop on val_error"]["epochs_trained"]])
    assert full["val_accuracy"][runs["stop on val_error"]["kept_epoch"] - 1] == best


def test_the_runs_checkpoint_and_a_rerun_resumes_them(small):
    budget, work, runs = small
    folders = sorted(p for p in work.iterdir() if p.name.startswith("run-"))
    assert len(folders) == 3 and all(any(f.iterdir()) for f in folders)
    again = es.train(budget, Context(work=str(work)), "stop on val_loss", 0)
    assert again == runs["stop on val_loss"]
