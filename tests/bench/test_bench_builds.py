"""`bench optimizers --builds N`: the spread of ratios over independent builds."""

from __future__ import annotations

import re
import statistics

import pytest
import torch

from optimlab.bench import optimizers as bench
from optimlab.bench.timing import paired_ratio
from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.optim.registry import get

SPREAD = re.compile(r"/torch-(\w+) \(x([\d.]+), builds ([\d.]+)-([\d.]+)-([\d.]+)\)")


def _tiny(monkeypatch):
    monkeypatch.setitem(bench.MODELS, "tiny", [(16, 8), (8,)])


def test_printed_rows_carry_the_spread_over_builds(capsys, monkeypatch):
    _tiny(monkeypatch)
    args = ["bench", "optimizers", "--model", "tiny", "--repeats", "3", "--builds", "2"]
    assert main([*args, "--optimizers", "momentum"]) == 0
    out = capsys.readouterr().out
    assert "mean over 2 instances (builds)" in out.splitlines()[0]
    row = next(line for line in out.splitlines() if line.startswith("momentum "))
    assert "adam" not in out.split("floor:")[0]  # only the optimizer asked for
    found = {m[0]: [float(x) for x in m[1:]] for m in SPREAD.findall(row)}
    assert {"loop", "fused"} <= set(found), row
    for _, low, mid, high in found.values():
        assert 0 < low <= mid <= high, row
    assert "fast/floor" in row
    # every contender's step time with its lowest / median / highest build
    builds = re.findall(r"(\S+) +[\d.]+ \[([\d.]+)/([\d.]+)/([\d.]+)\]", row.split("|")[0])
    assert [b[0] for b in builds] == ["eager", "fast", "fast*", "loop", "foreach", "fused"], row
    for _, low, mid, high in builds:
        assert 0 < float(low) <= float(mid) <= float(high), row


def test_ratio_spread_is_over_every_pair_of_builds():
    sizes = [(16, 8), (8,)]
    row = bench.bench_optimizer(get("sgd"), sizes, torch.device("cpu"), 3, False, instances=2)
    low, mid, high = row["ratio_spread"]["loop"]
    assert low <= mid <= high
    for name, times in row["ms_instances"].items():
        expected = (min(times), statistics.median(times), max(times))
        assert row["ms_builds"][name] == pytest.approx(expected)
    # ours against ours: the pair of a build with itself gives exactly 1
    assert row["ratio_spread"]["eager"][0] <= 1.0 <= row["ratio_spread"]["eager"][2]


def test_paired_ratio_is_the_median_of_round_ratios():
    assert paired_ratio([1.0, 4.0, 9.0], [1.0, 2.0, 3.0]) == 2.0


def test_unknown_optimizer_is_refused_before_any_run(capsys):
    with pytest.raises(OptimlabError, match="unknown benchmarked optimizer 'lbfgs'.*adam"):
        bench.run_optimizer_bench("small", repeats=1, fast=False, names=["lbfgs"])
    assert capsys.readouterr().out == ""


def test_zero_builds_is_one_line(capsys):
    assert main(["bench", "optimizers", "--builds", "0", "--no-fast"]) == 2
    assert "builds" in capsys.readouterr().err
