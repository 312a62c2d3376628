"""The verdict rule of the bias_variance entry (bias and variance of polynomial fits) on fixed
numbers: numbers that show the claim are "reproduced", numbers that contradict it "not
reproduced"."""

from __future__ import annotations

import pytest
from gallery_helpers import assert_contradicted

from optimlab.gallery.entries import bias_variance
from optimlab.gallery.entry import REPRODUCED


def bias_variance_numbers() -> dict:
    return {
        "draws": 200,
        "noise_variance": 0.09,
        "degrees": {
            "1": {"bias2": 0.409, "variance": 0.0086, "test_mse": 0.508, "train_mse": 0.39},
            "2": {"bias2": 1e-31, "variance": 0.0146, "test_mse": 0.1048, "train_mse": 0.076},
            "20": {"bias2": 1e-9, "variance": 9.6e20, "test_mse": 9.6e20, "train_mse": 2e-4},
        },
        "ridge": {
            "degree": 20,
            "lambdas": [1e-8, 0.316, 100.0],
            "bias2": [3e-8, 0.018, 0.62],
            "variance": [1e4, 0.024, 0.005],
            "test_mse": [1e4, 0.131, 0.716],
            "best_lambda": 0.316,
            "best": {"lambda": 0.316, "bias2": 0.018, "variance": 0.024, "test_mse": 0.131,
                     "train_mse": 0.078},
        },
    }  # fmt: skip


def test_bias_variance_reproduced_on_the_lectures_picture():
    assert bias_variance.rule(bias_variance_numbers()).status == REPRODUCED


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("degrees.1.bias2", 0.001, "degree 1 does not underfit"),
        ("degrees.20.bias2", 1e21, "degree 20 does not overfit"),
        ("degrees.1.test_mse", 0.05, "degree 2 does not have the lowest"),
        ("degrees.2.test_mse", 0.2, "is not bias^2 + variance + noise"),
        ("ridge.best.variance", 2e4, "ridge does not trade variance for bias"),
    ],
)
def test_bias_variance_not_reproduced_when_numbers_contradict(path, value, words):
    assert_contradicted(bias_variance.rule, bias_variance_numbers(), path, value, words)


def test_a_few_draws_measure_the_three_terms():
    budget = {"draws": 8, "n_lambda": 5, "n_train": 21, "noise": 0.3}
    numbers = bias_variance.compute(budget, None).numbers
    d = numbers["degrees"]
    # Degree 2 is the true model: least squares on noiseless targets recovers it exactly.
    assert d["2"]["bias2"] < 1e-20 and d["1"]["bias2"] > 0.1
    assert d["20"]["train_mse"] < 1e-3 < d["20"]["test_mse"]
    assert len(numbers["ridge"]["lambdas"]) == 5


def test_the_model_table():
    headers, rows = bias_variance.table(bias_variance_numbers())
    assert [r[0] for r in rows] == [
        "degree 1",
        "degree 2",
        "degree 20",
        "ridge, degree 20, lambda 0.32",
    ]
