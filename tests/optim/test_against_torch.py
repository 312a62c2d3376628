"""Every rule torch.optim also has: same start, same gradient stream, 120 steps in
float64, two param groups (different lr), a zero-size tensor and a parameter
whose grad stays None. Parameters and state must agree to 1e-10 relative."""

from __future__ import annotations

import pytest
import torch
from streams import feed_gradients, make_params

import optimlab.optim as oo

STEPS = 120

# (id, our class, torch class, kwargs shared by both, base lr)
CASES = [
    ("sgd", oo.SGD, torch.optim.SGD, {}, 0.05),
    ("sgd-momentum", oo.SGD, torch.optim.SGD, {"momentum": 0.9}, 0.05),
    ("sgd-dampening", oo.SGD, torch.optim.SGD, {"momentum": 0.8, "dampening": 0.3}, 0.05),
    ("sgd-nesterov", oo.SGD, torch.optim.SGD, {"momentum": 0.9, "nesterov": True}, 0.05),
    ("sgd-wd", oo.SGD, torch.optim.SGD, {"momentum": 0.5, "weight_decay": 0.1}, 0.05),
    ("sgd-maximize", oo.SGD, torch.optim.SGD, {"momentum": 0.5, "maximize": True}, 0.01),
    ("adagrad", oo.Adagrad, torch.optim.Adagrad, {}, 0.1),
    (
        "adagrad-decay",
        oo.Adagrad,
        torch.optim.Adagrad,
        {"lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.05},
        0.1,
    ),
    ("rmsprop", oo.RMSprop, torch.optim.RMSprop, {}, 0.01),
    ("rmsprop-centered", oo.RMSprop, torch.optim.RMSprop, {"centered": True}, 0.01),
    (
        "rmsprop-momentum",
        oo.RMSprop,
        torch.optim.RMSprop,
        {"momentum": 0.9, "centered": True, "weight_decay": 0.01},
        0.01,
    ),
    ("adadelta", oo.Adadelta, torch.optim.Adadelta, {"weight_decay": 0.01}, 1.0),
    ("adam", oo.Adam, torch.optim.Adam, {}, 0.01),
    ("adam-wd", oo.Adam, torch.optim.Adam, {"weight_decay": 0.1, "betas": (0.8, 0.99)}, 0.01),
    ("amsgrad", oo.Adam, torch.optim.Adam, {"amsgrad": True}, 0.01),
    ("adamw", oo.AdamW, torch.optim.AdamW, {"weight_decay": 0.1}, 0.01),
    ("adamw-amsgrad", oo.AdamW, torch.optim.AdamW, {"amsgrad": True}, 0.01),
    ("adamax", oo.Adamax, torch.optim.Adamax, {"weight_decay": 0.01}, 0.01),
    ("nadam", oo.NAdam, torch.optim.NAdam, {}, 0.01),
    ("nadam-wd", oo.NAdam, torch.optim.NAdam, {"weight_decay": 0.05, "momentum_decay": 0.01}, 0.01),
]


def groups(params, lr):
    return [{"params": params[:2], "lr": lr}, {"params": params[2:], "lr": lr / 3}]


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-13, msg=what)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(case):
    _, ours_cls, torch_cls, kwargs, lr = case
    ours_p, torch_p = make_params(), make_params()
    ours = ours_cls(groups(ours_p, lr), **kwargs)
    theirs = torch_cls(groups(torch_p, lr), foreach=False, **kwargs)
    for step in range(STEPS):
        feed_gradients(ours_p, step)
        feed_gradients(torch_p, step)
        ours.step()
        theirs.step()
    moved = 0
    for i, (a, b) in enumerate(zip(ours_p, torch_p)):
        assert_close(a, b, f"parameter {i}")
        if i == 4:  # grad always None: untouched, no state
            assert torch.equal(a, make_params()[4])
            assert not ours.state[a]
            continue
        moved += int(not torch.equal(a, make_params()[i]))
        their_state = theirs.state[b]
        for key, value in their_state.items():
            assert key in ours.state[a], f"state {key!r} missing"
            if isinstance(value, torch.Tensor):
                assert_close(ours.state[a][key].to(value.dtype), value, f"state {key} of {i}")
    assert moved == 3  # the matrix, the vector and the scalar moved
