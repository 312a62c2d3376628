"""How the gallery states numbers measured once per seed, and judges them seed by seed."""

from __future__ import annotations

from optimlab.gallery.seeds import cell, failing_seeds, log_range, mean_sd


def test_mean_and_sample_sd_over_seeds():
    assert mean_sd([0.1, 0.2, 0.3]) == "0.2 ± 0.1"
    assert mean_sd([0.5]) == "0.5"
    assert mean_sd([0.5, None]) == "-" and mean_sd([]) == "-"


def test_geometric_mean_and_range_for_ratios():
    assert log_range([1e-12, 4e-12]) == "2e-12 (1e-12 to 4e-12)"
    assert log_range([0.0, 0.0]) == "0"
    assert log_range([0.0, 1e-3]) == "0 to 0.001"
    assert log_range([None, 1.0]) == "-" and log_range([-1.0, 1.0]) == "-"


def test_failing_seeds_names_each_seed_that_contradicts():
    def check(value: float) -> list[str]:
        return [] if value > 0 else [f"{value} is not positive"]

    assert failing_seeds([0, 1, 2], [1.0, 2.0, 3.0], check) == []
    assert failing_seeds([0, 1, 2], [1.0, -2.0, 0.0], check) == [
        "seed 1: -2.0 is not positive",
        "seed 2: 0.0 is not positive",
    ]


def test_a_cell_counts_the_seeds_without_a_value_or_gives_the_spread():
    assert cell([1e-12, 4e-12], log_range) == "2e-12 (1e-12 to 4e-12)"
    assert cell([None, 1.0, None], log_range) == "undefined in 2 of 3 seeds"
    assert cell([1.0, None], mean_sd, "overflowed") == "overflowed in 1 of 2 seeds"
