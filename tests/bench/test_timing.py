"""interleaved_medians: every contender timed once per round, in varying order."""

from __future__ import annotations

from optimlab.bench.timing import interleaved_medians


def test_every_contender_runs_once_per_round_in_shuffled_orders():
    log: list[str] = []
    fns = {name: (lambda name=name: log.append(name)) for name in "abcd"}
    medians = interleaved_medians(fns, repeats=10, warmup=1)
    assert set(medians) == set("abcd") and all(m >= 0 for m in medians.values())
    rounds = [log[4 + 4 * i : 8 + 4 * i] for i in range(10)]  # after 4 warmup calls
    assert all(sorted(r) == list("abcd") for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # the order changes between rounds
