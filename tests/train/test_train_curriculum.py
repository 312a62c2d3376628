"""A curriculum ordering (optimlab.data.ordering.Curriculum) drives the trainer: the
pool of examples grows by epoch, and each epoch takes exactly ceil(pool / batch) steps."""

from __future__ import annotations

import math

import torch

from optimlab.data.ordering import Curriculum
from optimlab.optim import SGD
from optimlab.train import Trainer


def test_trainer_follows_the_curriculum_pool():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(5, 2)
    scores = x[:, 0].abs().neg()  # "easy" = far from the boundary
    curriculum = Curriculum(scores, start=0.25, epochs=3, pacing="linear")
    splits = (x, y)
    problem = (model, torch.nn.functional.cross_entropy, {}, {"train": splits})
    trainer = Trainer(problem, SGD(model.parameters(), lr=0.1), epochs=4, batch_size=16,
                      order=curriculum, evaluate_test=False)  # fmt: skip
    result = trainer.run()
    steps = [row["step"] for row in result.history]
    per_epoch = [b - a for a, b in zip([0, *steps], steps)]
    pools = [curriculum.pool_size(200, e) for e in range(4)]
    assert per_epoch == [math.ceil(p / 16) for p in pools]
    assert pools[0] < pools[-1] == 200
