"""A progress display: a rich bar on a terminal, plain lines (one per epoch) otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from optimlab.train.callback import Callback


def format_logs(logs: dict[str, Any], skip: tuple[str, ...] = ("epoch",)) -> str:
    parts = []
    for key, value in logs.items():
        if key in skip:
            continue
        if isinstance(value, float):
            parts.append(f"{key} {value:.4g}")
        elif isinstance(value, int):
            parts.append(f"{key} {value}")
    return "  ".join(parts)


class ProgressBar(Callback):
    """Shows epoch progress. ``rich`` decides on a bar only when ``stream`` is a terminal;
    ``rich=False`` forces plain lines. The bar shows the sampled loss (no extra sync)."""

    def __init__(self, stream: TextIO | None = None, *, rich: bool | None = None) -> None:
        super().__init__()
        self.stream = stream
        self.rich = rich
        self._progress: Any = None
        self._task: Any = None
        self._epochs: int | None = None
        self._t0 = 0.0

    @property
    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stdout

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        use_rich = self.rich if self.rich is not None else self._out.isatty()
        self._epochs = self.trainer.max_epochs
        if use_rich:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} steps"),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=Console(file=self._out),
                transient=False,
            )
            self._progress.start()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = time.perf_counter()
        if self._progress is not None:
            total = self.trainer.steps_in_epoch(epoch)
            label = f"{epoch + 1}/{self._epochs}" if self._epochs else f"{epoch + 1}"
            self._task = self._progress.add_task(
                "train", total=total, epoch=label, info="", completed=self.trainer.step_in_epoch
            )

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if self._progress is not None:
            info = f"loss {logs['loss']:.4g}" if "loss" in logs else None
            if info is None:
                self._progress.advance(self._task)
            else:
                self._progress.update(self._task, advance=1, info=info)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        label = f"{epoch + 1}/{self._epochs}" if self._epochs else f"{epoch + 1}"
        line = f"epoch {label}  {format_logs(logs, skip=('epoch', 'step', 'time'))}"
        line += f"  ({time.perf_counter() - self._t0:.1f}s)"
        if self._progress is not None:
            # One bar at a time: the finished epoch stays on screen as a plain line.
            self._progress.remove_task(self._task)
            self._progress.console.print(line)
        else:
            print(line, file=self._out, flush=True)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
