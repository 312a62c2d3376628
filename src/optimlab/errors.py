"""Errors raised for user mistakes; the CLI prints them without a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class OptimlabError(ValueError):
    """A user-facing error: bad input, a missing file, an unknown name.

    It subclasses ``ValueError`` so that code written against torch.optim, which
    raises ``ValueError`` for bad hyperparameters, catches it unchanged.
    """


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> OptimlabError:
    """The error for a name that is not in a registry, listing the valid ones."""
    names = ", ".join(sorted(valid))
    return OptimlabError(f"unknown {kind} {name!r}; valid {kind}s: {names}")


def check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ``OptimlabError`` naming ``name`` unless ``value`` lies in the interval.

    The interval is closed unless ``low_open``/``high_open`` say otherwise; a bound of
    None is unbounded.
    """
    ok = True
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok or value != value:  # NaN fails every comparison
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        lo_s = "-inf" if low is None else f"{low:g}"
        hi_s = "inf" if high is None else f"{high:g}"
        raise OptimlabError(f"invalid {name}: {value!r}; valid range is {lo}{lo_s}, {hi_s}{hi}")
