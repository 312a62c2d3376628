"""`bench optimizers --instances N`: every contender built N times on fresh tensors."""

from __future__ import annotations

import pytest
import torch

from optimlab.bench.optimizers import bench_optimizer
from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.optim.registry import get

SIZES = [(32, 16), (16,)]


def test_instances_are_timed_apart_and_averaged():
    row = bench_optimizer(get("momentum"), SIZES, torch.device("cpu"), 3, False, instances=3)
    assert row["instances"] == 3
    assert set(row["ms"]) == {"eager", "loop", "foreach", "fused"}
    for name, times in row["ms_instances"].items():
        assert len(times) == 3 and all(t > 0 for t in times)
        assert row["ms"][name] == pytest.approx(sum(times) / 3)
        assert row["instance_spread"][name] == pytest.approx(max(times) / min(times) - 1)


def test_one_instance_has_no_spread():
    row = bench_optimizer(get("sgd"), SIZES, torch.device("cpu"), 2, False)
    assert row["instances"] == 1
    assert all(s == 0 for s in row["instance_spread"].values())


def test_invalid_instances_name_the_value():
    with pytest.raises(OptimlabError, match="invalid instances: 0"):
        bench_optimizer(get("sgd"), SIZES, torch.device("cpu"), 2, False, instances=0)


def test_cli_prints_the_instances_and_their_spread(capsys):
    args = ["bench", "optimizers", "--model", "small", "--repeats", "2", "--no-fast"]
    assert main([*args, "--instances", "2"]) == 0
    out = capsys.readouterr().out
    assert "mean over 2 instances" in out.splitlines()[0]
    assert "instances 2 (max spread" in out


def test_unknown_model_is_refused_before_any_run(capsys):
    from optimlab.bench.optimizers import run_optimizer_bench

    with pytest.raises(OptimlabError, match="unknown benchmark model 'huge'.*large, mixed, small"):
        run_optimizer_bench("huge", repeats=1, fast=False)
    assert capsys.readouterr().out == ""
