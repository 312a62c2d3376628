"""Numbers measured once per seed, as the verdicts and tables state them.

An entry that repeats its run over seeds keeps one value per seed in its numbers and
judges the claim seed by seed (:func:`failing_seeds`: reproduced only when it holds in
every seed). Its words give the mean and the spread over seeds: :func:`mean_sd` for
quantities on a linear scale, :func:`log_range` for ratios that span orders of
magnitude, where a mean and a standard deviation would say little.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any


def mean_sd(values: Sequence[float | None], spec: str = ".3g") -> str:
    """``"0.912 ± 0.013"``: the mean and the sample standard deviation over seeds (no
    ``±`` for a single seed); ``"-"`` when a value is missing (None: not reached)."""
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return format(mean, spec)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{format(mean, spec)} ± {format(sd, spec)}"


def log_range(values: Sequence[float | None], spec: str = ".2g") -> str:
    """``"2e-12 (1.8e-12 to 2.2e-12)"``: the geometric mean and the range over seeds, for
    non-negative quantities that span orders of magnitude (with a zero among them, only
    the range); ``"-"`` when a value is missing (None) or negative."""
    if not values or any(v is None or not (v >= 0 and math.isfinite(v)) for v in values):
        return "-"
    low, high = format(min(values), spec), format(max(values), spec)
    if min(values) == 0:
        return low if max(values) == 0 else f"{low} to {high}"
    mean = math.exp(sum(math.log(v) for v in values) / len(values))
    return format(mean, spec) if len(values) == 1 else f"{format(mean, spec)} ({low} to {high})"


def cell(
    values: Sequence[float | None],
    spread: Callable[[Sequence[float | None]], str],
    missing: str = "undefined",
) -> str:
    """A table cell over seeds: ``spread`` of the values, or, when some seeds have none
    (None: the quantity overflowed, or a ratio's denominator underflowed to 0), how many:
    ``"undefined in 1 of 3 seeds"`` (``missing`` names why)."""
    lost = sum(v is None for v in values)
    return f"{missing} in {lost} of {len(values)} seeds" if lost else spread(values)


def failing_seeds(
    seeds: Sequence[int], per_seed: Sequence[Any], check: Callable[[Any], list[str]]
) -> list[str]:
    """What contradicts the claim, seed by seed: ``check`` lists the problems of one
    seed's numbers; each comes back prefixed with its seed (empty: it holds in all)."""
    return [
        f"seed {seed}: {problem}"
        for seed, numbers in zip(seeds, per_seed, strict=True)
        for problem in check(numbers)
    ]
