"""The speedrun's multi-scale test-time averaging: ten crops at three shorter sides."""

import torch
from torch import nn

from optimlab.regularize.tta import multiscale_predict
from optimlab.speedrun import runner
from optimlab.speedrun.recipe import TTA


def test_multiscale_sides():
    assert runner.multiscale_sides(224) == (224, 252, 280)
    assert runner.multiscale_sides(8) == (8, 9, 10)
    assert runner.multiscale_sides(1) == (1,)


def test_multiscale_evaluation_scores_the_averaged_prediction():
    assert "multiscale" in TTA
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(3, 4))  # fmt: skip
    x = torch.rand(40, 1, 8, 8)
    probs = multiscale_predict(model, x, (8, 9, 10))
    y = probs.argmax(1)
    y[:10] = (y[:10] + 1) % 4  # a quarter wrong by construction
    assert runner.evaluate(model, x, y, 16, "multiscale") == 0.75
    plain = runner.evaluate(model, x, y, 16, "none")
    assert plain == float((model(x).argmax(1) == y).float().mean())
