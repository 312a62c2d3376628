"""Adam then SGD: SWATS (Keskar & Socher 2017, Algorithm 1) and a switch at a fixed
step. Before the switch the iterates are Adam's, bit for bit; after it SGD's with the
estimated (or given) learning rate; the estimate is Algorithm 1's, transcribed in NumPy."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from streams import feed_gradients, make_params

import optimlab.optim as oo
from optimlab.errors import OptimlabError


def algorithm_1(grads, x0, alpha, b1, b2, eps, switch_eps):
    """Keskar & Socher's Algorithm 1, line by line, on a given gradient stream.

    Line 12 writes Adam's step with the "epsilon hat" ``eps * sqrt(1 - b2^k)`` so that it
    is torch's Adam with ``eps`` (the form optimlab runs). The switch also asks for a
    positive estimate (optimlab's guard). Returns x, the lambda_k, the switch step, Lambda.
    """
    x = x0.copy()
    m, a = np.zeros_like(x), np.zeros_like(x)
    lam, phase, Lam, v, switch_at = 0.0, "adam", None, None, None
    lams = []
    for k, g in enumerate(grads, start=1):
        if phase == "sgd":
            v = b1 * v + g
            x = x - (1 - b1) * Lam * v
            lams.append(lam)
            continue
        m = b1 * m + (1 - b1) * g
        a = b2 * a + (1 - b2) * g * g
        p = -alpha * np.sqrt(1 - b2**k) / (1 - b1**k) * m / (np.sqrt(a) + eps * np.sqrt(1 - b2**k))
        x = x + p
        if p @ g != 0:
            gamma = (p @ p) / (-(p @ g))
            lam = b2 * lam + (1 - b2) * gamma
            if k > 1 and abs(lam / (1 - b2**k) - gamma) < switch_eps and lam / (1 - b2**k) > 0:
                phase, v, Lam, switch_at = "sgd", np.zeros_like(x), lam / (1 - b2**k), k
        lams.append(lam)
    return x, np.array(lams), switch_at, Lam


def gradient_stream(steps: int, d: int = 7, seed: int = 0) -> list[np.ndarray]:
    """Gradients that do not depend on the iterate: a fixed direction with noise that
    fades, so the estimate settles."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(d)
    return [c * (1 + 0.8**k * rng.standard_normal(d)) for k in range(1, steps + 1)]


@pytest.mark.parametrize("split", [False, True], ids=["one_tensor", "three_tensors"])
def test_swats_estimate_is_algorithm_1(split):
    """lambda_k at every step, the switch step, Lambda and the iterates after 250 steps
    (the switch comes at step 143). The inner products run over the whole group, so the
    vector may be split into several tensors."""
    grads = gradient_stream(250)
    hp = dict(lr=1e-3, betas=(0.9, 0.9), eps=1e-9, switch_eps=1e-9)
    x_ref, lams, switch_at, Lam = algorithm_1(
        grads, np.zeros(7), hp["lr"], 0.9, 0.9, hp["eps"], hp["switch_eps"]
    )
    assert switch_at == 143
    cuts = [(0, 3), (3, 5), (5, 7)] if split else [(0, 7)]
    params = [torch.zeros(b - a, dtype=torch.float64, requires_grad=True) for a, b in cuts]
    opt = oo.create("swats", params, **hp)
    ours, switched = [], None
    for k, g in enumerate(grads, start=1):
        for p, (a, b) in zip(params, cuts):
            p.grad = torch.tensor(g[a:b])
        opt.step()
        ours.append(float(opt.state[params[0]]["lambda_avg"]))
        if switched is None and opt.phase()[0] == "sgd":
            switched = k
    np.testing.assert_allclose(ours, lams, rtol=1e-12, atol=0)
    assert switched == switch_at
    assert opt.phase() == ("sgd", pytest.approx(Lam, rel=1e-12))
    x = torch.cat([p.detach() for p in params]).numpy()
    np.testing.assert_allclose(x, x_ref, rtol=1e-12, atol=1e-15)
    for p in params:  # every tensor of the group holds the same phase and estimate
        assert float(opt.state[p]["switched"]) == 1.0
        assert float(opt.state[p]["sgd_lr"]) == opt.phase()[1]


def run_until_switch(switch_eps: float = 1e-5) -> tuple[list, oo.SWATS, list, oo.Adam, int]:
    """SWATS and Adam side by side on the parameter-dependent stream until SWATS
    switches; asserts they agree bit for bit at every step before."""
    a, b = make_params(), make_params()
    swats = oo.SWATS(a, lr=0.01, switch_eps=switch_eps)
    adam = oo.Adam(b, lr=0.01, eps=1e-9)
    for step in range(2000):
        feed_gradients(a, step)
        swats.step()
        if swats.phase()[0] == "sgd":
            return a, swats, b, adam, step
        feed_gradients(b, step)
        adam.step()
        assert all(torch.equal(x, y) for x, y in zip(a, b)), step
    raise AssertionError("no switch in 2000 steps")


def test_swats_is_adam_until_the_switch_then_sgd_at_the_estimate():
    a, swats, _, _, switch_step = run_until_switch()
    assert switch_step > 50
    _, estimate = swats.phase()
    b1 = swats.param_groups[0]["betas"][0]
    assert 0 < estimate < 0.1
    b = [p.detach().clone().requires_grad_() for p in a]
    sgd = oo.SGD(b, lr=(1 - b1) * estimate, momentum=b1)  # a fresh buffer: Algorithm 1's v = 0
    for step in range(switch_step + 1, switch_step + 60):
        feed_gradients(a, step)
        feed_gradients(b, step)
        swats.step()
        sgd.step()
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert swats.phase() == ("sgd", estimate)  # the estimate no longer moves


def resume(params: list, opt: oo.SWATS) -> tuple[list, oo.SWATS]:
    """A copy of the parameters and a new SWATS loaded from the state dict, both
    through torch.save and a weights-only load, as from a checkpoint file."""
    buffer = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    copies = [p.clone().requires_grad_() for p in saved["params"]]
    resumed = oo.SWATS(copies, lr=0.01, switch_eps=1e-5)
    resumed.load_state_dict(saved["opt"])
    return copies, resumed


def test_swats_state_round_trips_right_after_the_switch():
    """Saved at the switch (before the first SGD step, whose buffer was zeroed): the
    phase and the estimate come back, and the run continues identically."""
    a, swats, _, _, switch_step = run_until_switch()
    b, resumed = resume(a, swats)
    assert resumed.phase() == swats.phase() and resumed.phase()[0] == "sgd"
    for step in range(switch_step + 1, switch_step + 30):
        feed_gradients(a, step)
        feed_gradients(b, step)
        swats.step()
        resumed.step()
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_swats_resumed_before_the_switch_switches_at_the_same_step():
    a = make_params()
    run = oo.SWATS(a, lr=0.01, switch_eps=1e-5)
    for step in range(100):
        feed_gradients(a, step)
        run.step()
    b, resumed = resume(a, run)
    assert resumed.phase() == ("adam", None)
    switches = {}
    for step in range(100, 1200):
        for name, params, opt in (("run", a, run), ("resumed", b, resumed)):
            feed_gradients(params, step)
            opt.step()
            if name not in switches and opt.phase()[0] == "sgd":
                switches[name] = step
    assert "run" in switches and switches["run"] == switches["resumed"]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_swats_groups_switch_on_their_own():
    params = make_params()
    opt = oo.SWATS(
        [{"params": params[:2]}, {"params": params[2:], "switch_eps": 0.0}],
        lr=0.01,
        switch_eps=1e-4,
    )
    for step in range(200):
        feed_gradients(params, step)
        opt.step()
    assert opt.phase(0)[0] == "sgd" and opt.phase(1) == ("adam", None)


@pytest.mark.parametrize("switch_step", [0, 7])
def test_adam_then_sgd_is_adam_then_sgd(switch_step):
    """Adam's iterates (bit for bit) for switch_step updates, then SGD's with the given
    lr and momentum from there, a fresh buffer; weight decay in both phases."""
    a, b = make_params(), make_params()
    hp = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.01)
    ours = oo.create("adam_then_sgd", a, switch_step=switch_step, sgd_lr=0.05,
                     sgd_momentum=0.7, **hp)  # fmt: skip
    adam = oo.Adam(b, **hp)
    for step in range(switch_step):
        feed_gradients(a, step)
        feed_gradients(b, step)
        ours.step()
        adam.step()
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    sgd = oo.SGD(b, lr=0.05, momentum=0.7, weight_decay=0.01)
    for step in range(switch_step, switch_step + 30):
        feed_gradients(a, step)
        feed_gradients(b, step)
        ours.step()
        sgd.step()
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_adam_then_sgd_round_trips_across_the_switch_and_groups_switch_apart():
    def build(params):
        groups = [{"params": params[:2]}, {"params": params[2:], "switch_step": 12}]
        return oo.AdamThenSGD(groups, lr=0.01, switch_step=5, sgd_lr=0.02, sgd_momentum=0.9)

    a = make_params()
    opt = build(a)
    for step in range(8):  # group 0 switched, group 1 still in Adam
        feed_gradients(a, step)
        opt.step()
    buffer = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in a], "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    b = [p.clone().requires_grad_() for p in saved["params"]]
    resumed = build(b)
    resumed.load_state_dict(saved["opt"])
    for step in range(8, 30):
        feed_gradients(a, step)
        feed_gradients(b, step)
        opt.step()
        resumed.step()
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_switch_epoch_waits_for_the_epoch_lengths_then_switches_after_them():
    """A group's switch_epoch E becomes the updates of epochs 0..E-1; before that the
    optimizer refuses to step, and a group with switch_step keeps it."""
    a, b = make_params(), make_params()
    groups = [{"params": a[:2]}, {"params": a[2:], "switch_step": 4, "switch_epoch": None}]
    ours = oo.AdamThenSGD(groups, lr=0.01, switch_epoch=2, sgd_lr=0.05)
    feed_gradients(a, 0)
    with pytest.raises(OptimlabError, match=r"switch_epoch=2 is not resolved.*switch_step"):
        ours.step()
    ours.resolve_epochs([3, 5, 100].__getitem__)
    assert [(g["switch_step"], g["switch_epoch"]) for g in ours.param_groups] == [
        (8, None),
        (4, None),
    ]
    same = oo.AdamThenSGD([{"params": b[:2], "switch_step": 8}, {"params": b[2:]}],
                          lr=0.01, switch_step=4, sgd_lr=0.05)  # fmt: skip
    for step in range(20):
        feed_gradients(a, step)
        feed_gradients(b, step)
        ours.step()
        same.step()
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda p: oo.SWATS(p, lr=-1.0), r"invalid lr: -1.0; valid range is \[0, inf\]"),
        (lambda p: oo.SWATS(p, betas=(0.9, 1.0)), r"invalid betas\[1\].*\[0, 1\)"),
        (lambda p: oo.SWATS(p, eps=-1e-9), r"invalid eps"),
        (lambda p: oo.SWATS(p, switch_eps=-1.0), r"invalid switch_eps: -1.0; valid range is \[0"),
        (lambda p: oo.SWATS(p, weight_decay=-0.1), r"invalid weight_decay"),
        (lambda p: oo.AdamThenSGD(p, switch_step=2.5), r"invalid switch_step: 2.5; .*integer >= 0"),
        (lambda p: oo.AdamThenSGD(p, switch_step=-1), r"invalid switch_step: -1"),
        (lambda p: oo.AdamThenSGD(p, switch_epoch=True), r"invalid switch_epoch: True"),
        (lambda p: oo.AdamThenSGD(p, switch_step=3, switch_epoch=1), r"one of switch_step"),
        (lambda p: oo.AdamThenSGD(p, sgd_lr=-0.1), r"invalid sgd_lr: -0.1; valid range is \[0"),
        (lambda p: oo.AdamThenSGD(p, sgd_momentum=1.0), r"invalid sgd_momentum: 1.0; .*\[0, 1\)"),
        (lambda p: oo.AdamThenSGD(p, lr=-1.0), r"invalid lr"),
        (lambda p: oo.create("swats", p, momentum=0.9), r"\['momentum'\].*switch_eps"),
    ],
)
def test_invalid_arguments_name_the_argument_and_range(build, match):
    with pytest.raises(OptimlabError, match=match):
        build([torch.zeros(2, requires_grad=True)])


def test_bad_group_value_is_refused_on_add_param_group():
    opt = oo.AdamThenSGD([torch.zeros(2, requires_grad=True)])
    with pytest.raises(OptimlabError, match="switch_step"):
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "switch_step": -3})


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, hp",
    [("adam_then_sgd", {"switch_step": 4}), ("swats", {"switch_eps": 1e-3})],
    ids=["adam_then_sgd", "swats"],
)
def test_fast_path_crosses_the_switch_like_the_eager_one(name, hp):
    """The phase is a branch on the step or on the estimate (a graph break when
    compiled): the compiled run switches where the eager one does and agrees after."""

    def go(fast: bool) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
        params = make_params(dtype=torch.float32)
        opt = oo.create(name, params, lr=0.01, fast=fast, **hp)
        for step in range(40):
            feed_gradients(params, step)
            opt.step()
        return params, opt

    eager, opt = go(False)
    fast, fast_opt = go(True)
    if name == "swats":
        assert opt.phase()[0] == fast_opt.phase()[0] == "sgd"
        assert fast_opt.phase()[1] == pytest.approx(opt.phase()[1], rel=1e-5)
    for x, y in zip(fast, eager):
        assert torch.linalg.vector_norm(x - y) <= 1e-5 * torch.linalg.vector_norm(y)
