"""The verdict rule of the gradient-clipping entry on fixed numbers, and one real pair of
runs on the exploding chain."""

from __future__ import annotations

from gallery_helpers import changed

from optimlab.gallery.entries import gradient_clipping as gc
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def numbers() -> dict:
    mse = {
        "plain": [[0.0099, 0.0098], [3.37, 0.0099], [None, 0.0107], [None, None]],
        "clipped": [[24.3, 30.1], [0.0104, 0.0099], [0.0107, 0.0099], [0.0166, 0.0274]],
    }
    return {"depth": 8, "epochs": 20, "clip": 1.0, "seeds": 2,
            "lrs": [0.001, 0.01, 0.02, 0.05], "test_mse": mse}  # fmt: skip


def test_reproduced_when_clipping_trains_wherever_plain_sgd_diverges():
    verdict = gc.rule(numbers())
    assert verdict.status == REPRODUCED
    assert "lr 0.05: plain diverged, diverged, clipped 0.0166, 0.0274" in verdict.reason
    assert "lr 0.001" not in verdict.reason  # only the exploding rates are judged


def test_not_reproduced_when_the_clipped_run_also_fails():
    verdict = gc.rule(changed(numbers(), "test_mse.clipped", [[1, 1], [1, 1], [0.01, 0.01],
                                                                [0.01, None]]))  # fmt: skip
    assert verdict.status == NOT_REPRODUCED and "at lr 0.05" in verdict.reason


def test_not_reproduced_when_the_clipped_run_does_not_reach_the_noise_floor():
    verdict = gc.rule(changed(numbers(), "test_mse.clipped", [[1, 1], [1, 1], [0.4, 0.01],
                                                                [0.01, 0.01]]))  # fmt: skip
    assert verdict.status == NOT_REPRODUCED and "at lr 0.02" in verdict.reason


def test_not_reproduced_when_nothing_explodes():
    calm = changed(numbers(), "test_mse.plain", [[0.01, 0.01]] * 4)
    verdict = gc.rule(calm)
    assert verdict.status == NOT_REPRODUCED and "diverged at no rate" in verdict.reason


def test_table_counts_trained_and_diverged_seeds():
    headers, rows = gc.table(numbers())
    assert rows[3] == ["SGD", "0.05", "0/2", "2/2", "-"]
    assert rows[4][:4] == ["SGD, global norm clipped", "0.001", "0/2", "0/2"]


def test_initial_weights_are_the_seeds_and_in_range():
    first = gc.initial_weights(8, 0)
    assert first == gc.initial_weights(8, 0) != gc.initial_weights(8, 1)
    assert all(1.2 <= w <= 1.5 for w in first)


def test_the_chain_explodes_without_clipping_and_trains_with_it():
    budget = {**gc.ENTRY.budget("quick"), "epochs": 6}
    assert gc.train(budget, "plain", 0.05, 0)["test_mse"] is None
    clipped = gc.train(budget, "clipped", 0.05, 0)
    assert clipped["test_mse"] <= gc.TRAINED and len(clipped["curve"]) == 6
