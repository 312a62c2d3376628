"""Crash a built run at a chosen step or epoch, rerun it, and compare with an
uninterrupted run (shared by the tests of the run's loop settings)."""

from __future__ import annotations

import pytest
import torch

from optimlab.run import RunConfig, build_run
from optimlab.train import Callback


class Crash(Exception):
    pass


class CrashAt(Callback):
    """Raises after optimizer step ``step`` or after epoch ``epoch``'s callbacks."""

    order = 200  # after the checkpoint, as a kill right after a write would be

    def __init__(self, step: int | None = None, epoch: int | None = None) -> None:
        super().__init__()
        self.step, self.epoch = step, epoch

    def on_batch_end(self, step, logs):
        if step == self.step:
            raise Crash

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            raise Crash


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


def without_time(rows):
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def assert_same_run(a, b) -> None:
    (ra, sa, _), (rb, sb, _) = a, b
    assert ra.status == rb.status
    assert without_time(ra.history) == without_time(rb.history)
    assert ra.step_log == rb.step_log
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
