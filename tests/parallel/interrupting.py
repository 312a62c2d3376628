"""A callback that interrupts a run in this process at a given step, for resume tests."""

from __future__ import annotations

from optimlab.train import Callback


class Crash(Exception):
    pass


class CrashAt(Callback):
    """Raises :class:`Crash` after optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def on_batch_end(self, step, logs):
        if step == self.step:
            raise Crash
