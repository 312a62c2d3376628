"""The K-FAC benchmark is wired to ``optimlab bench kfac`` and reports what it measured."""

from __future__ import annotations

import pytest

from optimlab.bench.kfac import bench_kfac
from optimlab.cli import main


def test_bench_kfac_cli_prints_both_contenders_and_the_ratio(capsys):
    argv = ["bench", "kfac", "--problem", "digits_mlp", "--steps", "3", "--rounds", "1",
            "--inv-interval", "3", "--cov-interval", "2", "--fisher", "empirical"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "kfac: digits_mlp, batch 32" in out
    assert "fisher empirical, factors every 2, inverses every 3 steps" in out
    assert "sgd " in out and "kfac " in out and "K-FAC / SGD:" in out and "goal <= 2x" in out


def test_bench_kfac_ratio_is_the_medians_ratio_and_both_learn():
    r = bench_kfac("digits_mlp", steps=4, rounds=3)
    s = r["seconds_per_round"]
    assert set(s) == {"sgd", "kfac"} and min(s.values()) > 0
    assert r["kfac_over_sgd"] == pytest.approx(s["kfac"] / s["sgd"])
    assert r["seconds_per_epoch"]["sgd"] == pytest.approx(s["sgd"] * r["steps_per_epoch"] / 4)
    assert r["kfac"]["inv_interval"] == 20  # the default the docs recommend
    # 16 steps of K-FAC from the same start get further than 16 of SGD
    assert r["last_round_loss"]["kfac"] < r["last_round_loss"]["sgd"]


def test_bench_kfac_rejects_bad_sizes(capsys):
    assert main(["bench", "kfac", "--problem", "digits_mlp", "--steps", "0"]) == 2
    assert "invalid steps: 0" in capsys.readouterr().err
