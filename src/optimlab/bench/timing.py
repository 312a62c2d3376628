"""Side-by-side timing: interleave the contenders so drift hits them all alike."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable


def interleaved_times(
    contenders: dict[str, Callable[[], None]], repeats: int = 20, warmup: int = 3, seed: int = 0
) -> dict[str, list[float]]:
    """Seconds of every call of each contender, calls interleaved; entry ``r`` of every
    list is from round ``r``, so two contenders' times can be compared round by round.

    Each round runs every contender once, in a fresh random order: a fixed order would
    always time the same contender right after the same neighbour (say, one that leaves
    100 MB of dirty cache lines or freed pages behind), and that neighbour's after-effects
    would land on it alone.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    rng = random.Random(seed)
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        rng.shuffle(names)
        for name in names:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return {name: times[name] for name in contenders}


def interleaved_medians(
    contenders: dict[str, Callable[[], None]], repeats: int = 20, warmup: int = 3, seed: int = 0
) -> dict[str, float]:
    """Median seconds per call of each contender, calls interleaved (``interleaved_times``)."""
    times = interleaved_times(contenders, repeats, warmup, seed)
    return {name: statistics.median(ts) for name, ts in times.items()}


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of ``a[r] / b[r]``: two contenders timed in the same round ran
    milliseconds apart, so load from other jobs that lasts longer hits both alike."""
    return statistics.median(x / y for x, y in zip(a, b))
