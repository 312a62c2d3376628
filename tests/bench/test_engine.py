"""The engine benchmark is wired to ``optimlab bench engine`` and reports what it measured."""

from __future__ import annotations

import pytest

from optimlab.bench.engine import bench_engine
from optimlab.cli import main


def test_bench_engine_cli_prints_the_three_contenders(capsys):
    assert main(["bench", "engine", "--model", "linear", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "MLP 784-10 (linear)" in out
    for label in ("hand-written loop", "trainer", "DataLoader loop"):
        assert label in out


def test_bench_engine_ratios_are_the_medians_ratios():
    r = bench_engine("linear", samples=512, repeats=3)
    s = r["seconds_per_epoch"]
    assert set(s) == {"hand", "trainer", "dataloader"} and min(s.values()) > 0
    assert r["trainer_over_hand"] == pytest.approx(s["trainer"] / s["hand"])
    assert r["dataloader_over_trainer"] == pytest.approx(s["dataloader"] / s["trainer"])


def test_bench_engine_rejects_unknown_model(capsys):
    assert main(["bench", "engine", "--model", "huge", "--repeats", "1"]) == 2
    assert "valid models: large, small, linear" in capsys.readouterr().err


def test_bench_engine_entry_takes_typed_arguments(capsys):
    from optimlab.bench.engine import run_engine_bench
    from optimlab.errors import OptimlabError

    with pytest.raises(OptimlabError, match="invalid repeats: 0"):
        run_engine_bench("linear", repeats=0)
    (r,) = run_engine_bench("linear", repeats=1, samples=256, batch_size=64, device="cpu")
    assert (r["samples"], r["batch_size"], r["repeats"]) == (256, 64, 1)
    assert "256 samples, batch 64" in capsys.readouterr().out
