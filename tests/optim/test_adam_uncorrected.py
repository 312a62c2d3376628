"""Adam without bias correction, the form lecture 002 writes:
m_t = b1 m + (1 - b1) g;  s_t = b2 s + (1 - b2) g^2;  w <- w - lr m / (sqrt(s) + eps)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from streams import feed_gradients, make_params

import optimlab.optim as oo
from optimlab.errors import OptimlabError


def lecture_adam(grads, w0, lr, b1, b2, eps, weight_decay=0.0, decoupled=False):
    """Lecture 002's update, with the gradients each step saw; returns the last w."""
    w = w0.copy()
    m = np.zeros_like(w)
    s = np.zeros_like(w)
    for g in grads:
        if weight_decay and not decoupled:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        step = lr * m / (np.sqrt(s) + eps)
        if decoupled:
            step = step + lr * weight_decay * w
        w = w - step
    return w


@pytest.mark.parametrize(
    "cls, hp",
    [
        (oo.Adam, {}),
        (oo.Adam, {"weight_decay": 0.1}),
        (oo.AdamW, {"weight_decay": 0.1}),
    ],
    ids=["adam", "adam_l2", "adamw"],
)
def test_uncorrected_adam_is_the_lecture_equation(cls, hp):
    params = make_params()
    w0 = [p.detach().numpy().copy() for p in params]
    opt = cls(params, lr=0.01, betas=(0.8, 0.95), eps=1e-6, bias_correction=False, **hp)
    seen = [[] for _ in params]
    for step in range(60):
        feed_gradients(params, step)
        for i, p in enumerate(params):
            if p.grad is not None:
                seen[i].append(p.grad.numpy().copy())
        opt.step()
    decoupled = cls is oo.AdamW
    for i, p in enumerate(params):
        ref = lecture_adam(seen[i], w0[i], 0.01, 0.8, 0.95, 1e-6, hp.get("weight_decay", 0.0),
                           decoupled)  # fmt: skip
        np.testing.assert_allclose(p.detach().numpy(), ref, rtol=1e-12, atol=1e-14)
    assert any(len(s) for s in seen)


def test_the_first_step_is_larger_by_the_missing_corrections():
    """With eps = 0 the corrected first step is lr * sign(g); uncorrected, it is
    (1 - b1)/sqrt(1 - b2) times that (3.16 with the default betas)."""
    moves = {}
    for corrected in (True, False):
        w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = oo.Adam([w], lr=0.1, eps=0.0, bias_correction=corrected)
        w.grad = torch.tensor([2.0, -0.5, 1e-3], dtype=torch.float64)
        opt.step()
        moves[corrected] = w.detach().clone()
    torch.testing.assert_close(moves[True], torch.tensor([-0.1, 0.1, -0.1], dtype=torch.float64))
    torch.testing.assert_close(moves[False], moves[True] * (0.1 / 0.001**0.5))


def test_default_keeps_the_corrections_and_the_option_is_a_hyperparameter():
    w = torch.zeros(2, requires_grad=True)
    assert oo.Adam([w]).defaults["bias_correction"] is True
    assert oo.get("adam").hyperparameters()["bias_correction"] is True
    opt = oo.create("adamw", [w], bias_correction=False)
    opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "bias_correction": True})
    assert [g["bias_correction"] for g in opt.param_groups] == [False, True]


def test_bias_correction_must_be_a_bool():
    with pytest.raises(
        OptimlabError, match="invalid bias_correction: 'no'; expected True or False"
    ):
        oo.Adam([torch.zeros(2, requires_grad=True)], bias_correction="no")
