"""Metric loggers: JSON lines, CSV and (when installed) TensorBoard.

The JSONL and CSV files are rewritten atomically from the trainer's history at every
epoch end. That costs little (one line per epoch) and means a run resumed after a kill
never duplicates or loses lines: the history in the checkpoint is the one source.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.io import atomic_write_text
from optimlab.train.callback import Callback


def _json_value(v: Any) -> Any:
    # JSON has no NaN/inf; write them as strings so the file stays standard JSON.
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def to_json_line(record: dict[str, Any]) -> str:
    return json.dumps({k: _json_value(v) for k, v in record.items()}, sort_keys=False)


class JSONLLogger(Callback):
    """One JSON object per epoch in ``path``; with ``steps_path``, one per sampled step."""

    def __init__(
        self, path: str | os.PathLike[str], steps_path: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.steps_path = Path(steps_path) if steps_path is not None else None

    def _write(self) -> None:
        history = self.trainer.history
        text = "".join(to_json_line(r) + "\n" for r in history)
        atomic_write_text(self.path, text, durable=False)  # rebuilt from history on resume
        if self.steps_path is not None:
            lines = "".join(to_json_line(r) + "\n" for r in self.trainer.step_log)
            atomic_write_text(self.steps_path, lines, durable=False)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._write()  # on resume, drop lines written after the checkpoint

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._write()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._write()


class CSVLogger(Callback):
    """One row per epoch; the columns are the union of all epochs' keys, in first-seen order."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)

    def _write(self) -> None:
        history = self.trainer.history
        columns: dict[str, None] = {}
        for record in history:
            columns.update(dict.fromkeys(record))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(self.path, out.getvalue(), durable=False)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._write()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._write()


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger(Callback):
    """Scalars for TensorBoard: epoch metrics and sampled step losses.

    Needs the ``tensorboard`` package; ``writer_factory`` (a callable taking the log
    folder) replaces ``torch.utils.tensorboard.SummaryWriter``, e.g. in tests.
    """

    def __init__(self, log_dir: str | os.PathLike[str], writer_factory: Any = None) -> None:
        super().__init__()
        if writer_factory is None:
            if not tensorboard_available():
                raise OptimlabError(
                    "TensorBoardLogger needs the tensorboard package: pip install tensorboard"
                )
            from torch.utils.tensorboard import SummaryWriter

            writer_factory = SummaryWriter
        self.log_dir = Path(log_dir)
        self._factory = writer_factory
        self.writer: Any = None
        self._steps_written = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.writer = self._factory(str(self.log_dir))
        self._steps_written = len(self.trainer.step_log)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        for key, value in logs.items():
            if key != "epoch" and isinstance(value, int | float):
                self.writer.add_scalar(f"epoch/{key}", value, logs.get("epoch", epoch + 1))
        for record in self.trainer.step_log[self._steps_written :]:
            self.writer.add_scalar("step/loss", record["loss"], record["step"])
        self._steps_written = len(self.trainer.step_log)
        self.writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
