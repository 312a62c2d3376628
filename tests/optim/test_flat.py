"""Flat buffers (optimlab.optim.flat) without compiling: what is flattened, what is
refused, and that the per-parameter tensors become views holding the same values."""

from __future__ import annotations

import torch

import optimlab.optim as oo
from optimlab.optim.flat import flat_safe, flatten
from optimlab.optim.transform import Transform


def stepped(name: str, params: list[torch.Tensor], **hp) -> torch.optim.Optimizer:
    opt = oo.create(name, params, **hp)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    return opt


def test_flatten_makes_views_with_the_same_values():
    params = [torch.randn(3, 4).requires_grad_(), torch.randn(5).requires_grad_()]
    opt = stepped("nadam", params)
    before = [p.detach().clone() for p in params]
    states = [opt.state[p] for p in params]
    saved = [{k: v.clone() for k, v in s.items()} for s in states]
    flat = flatten(params, states)
    assert flat is not None
    assert flat.param.shape == (17,)
    for p, b, s, old in zip(params, before, states, saved):
        assert torch.equal(p.detach(), b)
        assert p.untyped_storage().data_ptr() == flat.param.untyped_storage().data_ptr()
        for key, value in old.items():
            assert torch.equal(s[key], value), key
    # scalar state: one group value, spread into per-parameter 0-d views
    assert set(flat.spread) == {"step", "mu_product"}
    assert float(flat.state["step"]) == 1.0
    flat.spread["step"].fill_(7.0)
    assert all(float(s["step"]) == 7.0 for s in states)


def test_flatten_refuses_mixed_dtypes_and_unequal_steps():
    mixed = [torch.randn(4).requires_grad_(), torch.randn(4, dtype=torch.float64).requires_grad_()]
    opt = stepped("adam", mixed)
    assert flatten(mixed, [opt.state[p] for p in mixed]) is None

    params = [torch.randn(4).requires_grad_(), torch.randn(3).requires_grad_()]
    opt = stepped("adam", params)
    params[1].grad = None  # the second parameter misses a step
    opt.step()
    states = [opt.state[p] for p in params]
    ptr = params[0].data_ptr()
    assert flatten(params, states) is None
    assert params[0].data_ptr() == ptr  # nothing was moved


def test_flat_safe_follows_per_tensor_options_and_declarations():
    chain = oo.create("adam", [torch.zeros(1, requires_grad=True)]).transforms
    assert flat_safe(chain, {"clip_norm": None})
    assert not flat_safe(chain, {"clip_norm": 1.0})

    class Outside(Transform):
        def update_one(self, u, p, state, hp):
            return u / (u.norm() + 1)  # per tensor: must not be run on the flat group

    class Declared(Outside):
        elementwise = True

    assert not flat_safe([*chain, Outside()], {"clip_norm": None})
    assert flat_safe([*chain, Declared()], {"clip_norm": None})
