"""``optimlab bench parallel`` runs every contender and prints the ratios side by side
(the numbers are not checked: benchmarks are not timed tests). It launches processes:
slow."""

from __future__ import annotations

import pytest

from optimlab.bench.parallel import DELAYED, SERIAL, SYNC, THREADS
from optimlab.cli import main


@pytest.mark.slow
def test_bench_parallel_prints_both_ratios_side_by_side(capsys):
    args = ["bench", "parallel", "--problem", "digits_mlp", "--rounds", "1", "--run-epochs", "3",
            "--delay", "fixed:2"]  # fmt: skip
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("parallel: digits_mlp; momentum lr 0.05, 3 epochs per run")
    # each contender's run: its epochs after the first
    for name in (THREADS, SYNC, SERIAL, DELAYED):
        runs = [line for line in lines if line.strip().startswith(f"round 1  {name}")]
        assert len(runs) == 1 and len(runs[0].split("s/epoch")[1].split(",")) == 2
    tables = [line for line in lines if line.startswith((THREADS, SYNC, SERIAL, DELAYED))]
    assert [t.split()[-1] for t in tables[::2]] == ["1.00", "1.00"]  # the references
    summary = lines[lines.index(next(x for x in lines if x.startswith("ratio "))) :]
    ratios = {line.split(": ", 1)[1].split("  ")[0]: line.split() for line in summary[1:3]}
    assert set(ratios) == {"sync 2x1 / threads 1x2", "delay model fixed:2 / serial"}
    for fields in ratios.values():
        median, fastest, goal = float(fields[-7]), float(fields[-6]), fields[-1]
        low, mid, high = (float(x) for x in fields[-5:-2])
        assert median > 0 and fastest > 0 and goal in ("1.15", "1.10")
        assert low == mid == high == median  # one round: its ratio is the ratio
    assert summary[3].startswith("load average")


def test_bench_parallel_checks_its_arguments(capsys):
    assert main(["bench", "parallel", "--run-epochs", "1"]) == 2
    assert "invalid epochs: 1" in capsys.readouterr().err
    assert main(["bench", "parallel", "--rounds", "0"]) == 2
    assert "invalid rounds: 0" in capsys.readouterr().err
    assert main(["bench", "parallel", "--delay", "sometimes"]) == 2
    assert "sometimes" in capsys.readouterr().err


def test_the_summary_gives_each_rounds_ratio_and_their_spread():
    from optimlab.bench.parallel import _summary

    per_round = {"ref": [[1.0, 3.0], [2.0], [4.0]], "other": [[3.0, 3.0], [3.0], [2.0]]}
    summary = _summary(per_round, "ref", "other")
    assert summary["round_ratios"] == [1.5, 1.5, 0.5]
    assert summary["round_ratios_spread"] == (0.5, 1.5, 1.5)
    assert summary["ratio"] == 3.0 / 2.5 and summary["fastest_ratio"] == 2.0
