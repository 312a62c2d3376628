"""The verdict rule of the batch-norm-at-small-batch entry on fixed numbers, and the lab
experiment feeding it."""

from __future__ import annotations

import pytest

from optimlab.gallery.entries import bn_small_batch as entry
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def scores(train_mode, running, population, finetune, renorm, losses=None):
    losses = losses or {}
    accs = dict(train_mode=train_mode, running=running, population=population,
                finetune=finetune, renorm=renorm)  # fmt: skip
    return {k: {"accuracy": v, "loss": losses.get(k, 1.0 - v)} for k, v in accs.items()}


def seed_rows(shift: float = 0.0) -> list[dict]:
    # The rows of a quick-tier seed (rounded); the large batch is listed first on purpose.
    large = {"batch_size": 64, "stat_gap": 0.106, "var_ratio": 0.968,
             **scores(0.934, 0.961, 0.964, 0.964, 0.958,
                      {"train_mode": 0.317, "running": 0.259})}  # fmt: skip
    small = {"batch_size": 2, "stat_gap": 0.611 + shift, "var_ratio": 0.589,
             **scores(0.254, 0.421, 0.474, 0.758 + shift, 0.786,
                      {"train_mode": 2.144, "running": 1.884})}  # fmt: skip
    return [large, small]


def numbers() -> dict:
    return {"epochs": 2, "seeds": [0, 1, 2],
            "runs": [seed_rows(), seed_rows(0.02), seed_rows(0.04)]}  # fmt: skip


def test_reproduced_names_every_scoring_with_its_spread():
    verdict = entry.rule(numbers())
    assert verdict.status == REPRODUCED
    assert "in each of 3 seeds" in verdict.reason
    assert "at batch 2 the batch mean is 0.631 ± 0.02 sigma" in verdict.reason
    assert "frozen statistics + fine-tune 0.778 ± 0.02" in verdict.reason


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("1.stat_gap", 0.2, "less than 2 times larger"),
        ("1.train_mode.loss", 1.9, "test-loss gap is 0.016 at batch 2"),
        ("1.finetune.accuracy", 0.421, "not above 0.421 with the running averages"),
    ],
)
def test_not_reproduced_when_one_seed_contradicts(path, value, words):
    n = numbers()
    *head, last = path.split(".")
    node = n["runs"][1]
    for key in head:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    verdict = entry.rule(n)
    assert verdict.status == NOT_REPRODUCED
    assert "seed 1: " in verdict.reason and words in verdict.reason
    assert "seed 0" not in verdict.reason and "seed 2" not in verdict.reason


def test_the_table_has_one_row_per_batch_size():
    headers, rows = entry.table(numbers())
    assert headers[:2] == ["batch", "|mu_B - mu| / sigma"] and len(headers) == 7
    assert rows[0] == ["2", "0.631 ± 0.02", "0.254 ± 0", "0.421 ± 0", "0.474 ± 0",
                       "0.778 ± 0.02", "0.786 ± 0"]  # fmt: skip
    assert rows[1][0] == "64"


def test_the_lab_experiment_feeds_the_numbers():
    budget = {"batch_sizes": [32, 2], "epochs": 1, "lr": 0.01, "finetune_epochs": 1, "seeds": 2}
    n = entry.compute(budget, None).numbers
    assert n["seeds"] == [0, 1] and len(n["runs"]) == 2
    for rows in n["runs"]:
        assert [r["batch_size"] for r in rows] == [2, 32]
        for r in rows:
            assert r["var_ratio"] > 0 and r["stat_gap"] > 0
            assert all(0 <= r[k]["accuracy"] <= 1 for k in entry.SCORINGS)
        assert rows[0]["stat_gap"] > rows[1]["stat_gap"]
        assert rows[0]["var_ratio"] < rows[1]["var_ratio"]  # (m - 1) / m on average
    assert n["runs"][0] != n["runs"][1]  # each seed its own run
