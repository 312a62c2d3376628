"""Crash a built run at a chosen step or epoch, rerun it, and compare with an
uninterrupted run (shared by the tests of the run's loop settings)."""

from __future__ import annotations

import pytest

from optimlab.run import RunConfig, build_run
from resume_checks import Crash, CrashAt, assert_same_result


def fit(config: RunConfig, callbacks=()):
    """``(result, final weights, run)`` of ``config``."""
    run = build_run(config, callbacks=callbacks)
    result = run.fit()
    return result, run.problem.model.state_dict(), run


def crashed_and_resumed(config: RunConfig, **crash):
    """Crash the run in ``config.out`` at ``crash``, then rerun it to the end."""
    with pytest.raises(Crash):
        fit(config, [CrashAt(**crash)])
    return fit(config)


def assert_same_run(a, b) -> None:
    """``a`` and ``b`` are :func:`fit`'s results."""
    assert_same_result(*a[:2], *b[:2])
