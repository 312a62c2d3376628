"""Regularization by name: validation errors, and what apply() adds to a run."""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

from optimlab import problems
from optimlab.errors import OptimlabError
from optimlab.regularize import MaxNorm, options
from optimlab.regularize.ensembles import SnapshotEnsemble, WeightAveraging


@pytest.mark.parametrize(
    "opts, match",
    [({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout"), ({"l2": -1e-3}, "l2"),
     ({"l1": -1.0}, "l1"), ({"augment": "flip,warp"}, "unknown augmentation 'warp'"),
     ({"max_norm": 0.0}, "max_norm"), ({"ema": 1.0}, "ema"), ({"swa": 1.0}, "swa"),
     ({"snapshots": 0}, "snapshots"), ({"mixup": 0.0}, "mixup"), ({"l3": 1.0}, "l3")],
)  # fmt: skip
def test_invalid_values(opts, match):
    with pytest.raises(OptimlabError, match=match):
        options.validate(opts)


def test_parser_round_trip():
    from optimlab.cli.train import add_regularization_arguments, regularization_options

    p = argparse.ArgumentParser()
    add_regularization_arguments(p)
    args = p.parse_args(["--l2", "0.01", "--dropout", "0.3", "--augment", "flip", "--swa"])
    assert regularization_options(args) == {
        "l2": 0.01, "dropout": 0.3, "augment": "flip", "swa": 0.75,
    }  # fmt: skip


def test_apply_builds_the_run():
    problem = problems.build("digits_mlp", seed=0)
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    opts = {"l2": 0.01, "dropout": 0.25, "max_norm": 2.0, "mixup": 0.2, "snapshots": 2,
            "swa": 0.5, "ema": 0.99}  # fmt: skip
    new, kw = options.apply(opts, problem, {"seed": 3}, optimizer=opt, total_steps=100)
    drops = [m for m in new.model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 2 and all(d.p == 0.25 for d in drops)
    kinds = [type(c) for c in kw["callbacks"]]
    assert kinds == [MaxNorm, SnapshotEnsemble, WeightAveraging, WeightAveraging]
    assert kw["callbacks"][1].ends == [50, 100]
    assert kw["callbacks"][2].start == 50 and kw["callbacks"][3].decay == 0.99
    assert kw["scheduler"] is not None and "batch_transform" in kw
    # the loss in training mode includes 0.01 * sum(w^2) over the weights
    x, y = new.splits.train.x[:4], new.splits.train.y[:4]
    new.model.eval()
    out = new.model(x)
    base = new.loss_fn(out, y)
    new.model.train()
    weights = [m.weight for m in new.model.modules() if isinstance(m, nn.Linear)]
    pen = 0.01 * sum((w**2).sum() for w in weights)
    torch.testing.assert_close(new.loss_fn(out, y), base + pen)


def test_augment_needs_images():
    problem = problems.build("rosenbrock", seed=0)  # a 2-D function: no data
    with pytest.raises(OptimlabError, match="images"):
        options.apply({"augment": "flip"}, problem, {})


def test_empty_options_change_nothing():
    problem = problems.build("digits_mlp", seed=0)
    new, kw = options.apply({}, problem, {"seed": 0})
    assert new is problem and kw == {"seed": 0, "callbacks": []}


def test_cli_train_with_regularization(capsys):
    from optimlab.cli import main

    base = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--quiet"]
    assert main([*base, "--epochs", "1", "--l2", "1e-4", "--dropout", "0.2", "--ema", "0.9"]) == 0
    assert "ema_val_accuracy" in capsys.readouterr().out
    assert main([*base, "--dropout", "1.0"]) != 0
    assert "invalid dropout: 1.0; valid range is [0, 1)" in capsys.readouterr().err
