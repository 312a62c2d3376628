"""The verdict rule of the Beale entry (Radford's animation) on fixed numbers, and the
path measures it reads."""

from __future__ import annotations

import numpy as np
from gallery_helpers import assert_contradicted, assert_verdict

from optimlab.gallery.entries import beale
from optimlab.gallery.entry import REPRODUCED


def numbers() -> dict:
    detours = {"sgd": 3.06, "momentum": 3.34, "nesterov": 2.47, "adagrad": 1.95,
               "adadelta": 1.70, "rmsprop": 1.99, "adam": 2.72}  # fmt: skip
    reached = {"sgd": 233, "momentum": 89, "nesterov": 90, "adagrad": None,
               "adadelta": None, "rmsprop": 193, "adam": 116}  # fmt: skip
    methods = {n: {"lr": 0.01, "final_distance": 0.01, "reached_at": reached[n],
                   "detour": d} for n, d in detours.items()}  # fmt: skip
    return {"steps": 300, "tolerance": beale.TOLERANCE, "methods": methods}


def test_reproduced_when_the_adaptive_paths_are_shortest_and_nag_corrects():
    assert_verdict(
        beale.rule, numbers(), REPRODUCED, "at most 1.99 times the straight line, momentum 3.34"
    )


def test_not_reproduced_when_an_adaptive_method_detours_more_than_nag():
    assert_contradicted(beale.rule, numbers(), "methods.adadelta.detour", 2.6,
                        "adadelta's path is not shorter than nesterov's")  # fmt: skip


def test_not_reproduced_when_an_adaptive_method_diverged():
    assert_contradicted(beale.rule, numbers(), "methods.adagrad.detour", None, "adagrad's path")


def test_not_reproduced_when_nag_overshoots_as_far_as_momentum():
    assert_contradicted(beale.rule, numbers(), "methods.nesterov.detour", 3.5,
                        "NAG's path is not shorter than momentum's")  # fmt: skip


def test_path_measures():
    # From (1, 1.5), 2.236 from the minimum, straight there in two steps, then one back.
    points = np.array([[1.0, 1.5], [2.0, 1.0], [3.0, 0.5], [3.0, 0.6]])
    assert beale.reached_at(points) == 2
    assert beale.reached_at(points[:2]) is None
    assert np.isclose(beale.detour(points), (np.hypot(2.0, 1.0) + 0.1) / np.hypot(2.0, 1.0))


def test_table_lists_every_method():
    headers, rows = beale.table(numbers())
    assert [r[0] for r in rows] == list(beale.METHODS)
    assert rows[3][3] == "-" and len(headers) == 5
