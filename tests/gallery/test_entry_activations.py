"""The verdict rule of the activation-ranking entry on fixed numbers, and one small net's
runs: the gradient ratio at initialization and a resumed run's numbers."""

from __future__ import annotations

from gallery_helpers import changed

from optimlab.gallery.entries import activations as act
from optimlab.gallery.entry import AT_BUDGET, NOT_REPRODUCED, REPRODUCED, Context


def numbers() -> dict:
    def one(init, acc):
        return {"init": init, "val_accuracy": acc, "val_accuracy_mean": sum(acc) / len(acc),
                "val_accuracy_range": max(acc) - min(acc), "ratio_init": [0.4, 0.5]}  # fmt: skip

    return {"depth": 20, "epochs": 3, "seeds": 2, "activations": {
        "elu": one("he_normal", [0.95, 0.97]),
        "leaky_relu": one("he_normal", [0.93, 0.95]),
        "relu": one("he_normal", [0.90, 0.94]),
        "tanh": one("glorot_normal", [0.85, 0.87]),
        "sigmoid": one("glorot_normal", [0.097, 0.097]),
    }}  # fmt: skip


def with_accuracy(data: dict, name: str, acc: list[float]) -> dict:
    data = changed(data, f"activations.{name}.val_accuracy", acc)
    data = changed(data, f"activations.{name}.val_accuracy_mean", sum(acc) / len(acc))
    return changed(data, f"activations.{name}.val_accuracy_range", max(acc) - min(acc))


def test_reproduced_when_the_means_follow_the_ranking():
    verdict = act.rule(numbers())
    assert verdict.status == REPRODUCED
    assert "elu 96.0%, leaky_relu 94.0%, relu 92.0%, tanh 86.0%, sigmoid 9.7%" in verdict.reason


def test_at_this_budget_only_when_out_of_order_within_the_seed_spread():
    verdict = act.rule(with_accuracy(numbers(), "relu", [0.93, 0.96]))  # mean 94.5, range 3
    assert verdict.status == AT_BUDGET
    assert "leaky_relu 94.0% is not above relu 94.5% (seed range 3.0)" in verdict.reason


def test_not_reproduced_when_out_of_order_beyond_the_seed_spread():
    # the quick tier's measurement: tanh first, the rectifiers behind it
    data = with_accuracy(numbers(), "tanh", [0.875, 0.931])
    data = with_accuracy(data, "leaky_relu", [0.375, 0.368])
    data = with_accuracy(data, "relu", [0.521, 0.521])
    verdict = act.rule(data)
    assert verdict.status == NOT_REPRODUCED
    assert "relu 52.1% is not above tanh 90.3%" in verdict.reason
    assert "leaky_relu 37.1% is not above relu 52.1%" in verdict.reason


def test_table_has_a_row_per_activation():
    headers, rows = act.table(numbers())
    assert [r[0] for r in rows] == list(act.RANKING)
    assert rows[2] == ["relu", "he_normal", "92.0 (range 4.0)", "0.45"]


def test_small_nets_train_and_a_rerun_resumes(tmp_path):
    budget = {"depth": 6, "width": 16, "lr": 0.01, "epochs": 1, "seeds": 1}
    work = Context(work=str(tmp_path))
    sigmoid = act.train(budget, work, "sigmoid", 0)
    relu = act.train(budget, work, "relu", 0)
    assert sigmoid["ratio_init"] < relu["ratio_init"] / 10  # sigmoid's gradient vanishes
    assert 0 <= sigmoid["val_accuracy"] <= 1 and 0 <= relu["val_accuracy"] <= 1
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("run-")]) == 2
    assert act.train(budget, work, "relu", 0) == relu
