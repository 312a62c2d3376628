"""Resuming from a mid-run state dict continues exactly like the uninterrupted run."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from streams import feed_gradients, make_params

import optimlab.optim as oo

# Optimizers built from parameters alone (path_sgd also reads the model's layers).
PARAMETERS_ONLY = [
    n
    for n in oo.available(needs_closure=False)
    if not getattr(oo.get(n).builder, "needs_model", False)
]


def groups(params):
    return [{"params": params[:2]}, {"params": params[2:], "lr": 0.003}]


@pytest.mark.parametrize("name", PARAMETERS_ONLY)
def test_round_trip_continues_identically(name):
    params = make_params()
    opt = oo.create(name, groups(params))
    for step in range(25):
        feed_gradients(params, step)
        opt.step()
    buffer = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buffer)
    for step in range(25, 50):
        feed_gradients(params, step)
        opt.step()

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed_params = [p.clone().requires_grad_() for p in saved["params"]]
    resumed = oo.create(name, groups(resumed_params))
    resumed.load_state_dict(saved["opt"])
    for step in range(25, 50):
        feed_gradients(resumed_params, step)
        resumed.step()
    for a, b in zip(params, resumed_params):
        assert torch.equal(a, b)


def test_loads_torch_adam_state_and_continues_like_torch():
    """State keys follow torch.optim, so a torch Adam checkpoint can move to ours."""
    theirs_p = make_params()
    theirs = torch.optim.Adam(groups(theirs_p), lr=0.01)
    for step in range(20):
        feed_gradients(theirs_p, step)
        theirs.step()
    ours_p = [p.detach().clone().requires_grad_() for p in theirs_p]
    ours = oo.Adam(groups(ours_p), lr=0.01)
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))  # as if read from disk
    for step in range(20, 40):
        feed_gradients(theirs_p, step)
        feed_gradients(ours_p, step)
        theirs.step()
        ours.step()
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
