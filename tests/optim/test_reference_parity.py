"""The optimizers that came after the lectures against independent implementations
(torch.optim, and the lion-pytorch, pytorch-optimizer, schedulefree and prodigyopt
packages): the same start and the same gradient stream for 100 steps, on a model with a
matrix, a vector, a 3-D tensor, a scalar and a parameter whose gradient stays None, in
two param groups with different learning rates. Parameters, and the state entries that
mean the same in both, must agree to ``case.rtol`` relative (1e-10 in float64, unless
the case says why not).

The same cases are checked for a mid-run ``state_dict`` round trip through
``torch.save``/``torch.load(weights_only=True)``: the resumed run continues exactly like
the uninterrupted one (wrappers included). The cases live in reference_parity_cases.py.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from reference_parity_cases import CASES, Case, make_params
from streams import feed_gradients

import optimlab.optim as oo

STEPS = 100


def build(case: Case, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    return oo.create(case.ours, case.groups(params, case.lr), **case.hp)


def closure_for(params: list[torch.Tensor], step: int):
    """Feeds step ``step``'s gradients at the parameters' current values."""

    def closure() -> torch.Tensor:
        feed_gradients(params, step)
        return torch.zeros(())

    return closure


def take_step(case: Case, opt: Any, params: list[torch.Tensor], step: int, ours: bool) -> None:
    if not case.closure:
        feed_gradients(params, step)
        opt.step()
        return
    closure = closure_for(params, step)
    if ours:
        opt.step(closure)  # evaluates the closure as often as it needs
    else:
        case.extra["reference_step"](opt, closure)


def state_entry(opt: Any, p: torch.Tensor, key: str) -> Any:
    """``opt.state[p][key]``; ``attr:key`` reads ``opt.attr``, an inner optimizer's state
    or a per-parameter dict of the wrapper's own."""
    states = opt.state
    if ":" in key:
        attr, key = key.split(":")
        states = getattr(opt, attr)
        states = states if isinstance(states, dict) else states.state
    return states[p].get(key) if p in states else None


def assert_close(ours: Any, theirs: Any, rtol: float, what: str) -> None:
    theirs = torch.as_tensor(theirs)
    ours = torch.as_tensor(ours).to(theirs.dtype)
    if ours.shape != theirs.shape and ours.numel() == theirs.numel():
        ours = ours.reshape(theirs.shape)  # a reference that keeps state flattened
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=rtol * 1e-3, msg=what)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_reference(case: Case):
    ours_p, ref_p = make_params(case.dtype), make_params(case.dtype)
    ours = build(case, ours_p)
    theirs = case.reference(case.groups(ref_p, case.lr))
    for step in range(STEPS):
        take_step(case, ours, ours_p, step, ours=True)
        take_step(case, theirs, ref_p, step, ours=False)
    start = make_params(case.dtype)
    for i, (a, b) in enumerate(zip(ours_p, ref_p)):
        assert_close(a, b, case.rtol, f"parameter {i}")
        if i == 4:  # its gradient stays None: it must not move
            assert torch.equal(a, start[4])
        else:
            assert not torch.equal(a, start[i]), f"parameter {i} did not move"
    compared = 0
    for i, (a, b) in enumerate(zip(ours_p, ref_p)):
        if i == 4:
            continue  # no gradient, no state here (Lookahead's reference keeps a copy)
        for our_key, their_key in case.state:
            theirs_value = state_entry(theirs, b, their_key)
            ours_value = state_entry(ours, a, our_key)
            if theirs_value is None:
                continue
            assert ours_value is not None, f"state {our_key!r} of parameter {i} missing"
            assert_close(ours_value, theirs_value, case.rtol, f"state {our_key} of {i}")
            compared += 1
    assert compared >= len(case.state)  # each pair was found for some parameter
    if "compare" in case.extra:  # state that is not per parameter
        for what, ours_value, theirs_value in case.extra["compare"](ours, theirs):
            assert_close(ours_value, theirs_value, case.rtol, what)
    if case.finish is not None:
        case.finish(ours)
        case.finish(theirs)
        for i, (a, b) in enumerate(zip(ours_p, ref_p)):
            assert_close(a, b, case.rtol, f"parameter {i} after finish")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_state_dict_round_trip_continues_identically(case: Case):
    params = make_params(case.dtype)
    opt = build(case, params)
    for step in range(STEPS // 2):
        take_step(case, opt, params, step, ours=True)
    blob = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, blob)
    for step in range(STEPS // 2, STEPS):
        take_step(case, opt, params, step, ours=True)

    blob.seek(0)
    saved = torch.load(blob, weights_only=True)
    resumed_params = [p.clone().requires_grad_() for p in saved["params"]]
    resumed = build(case, resumed_params)
    resumed.load_state_dict(saved["opt"])
    for step in range(STEPS // 2, STEPS):
        take_step(case, resumed, resumed_params, step, ours=True)
    for i, (a, b) in enumerate(zip(params, resumed_params)):
        assert torch.equal(a, b), f"parameter {i}"
