"""``optimlab train --preprocess NAME --order NAME`` equals the same run assembled by hand."""

from __future__ import annotations

import json

import pytest

from optimlab import optim, problems
from optimlab.cli import main
from optimlab.data.preprocess import apply_to_splits
from optimlab.train import fit


def _without_time(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


def test_cli_preprocess_and_order_match_a_direct_fit(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--problem", "logreg_digits", "--optimizer", "sgd", "--lr", "0.05",
            "--epochs", "2", "--seed", "1", "--preprocess", "zca_whiten",
            "--order", "shuffle_once", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    history = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]

    problem = problems.build("logreg_digits", seed=1)
    problem.splits, _ = apply_to_splits(problem.splits, "zca_whiten")
    opt = optim.create("sgd", problem.model.parameters(), lr=0.05)
    ref = fit(problem, opt, epochs=2, seed=1, order="shuffle_once")
    assert _without_time(history) == _without_time(ref.history)
    # Without the flags the run differs, so the flags reached the trainer.
    plain = problems.build("logreg_digits", seed=1)
    opt = optim.create("sgd", plain.model.parameters(), lr=0.05)
    other = fit(plain, opt, epochs=2, seed=1)
    assert history[-1]["loss"] != pytest.approx(other.history[-1]["loss"], rel=1e-9)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--preprocess", "whiten", "unknown preprocessing 'whiten'"),
     ("--order", "shuffled", "invalid order 'shuffled'")],
)  # fmt: skip
def test_cli_names_bad_values(flag, value, message, capsys):
    argv = ["train", "--problem", "logreg_digits", "--optimizer", "sgd", "--epochs", "1",
            flag, value, "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert message in capsys.readouterr().err
