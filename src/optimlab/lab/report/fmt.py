"""Number formatting shared by the tables, the verdict and the figure captions."""

from __future__ import annotations

import math

DASH = "–"


def num(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits; a dash for None or NaN, ``∞`` for inf."""
    if value is None or math.isnan(value):
        return DASH
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{digits}g}"


def seconds(value: float | None) -> str:
    """A duration in seconds, or a dash."""
    text = num(value, 3)
    return text if text in (DASH, "∞") else f"{text} s"


def count(k: int, n: int) -> str:
    """``"k/n"``."""
    return f"{k}/{n}"


def plural(n: int, word: str) -> str:
    """``"1 run"``, ``"3 runs"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
