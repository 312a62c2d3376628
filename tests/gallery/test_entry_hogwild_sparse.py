"""The verdict rule of the Hogwild! entry on fixed numbers, and the collision shares it
reads from the data."""

from __future__ import annotations

import torch
from gallery_helpers import changed

from optimlab.gallery.entries import hogwild_sparse as hw
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def numbers() -> dict:
    def problem(serial: list, hogwild: list, both: float) -> dict:
        return {"lr": 0.1, "epochs": 2, "loss": {"1": serial, "2": hogwild},
                "seconds": {"1": [20.0, 21.0], "2": [35.0, 36.0]}, "features": 64,
                "batch": 16, "touched": 0.5, "touched_by_both": both}  # fmt: skip

    return {"nproc": [1, 2], "seeds": 2,
            hw.SPARSE: problem([0.325, 0.327], [0.326, 0.326], 0.022),
            hw.DENSE: problem([0.28, 0.29], [0.33, 0.35], 0.95)}  # fmt: skip


def test_reproduced_when_only_the_dense_problem_loses():
    verdict = hw.rule(numbers())
    assert verdict.status == REPRODUCED
    assert "sparse +0.0%, dense +19.3%" in verdict.reason and "2.2% of the sparse" in verdict.reason


def test_not_reproduced_when_the_dense_problem_matches_serial_too():
    verdict = hw.rule(changed(numbers(), f"{hw.DENSE}.loss.2", [0.281, 0.29]))
    assert verdict.status == NOT_REPRODUCED and "dense problem too" in verdict.reason


def test_not_reproduced_when_the_sparse_problem_loses_or_diverges():
    verdict = hw.rule(changed(numbers(), f"{hw.SPARSE}.loss.2", [0.4, 0.41]))
    assert verdict.status == NOT_REPRODUCED and "loses on the sparse problem" in verdict.reason
    assert hw.rule(changed(numbers(), f"{hw.SPARSE}.loss.2", [None, 0.3])).status == (
        NOT_REPRODUCED
    )


def test_touched_reads_ids_of_bags_and_nonzero_columns_of_dense_inputs():
    ids = torch.tensor([[0, 3], [3, 5]])
    assert hw.touched(ids, 8).tolist() == [1, 0, 0, 1, 0, 1, 0, 0]
    dense = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    assert hw.touched(dense, 3).tolist() == [0, 1, 1]


def test_sparse_batches_collide_on_few_weights_and_dense_ones_on_most():
    sparse, dense = hw.collisions(hw.SPARSE), hw.collisions(hw.DENSE)
    assert sparse["touched_by_both"] < 0.05 < 0.9 < dense["touched_by_both"]
    assert sparse["touched_by_both"] < sparse["touched"] < 0.2
