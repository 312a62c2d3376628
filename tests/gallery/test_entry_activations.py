"""The verdict rule of the activation-ranking entry on fixed numbers, and one small net's
runs: the gradient ratio at initialization and a resumed run's numbers."""

from __future__ import annotations

from gallery_helpers import assert_verdict, changed

from optimlab.gallery.entries import activations as act
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context


def numbers() -> dict:
    def one(init, acc):
        return {"init": init, "val_accuracy": acc, "ratio_init": [0.4, 0.5, 0.625]}

    return {"depth": 20, "epochs": 3, "seeds": [0, 1, 2], "activations": {
        "elu": one("he_normal", [0.95, 0.97, 0.96]),
        "leaky_relu": one("he_normal", [0.93, 0.95, 0.94]),
        "relu": one("he_normal", [0.90, 0.94, 0.92]),
        "tanh": one("glorot_normal", [0.85, 0.87, 0.86]),
        "sigmoid": one("glorot_normal", [0.097, 0.097, 0.097]),
    }}  # fmt: skip


def test_reproduced_when_every_seed_follows_the_ranking():
    assert_verdict(act.rule, numbers(), REPRODUCED, "holds in each of 3 seeds",
                   "elu 96.0 ± 1.0%, leaky_relu 94.0 ± 1.0%, relu 92.0 ± 2.0%, "
                   "tanh 86.0 ± 1.0%, sigmoid 9.7 ± 0.0%")  # fmt: skip


def test_not_reproduced_when_one_seed_contradicts_though_the_means_follow_it():
    # relu's mean (93.3%) stays below leaky_relu's (94.3%); seed 2 puts it above.
    data = changed(numbers(), "activations.relu.val_accuracy", [0.90, 0.94, 0.96])
    data = changed(data, "activations.leaky_relu.val_accuracy", [0.93, 0.95, 0.95])
    verdict = assert_verdict(act.rule, data, NOT_REPRODUCED,
                             "seed 2: leaky_relu 95.0% is not above relu 96.0%")  # fmt: skip
    assert "seed 0" not in verdict.reason and "seed 1" not in verdict.reason


def test_a_tie_in_a_seed_does_not_show_the_ranking():
    data = changed(numbers(), "activations.tanh.val_accuracy", [0.85, 0.87, 0.92])
    assert_verdict(act.rule, data, NOT_REPRODUCED, "seed 2: relu 92.0% is not above tanh 92.0%")


def test_not_reproduced_on_the_quick_tiers_earlier_measurement():
    # tanh first, the rectifiers behind it, as two seeds measured it
    data = changed(numbers(), "seeds", [0, 1])
    for name, acc in {"elu": [0.826, 0.819], "leaky_relu": [0.375, 0.368],
                      "relu": [0.521, 0.521], "tanh": [0.875, 0.931],
                      "sigmoid": [0.097, 0.097]}.items():  # fmt: skip
        data = changed(data, f"activations.{name}.val_accuracy", acc)
    assert_verdict(act.rule, data, NOT_REPRODUCED,
                   "seed 0: leaky_relu 37.5% is not above relu 52.1%",
                   "seed 1: relu 52.1% is not above tanh 93.1%",
                   "over 2 seeds (mean ± sd)")  # fmt: skip


def test_table_has_a_row_per_activation_with_the_spread_over_seeds():
    headers, rows = act.table(numbers())
    assert [r[0] for r in rows] == list(act.RANKING)
    assert rows[2] == ["relu", "he_normal", "92.0 ± 2.0", "0.5 (0.4 to 0.62)"]
    data = changed(numbers(), "activations.sigmoid.ratio_init", [None, 1e-12, None])
    assert act.table(data)[1][4][3] == "overflowed in 2 of 3 seeds"


def test_small_nets_train_and_a_rerun_resumes(tmp_path):
    budget = {"depth": 6, "width": 16, "lr": 0.01, "epochs": 1, "seeds": 1}
    work = Context(work=str(tmp_path))
    sigmoid = act.train(budget, work, "sigmoid", 0)
    relu = act.train(budget, work, "relu", 0)
    assert sigmoid["ratio_init"] < relu["ratio_init"] / 10  # sigmoid's gradient vanishes
    assert 0 <= sigmoid["val_accuracy"] <= 1 and 0 <= relu["val_accuracy"] <= 1
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("run-")]) == 2
    assert act.train(budget, work, "relu", 0) == relu
