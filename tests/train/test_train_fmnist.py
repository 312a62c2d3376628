"""Slow end-to-end checks on Fashion-MNIST: the trainer reaches the accuracies that the
dataset's README and DeepOBS report for these models.

Each run stops as soon as the target test accuracy is reached (or the epoch cap is hit);
the tests skip where the Fashion-MNIST files are not installed.
"""

from __future__ import annotations

import pytest
import torch

from optimlab import optim, problems
from optimlab.data import DatasetNotFound
from optimlab.train import Callback, fit


class StopAtTarget(Callback):
    def __init__(self, key: str, target: float):
        super().__init__()
        self.key, self.target = key, target

    def on_epoch_end(self, epoch, logs):
        if logs[self.key] >= self.target:
            self.trainer.stop_training = True


def _build(name: str):
    try:
        return problems.build(name, seed=0, device="cuda" if torch.cuda.is_available() else "cpu")
    except DatasetNotFound as err:
        pytest.skip(f"Fashion-MNIST is not installed: {err}")


@pytest.mark.slow
def test_fmnist_mlp_adam_defaults_reaches_88_percent():
    problem = _build("fmnist_mlp")
    opt = optim.create("adam", problem.model.parameters())  # lr 1e-3, betas (0.9, 0.999)
    result = fit(problem, opt, epochs=20, callbacks=[StopAtTarget("test_accuracy", 0.88)])
    best = max(r["test_accuracy"] for r in result.history)
    assert best >= 0.88, [round(r["test_accuracy"], 4) for r in result.history]


@pytest.mark.slow
def test_fmnist_2c2d_momentum_sgd_reaches_91_percent():
    problem = _build("fmnist_2c2d")
    opt = optim.create("momentum", problem.model.parameters())  # lr 0.01, momentum 0.9
    result = fit(problem, opt, epochs=40, callbacks=[StopAtTarget("test_accuracy", 0.91)])
    best = max(r["test_accuracy"] for r in result.history)
    assert best >= 0.91, [round(r["test_accuracy"], 4) for r in result.history]
