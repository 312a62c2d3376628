"""Argument checks shared by the schedule constructors.

Every failure raises ``OptimlabError`` naming the argument and the valid range, so
that a typo on the command line reads as one clear line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

from optimlab.errors import OptimlabError, check_range


def real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float, checked to be a finite number in the interval."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise OptimlabError(f"invalid {name}: {value!r}; expected a number")
    value = float(value)
    if math.isinf(value):
        raise OptimlabError(f"invalid {name}: {value!r}; expected a finite number")
    high_open = high_open or high is None  # no bound: "inf)", not "inf]"
    check_range(name, value, low, high, low_open=low_open, high_open=high_open)
    return value


def integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int (an integral float such as 30.0 is accepted), within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise OptimlabError(f"invalid {name}: {value!r}; expected an integer")
    if not isinstance(value, Integral):
        if not math.isfinite(value) or value != int(value):
            raise OptimlabError(f"invalid {name}: {value!r}; expected an integer")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf)" if high is None else f"{high}]"
        raise OptimlabError(f"invalid {name}: {value!r}; valid range is [{lo}, {hi}")
    return value


def choice(name: str, value: Any, valid: Sequence[str]) -> str:
    """``value`` if it is one of ``valid`` (case-insensitive), else an error listing them."""
    key = value.strip().lower() if isinstance(value, str) else value
    if key not in valid:
        raise OptimlabError(f"invalid {name}: {value!r}; valid values: {', '.join(valid)}")
    return key


def increasing_ints(name: str, values: Any, low: int = 0) -> tuple[int, ...]:
    """A strictly increasing sequence of integers >= ``low`` (one bare integer is accepted)."""
    if isinstance(values, Real) and not isinstance(values, bool):
        values = (values,)
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise OptimlabError(f"invalid {name}: {values!r}; expected a list of integers")
    out = tuple(integer(name, v, low) for v in values)
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise OptimlabError(f"invalid {name}: {list(out)}; expected strictly increasing values")
    return out


def step_value(step: Any, name: str = "step") -> float | int:
    """A schedule's step (or epoch): a real number >= 0 (the first update's step is 0)."""
    if isinstance(step, bool) or not isinstance(step, Real) or not step >= 0:
        raise OptimlabError(f"invalid {name}: {step!r}; expected a number >= 0")
    return step if isinstance(step, int) else (int(step) if isinstance(step, Integral) else step)
