"""For the exact-resume tests: a callback that crashes a run at a chosen step or epoch,
and the comparison of two runs' results and final weights."""

from __future__ import annotations

import torch

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


def assert_same_result(result_a, weights_a, result_b, weights_b) -> None:
    """Same status, history (wall times aside), step log and final weights, bit for bit."""

    def without_time(rows):
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    assert result_a.status == result_b.status
    assert without_time(result_a.history) == without_time(result_b.history)
    assert result_a.step_log == result_b.step_log
    assert weights_a.keys() == weights_b.keys()
    for k in weights_a:
        assert torch.equal(weights_a[k], weights_b[k]), k
