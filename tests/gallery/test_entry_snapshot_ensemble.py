"""The verdict rule of the snapshot-ensemble entry on fixed numbers, and one real run's
snapshots and ensembles."""

from __future__ import annotations

from gallery_helpers import assert_contradicted, assert_verdict

from optimlab.gallery.entries import snapshot_ensemble as se
from optimlab.gallery.entry import REPRODUCED, Context


def numbers() -> dict:
    runs = [{"status": "completed", "snapshot_steps": [10, 20, 30],
             "single_accuracy": [0.95, 0.96, 0.97], "single_nll": [0.2, 0.15, 0.1],
             "ensemble_accuracy": [0.95, 0.965, 0.975], "ensemble_nll": [0.2, 0.12, 0.09]}
            for _ in range(2)]  # fmt: skip
    return {"problem": "digits_mlp", "epochs": 6, "lr": 0.1, "cycles": 3, "seeds": 2,
            "best_single_accuracy": [0.97, 0.97], "ensemble_accuracy": [0.975, 0.97],
            "best_single_nll": [0.1, 0.1], "ensemble_nll": [0.09, 0.09], "runs": runs}  # fmt: skip


def test_reproduced_when_the_ensemble_wins_on_average_and_never_loses():
    assert_verdict(se.rule, numbers(), REPRODUCED, "by 0.25 points",
                   "ensemble of 3 snapshots 0.9725 ± 0.0035, best single snapshot 0.9700 ± 0.0000",
                   "test NLL: ensemble 0.09 ± 0, best snapshot 0.1 ± 0")  # fmt: skip


def test_not_reproduced_when_the_ensemble_loses_in_a_seed():
    verdict = assert_contradicted(
        se.rule, numbers(), "ensemble_accuracy", [0.99, 0.96],
        "seed 1: the ensemble (0.9600) is less accurate than its best snapshot (0.9700)",
    )  # fmt: skip
    assert "seed 0" not in verdict.reason


def test_not_reproduced_when_the_ensemble_only_ties():
    assert_contradicted(se.rule, numbers(), "ensemble_accuracy", [0.97, 0.97], "only ties")


def test_table_has_a_column_per_snapshot():
    headers, rows = se.table(numbers())
    assert headers == ["seed", "snapshot 1", "snapshot 2", "snapshot 3", "ensemble"]
    assert rows[0] == ["0", "0.9500", "0.9600", "0.9700", "0.9750"]


def test_a_run_yields_one_snapshot_per_cycle_and_its_growing_ensembles():
    budget = {**se.ENTRY.budget("quick"), "epochs": 3, "cycles": 3}
    run = se.one_seed(budget, Context(), 0)
    steps = run["snapshot_steps"]
    assert len(steps) == 3 and steps == sorted(steps) and steps[1] == 2 * steps[0]
    assert len(run["single_accuracy"]) == len(run["ensemble_accuracy"]) == 3
    # The ensemble of the first snapshot alone is that snapshot.
    assert run["ensemble_accuracy"][0] == run["single_accuracy"][0]
    assert abs(run["ensemble_nll"][0] - run["single_nll"][0]) < 1e-5
    assert len(set(run["single_nll"])) == 3  # the snapshots differ
