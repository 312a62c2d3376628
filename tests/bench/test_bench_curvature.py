"""``optimlab bench curvature``: the curvature benchmarks through the command line, and the
L-BFGS step benchmark's check that optimlab's and torch's take the same steps."""

from __future__ import annotations

import torch

from optimlab.bench.curvature import bench_lbfgs
from optimlab.cli import main


def test_the_command_prints_every_benchmark_and_its_ratios(capsys):
    before = torch.get_num_threads()
    try:
        assert main(["bench", "curvature", "--repeats", "1"]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "1 thread(s), float64" in out
    assert "new point, forward_over_reverse / new point, reverse_over_reverse:" in out
    assert "hessian, forward_over_reverse / hessian, reverse_over_reverse:" in out
    assert "MLP 64-32-10 tanh (2410 parameters)" in out
    assert "MLP 64-512-10 tanh (38410 parameters)" in out
    assert out.count("lbfgs step, optimlab / lbfgs step, torch.optim:") == 2


def test_bad_repeats_and_names(capsys):
    assert main(["bench", "curvature", "--repeats", "0"]) == 2
    assert "invalid repeats: 0" in capsys.readouterr().err
    assert main(["bench", "curvatures"]) == 2
    assert "curvature" in capsys.readouterr().err


def test_the_lbfgs_benchmark_times_equal_steps():
    result = bench_lbfgs(hidden=4, batch=32, repeats=1)  # checks the two agree, or raises
    assert result["params"] == 64 * 4 + 4 + 4 * 10 + 10
    assert set(result["times"]) == {"lbfgs step, optimlab", "lbfgs step, torch.optim"}
    assert all(t > 0 for t in result["times"].values())
