"""JSONL/CSV/TensorBoard loggers, the progress display and summary.json."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from optimlab.errors import OptimlabError
from optimlab.train import ProgressBar, TensorBoardLogger, fit
from optimlab.train.loggers import tensorboard_available


def test_files_hold_the_history(tmp_path, problem):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    result = fit(problem, opt, epochs=3, out_dir=tmp_path, log_every=4)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.history
    steps = (tmp_path / "steps.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in steps] == result.step_log
    assert len(result.step_log) == 27 // 4
    with open(tmp_path / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    for row, record in zip(rows, result.history, strict=True):
        assert set(row) == set(record)
        assert float(row["val_loss"]) == record["val_loss"]  # repr round-trips exactly
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["epochs"] == 3 and summary["steps"] == 27
    assert summary["final"] == json.loads(lines[-1])
    best = min(result.history, key=lambda r: r["val_loss"])
    assert summary["best"] == best


class FakeWriter:
    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.closed = log_dir, [], False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_logger_writes_epoch_and_step_scalars(tmp_path, problem):
    writers = []
    tb = TensorBoardLogger(
        tmp_path, writer_factory=lambda d: writers.append(FakeWriter(d)) or writers[-1]
    )
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    result = fit(problem, opt, epochs=2, log_every=5, callbacks=[tb])
    (w,) = writers
    assert w.closed
    val = [(v, s) for tag, v, s in w.scalars if tag == "epoch/val_loss"]
    assert val == [(r["val_loss"], r["epoch"]) for r in result.history]
    steps = [(v, s) for tag, v, s in w.scalars if tag == "step/loss"]
    assert steps == [(r["loss"], r["step"]) for r in result.step_log]


@pytest.mark.skipif(tensorboard_available(), reason="tensorboard is installed here")
def test_tensorboard_missing_is_a_clear_error(tmp_path):
    with pytest.raises(OptimlabError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path)


def test_plain_progress_lines(problem):
    out = io.StringIO()  # not a terminal: plain lines
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    result = fit(problem, opt, epochs=3, callbacks=[ProgressBar(out)])
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert f"val_loss {result.history[1]['val_loss']:.4g}" in lines[1]


def test_rich_progress_bar_runs(problem):
    out = io.StringIO()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    fit(problem, opt, epochs=2, log_every=2, callbacks=[ProgressBar(out, rich=True)])
    text = out.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text
