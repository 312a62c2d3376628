"""``optimlab bench parallel`` runs both contenders and prints their ratio (the numbers
are not checked: benchmarks are not timed tests). It launches processes: slow."""

from __future__ import annotations

import pytest

from optimlab.bench.parallel import SYNC, THREADS, run_parallel_bench
from optimlab.cli import main


@pytest.mark.slow
def test_bench_parallel_times_both_contenders_side_by_side():
    lines: list[str] = []
    result = run_parallel_bench("digits_mlp", epochs=3, rounds=1, print_fn=lines.append)
    assert lines[0].startswith("parallel: digits_mlp, momentum lr 0.05, 3 epochs per run")
    # every run's epochs after the first, of both contenders
    assert {name: len(t) for name, t in result["times"].items()} == {THREADS: 2, SYNC: 2}
    medians = result["medians"]
    assert result["ratio"] == medians[SYNC] / medians[THREADS] > 0
    table = [line for line in lines if line.startswith((THREADS, SYNC))]
    assert len(table) == 2 and table[0].split()[-1] == "1.00"


def test_bench_parallel_checks_its_arguments(capsys):
    assert main(["bench", "parallel", "--run-epochs", "1"]) == 2
    assert "invalid epochs: 1" in capsys.readouterr().err
    assert main(["bench", "parallel", "--rounds", "0"]) == 2
    assert "invalid rounds: 0" in capsys.readouterr().err
