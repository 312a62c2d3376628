"""Shampoo's momentum conventions against a plain NumPy transcription.

``momentum_form="heavy_ball"`` and ``"ema"`` follow the gradient average of the
authors' TensorFlow ``ShampooOptimizer``: ``gbar = a gbar + b g`` is preconditioned
while the statistics accumulate ``g``. The default, pytorch-optimizer's blend, is
checked against that package in ``test_reference_parity``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import optimlab.optim as oo
from optimlab.errors import OptimlabError

SHAPES = [(5, 3), (4,)]
STEPS = 30


def gradient_stream(seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(shape) for shape in SHAPES] for _ in range(STEPS)]


def inverse_root(h: np.ndarray, root: int) -> np.ndarray:
    values, vectors = np.linalg.eigh(h)
    return (vectors * values ** (-1.0 / root)) @ vectors.T


def transcription(
    start: list[np.ndarray], grads, lr: float, mu: float, wd: float, eps: float, form: str
) -> list[np.ndarray]:
    """Shampoo with a preconditioned gradient average, written out per tensor."""
    ws = [w.copy() for w in start]
    stats = [[eps * np.eye(n) for n in w.shape] for w in ws]
    averages = [np.zeros_like(w) for w in ws]
    weight = 1.0 if form == "heavy_ball" else 1.0 - mu
    for step in grads:
        for w, g, hs, m in zip(ws, step, stats, averages):
            g = g + wd * w
            k = g.ndim
            for i, h in enumerate(hs):
                unfolded = np.moveaxis(g, i, 0).reshape(g.shape[i], -1)
                h += unfolded @ unfolded.T
            m *= mu
            m += weight * g
            d = m
            for i, h in enumerate(hs):
                d = np.moveaxis(np.tensordot(inverse_root(h, 2 * k), d, axes=([1], [i])), 0, i)
            w -= lr * d
    return ws


def run(start, grads, steps: range, opt=None, params=None, **hp):
    if opt is None:
        params = [torch.tensor(w, requires_grad=True) for w in start]
        opt = oo.Shampoo(params, **hp)
    for t in steps:
        for p, g in zip(params, grads[t]):
            p.grad = torch.tensor(g)
        opt.step()
    return opt, params


@pytest.mark.parametrize("form", ["heavy_ball", "ema"])
def test_gradient_average_forms_match_the_transcription(form):
    rng = np.random.default_rng(1)
    start = [rng.standard_normal(shape) for shape in SHAPES]
    grads = gradient_stream()
    hp = dict(lr=0.05, momentum=0.9, weight_decay=0.01, matrix_eps=1e-3)
    _, params = run(start, grads, range(STEPS), momentum_form=form, **hp)
    expected = transcription(start, grads, hp["lr"], 0.9, 0.01, 1e-3, form)
    for p, w in zip(params, expected):
        np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-10, atol=1e-12)


def test_the_forms_differ_and_the_default_is_the_blend():
    rng = np.random.default_rng(2)
    start = [rng.standard_normal(shape) for shape in SHAPES]
    grads = gradient_stream(3)
    out = {}
    for form in [None, "blend", "heavy_ball", "ema"]:
        extra = {} if form is None else {"momentum_form": form}
        _, params = run(start, grads, range(5), lr=0.05, momentum=0.5, matrix_eps=1e-3, **extra)
        out[form] = torch.cat([p.detach().flatten() for p in params])
    assert torch.equal(out[None], out["blend"])
    for a, b in [("blend", "heavy_ball"), ("blend", "ema"), ("heavy_ball", "ema")]:
        assert not torch.allclose(out[a], out[b])


@pytest.mark.parametrize("form", ["heavy_ball", "ema"])
def test_state_dict_round_trip_continues_identically(form):
    rng = np.random.default_rng(4)
    start = [rng.standard_normal(shape) for shape in SHAPES]
    grads = gradient_stream(5)
    hp = dict(lr=0.05, momentum=0.9, matrix_eps=1e-3, momentum_form=form)
    straight, p_straight = run(start, grads, range(STEPS), **hp)
    first, p_first = run(start, grads, range(10), **hp)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    params = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in p_first]
    resumed = oo.Shampoo(params, **hp)
    resumed.load_state_dict(torch.load(buf))
    run(start, grads, range(10, STEPS), opt=resumed, params=params)
    for a, b in zip(params, p_straight):
        assert torch.equal(a, b)
    assert resumed.param_groups[0]["momentum_form"] == form


def test_unknown_momentum_form_is_refused_naming_the_valid_ones():
    with pytest.raises(OptimlabError, match=r"invalid momentum_form: 'nesterov'; valid: 'blend'"):
        oo.Shampoo([torch.zeros(2, requires_grad=True)], momentum=0.9, momentum_form="nesterov")
