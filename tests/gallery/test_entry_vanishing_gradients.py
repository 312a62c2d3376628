"""The verdict rule of the vanishing_gradients entry on fixed numbers: numbers that show
the claim are "reproduced", numbers that contradict it "not reproduced"."""

from __future__ import annotations

import pytest

from optimlab.gallery.entries import vanishing_gradients as vg
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def config(ratio: float, first: float, last: float, accuracy: float) -> dict:
    return {"status": "completed", "grad_norms_init": [ratio, 1.0], "grad_norms_end": [1.0, 1.0],
            "ratio_init": ratio, "ratio_end": 1.0, "weight_change": [first, 0.3, last],
            "val_accuracy": accuracy}  # fmt: skip


def numbers() -> dict:
    return {
        "sigmoid": config(1.8e-12, 0.0, 0.17, 0.097),
        "tanh": config(2.1, 1.9, 0.52, 0.28),
        "relu": config(0.40, 0.31, 0.51, 0.17),
        "sigmoid + batch norm": config(0.45, 0.36, 1.1, 0.875),
    }


def test_vanishing_reproduced_on_the_measured_picture():
    verdict = vg.rule(numbers())
    assert verdict.status == REPRODUCED
    assert "1.8e-12 with sigmoid units" in verdict.reason


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("sigmoid.ratio_init", 0.5, "does not vanish"),
        ("relu.ratio_init", 1e-11, "does not vanish"),
        ("sigmoid.ratio_init", None, "does not vanish"),
        ("sigmoid.weight_change", [0.1, 0.1, 0.17], "moved the sigmoid net's first layer"),
        ("relu.weight_change", [1e-4, 0.1, 0.5], "hardly moved the ReLU net's first layer"),
        ("relu.weight_change", None, "hardly moved the ReLU net's first layer"),
        ("sigmoid + batch norm.ratio_init", 1e-12, "does not lift"),
        ("sigmoid + batch norm.val_accuracy", 0.09, "does not train the sigmoid net better"),
    ],
)
def test_vanishing_not_reproduced_when_numbers_contradict(path, value, words):
    data = numbers()
    label, key = path.rsplit(".", 1)
    data[label][key] = value
    verdict = vg.rule(data)
    assert verdict.status == NOT_REPRODUCED
    assert words in verdict.reason


def test_a_small_net_measures_every_configuration():
    from optimlab import problems

    base = problems.build("digits_mlp", seed=0)
    budget = {"depth": 8, "width": 16, "lr": 0.05, "seed": 0, "epochs": 1}
    sigmoid = vg.run_config(base, "sigmoid", budget)
    relu = vg.run_config(base, "relu", budget)
    for r in (sigmoid, relu):
        assert len(r["grad_norms_init"]) == len(r["weight_change"]) == 8
        assert r["ratio_init"] == pytest.approx(r["grad_norms_init"][0] / r["grad_norms_init"][-1])
    assert sigmoid["ratio_init"] < relu["ratio_init"] / 10


def test_the_configuration_table():
    headers, rows = vg.table(numbers())
    assert rows[0] == ["sigmoid", "1.8e-12", "1", "0 / 0.17", "0.097"]
