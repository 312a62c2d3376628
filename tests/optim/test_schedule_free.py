"""The schedule-free optimizers' train/eval switch: steps only in train mode, a warning
when the model is evaluated in train mode, x and y recovered from each other, a
checkpoint taken in eval mode, and BatchNorm statistics recomputed at x."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

import optimlab.optim as oo
from optimlab.errors import OptimlabError

NAMES = ["schedule_free_sgd", "schedule_free_adamw"]


def model_and_data(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 1)).double()
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(64, 1, generator=gen, dtype=torch.float64)
    return model, x, y


def train(opt, model, x, y, steps: int) -> None:
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("name", NAMES)
def test_step_in_eval_mode_is_refused_naming_train(name):
    model, x, y = model_and_data()
    opt = oo.create(name, model.parameters(), lr=0.01)
    train(opt, model, x, y, 2)
    opt.eval()
    assert not opt.training
    with pytest.raises(OptimlabError, match=r"step\(\) called in eval mode.*optimizer.train\(\)"):
        train(opt, model, x, y, 1)
    opt.train()
    train(opt, model, x, y, 1)


@pytest.mark.parametrize("name", NAMES)
def test_eval_and_train_move_between_y_and_x(name):
    """eval() puts x = (y - (1 - beta) z) / beta in the parameters, train() y back."""
    model, x, y = model_and_data()
    opt = oo.create(name, model.parameters(), lr=0.01)
    train(opt, model, x, y, 10)
    group = opt.param_groups[0]
    beta = group["momentum"] if "momentum" in group else group["betas"][0]
    ys = [p.detach().clone() for p in model.parameters()]
    zs = [opt.state[p]["z"].clone() for p in model.parameters()]
    opt.eval()
    opt.eval()  # a second call changes nothing
    for p, y_, z in zip(model.parameters(), ys, zs):
        torch.testing.assert_close(p.detach(), (y_ - (1 - beta) * z) / beta, rtol=1e-12, atol=1e-14)
    # x differs from y where z has moved (not the bias before BatchNorm: its gradient is 0)
    assert sum(not torch.equal(p.detach(), y_) for p, y_ in zip(model.parameters(), ys)) >= 4
    opt.train()
    for p, y_ in zip(model.parameters(), ys):
        torch.testing.assert_close(p.detach(), y_, rtol=1e-12, atol=1e-14)


def test_guard_warns_when_the_model_is_evaluated_in_train_mode():
    model, x, y = model_and_data()
    opt = oo.create("schedule_free_sgd", model.parameters(), lr=0.01)
    handle = opt.guard(model)
    train(opt, model, x, y, 2)  # model.train(): no warning
    model.eval()
    with pytest.warns(UserWarning, match=r"train mode.*call optimizer.eval\(\) before evaluating"):
        with torch.no_grad():
            model(x)
    opt.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            model(x)
    handle.remove()


def test_a_checkpoint_saved_in_eval_mode_resumes_identically():
    model, x, y = model_and_data()
    opt = oo.create("schedule_free_adamw", model.parameters(), lr=0.01, warmup_steps=5)
    train(opt, model, x, y, 12)
    opt.eval()
    blob = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, blob)
    opt.train()
    train(opt, model, x, y, 8)

    blob.seek(0)
    saved = torch.load(blob, weights_only=True)
    resumed_model, _, _ = model_and_data(seed=5)  # other initial values, overwritten
    resumed_model.load_state_dict(saved["model"])
    resumed = oo.create("schedule_free_adamw", resumed_model.parameters(), lr=0.01, warmup_steps=5)
    resumed.load_state_dict(saved["opt"])
    assert not resumed.training  # the mode travels with the state dict
    resumed.train()
    train(resumed, resumed_model, x, y, 8)
    for a, b in zip(model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_batchnorm_statistics_are_recomputed_at_x():
    model, x, y = model_and_data()
    opt = oo.create("schedule_free_sgd", model.parameters(), lr=0.1)
    train(opt, model, x, y, 20)
    bn = model[1]
    batches = [x[:32], (x[32:], y[32:])]  # inputs, or tuples whose first entry is the input
    with pytest.raises(OptimlabError, match=r"call optimizer.eval\(\) first"):
        oo.update_bn_at_average(model, batches, opt)
    opt.eval()
    model.eval()
    oo.update_bn_at_average(model, batches, opt)
    assert not model.training and not bn.training  # modes restored
    assert bn.momentum == 0.1
    with torch.no_grad():
        h = model[0](x)  # BatchNorm's input at x
    halves = [h[:32], h[32:]]
    torch.testing.assert_close(bn.running_mean, h.mean(0), rtol=1e-12, atol=1e-14)
    expected_var = sum(part.var(0, unbiased=True) for part in halves) / 2
    torch.testing.assert_close(bn.running_var, expected_var, rtol=1e-12, atol=1e-14)
    assert int(bn.num_batches_tracked) == 2
