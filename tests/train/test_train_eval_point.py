"""The trainer evaluates an optimizer with a ``train()``/``eval()`` switch at its answer:
a schedule-free run's validation loss is the loss at the average ``x``, and the switch
back to ``y`` after evaluating leaves training as it was."""

from __future__ import annotations

import copy

import pytest
import torch
from train_toys import make_problem

from optimlab import optim
from optimlab.train import fit
from optimlab.train.batching import make_loader
from optimlab.train.trainer import at_evaluation_point

EPOCHS, BATCH, SEED = 3, 16, 5


def factory(params):
    return optim.ScheduleFreeAdamW(params, lr=0.05, warmup_steps=3)


def hand_loop(problem):
    """The loop the schedule-free docs ask for: train at y, ``eval()`` to x to validate,
    ``train()`` back; returns the model (at y), the val losses at x and at y."""
    model = copy.deepcopy(problem.model)
    opt = factory(model.parameters())
    x, y = problem.splits.train.x, problem.splits.train.y
    loader = make_loader(x, y, BATCH, order="random", seed=SEED)
    vx, vy = problem.splits.val.x, problem.splits.val.y
    at_x, at_y = [], []
    for e in range(EPOCHS):
        model.train()
        for xb, yb in loader.epoch(e):
            opt.zero_grad()
            problem.loss_fn(model(xb), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            at_y.append(problem.loss_fn(model(vx), vy).item())
            opt.eval()
            at_x.append(problem.loss_fn(model(vx), vy).item())
            opt.train()
    return model, at_x, at_y


def test_schedule_free_run_is_validated_at_x_and_continues_identically():
    problem = make_problem(dtype=torch.float64)
    model, at_x, at_y = hand_loop(problem)
    opt = factory(problem.model.parameters())
    result = fit(problem, opt, epochs=EPOCHS, batch_size=BATCH, seed=SEED)
    reported = [record["val_loss"] for record in result.history]
    assert reported == pytest.approx(at_x, rel=1e-12)
    # the two points differ enough that reporting y's loss would fail the check above
    assert all(abs(a - b) > 1e-6 * abs(b) for a, b in zip(at_x, at_y, strict=True))
    assert opt.training  # back at y for any further step
    # the evaluations changed nothing in the training run: the parameters (at y) and the
    # optimizer's state are those of the hand loop, which switched the same way
    for p, q in zip(problem.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_optimizer_left_in_eval_mode_stays_there():
    """An optimizer the user put in eval mode is not switched back to train mode."""
    problem = make_problem(dtype=torch.float64)
    opt = factory(problem.model.parameters())
    fit(problem, opt, epochs=1, batch_size=BATCH, seed=SEED)
    opt.eval()
    with at_evaluation_point(opt):
        assert not opt.training
    assert not opt.training
