"""NAG-C and NAG-SC (Su, Boyd & Candes 2016; lecture 003): the iterates are the
lecture's recursion, transcribed in NumPy, and NAG-C meets the paper's O(1/k^2) bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from convex_problems import LeastSquares, Logistic
from streams import feed_gradients, make_params

import optimlab.optim as oo
from optimlab.errors import OptimlabError
from optimlab.schedules import ScheduleAdapter
from optimlab.schedules import create as create_schedule


def lecture_nag(grad, x0: np.ndarray, s: float, steps: int, momentum) -> np.ndarray:
    """Lecture 003 verbatim: y_{k+1} = x_k - s grad f(x_k);
    x_{k+1} = y_{k+1} + mu_k (y_{k+1} - y_k), y_0 = x_0. Returns x_0..x_steps."""
    x, y = x0.copy(), x0.copy()
    xs = [x.copy()]
    for k in range(steps):
        y_next = x - s * grad(x)
        x = y_next + momentum(k) * (y_next - y)
        y = y_next
        xs.append(x.copy())
    return np.array(xs)


def run(opt_factory, loss, x0: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The parameters x_0..x_steps and the gradient steps y_1..y_steps (x_k - lr g_k)."""
    w = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = opt_factory([w])
    lr = opt.param_groups[0]["lr"]
    xs, ys = [x0.copy()], [x0.copy()]
    for _ in range(steps):
        opt.zero_grad()
        loss(w).backward()
        ys.append((w - lr * w.grad).detach().numpy())
        opt.step()
        xs.append(w.detach().numpy().copy())
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize("r", [3.0, 5.0])
def test_nag_c_iterates_are_the_lecture_recursion(r):
    p = LeastSquares.random()
    s, x0 = 1 / p.L, np.ones(p.X.shape[1])
    ours, _ = run(lambda ps: oo.NAGC(ps, lr=s, r=r), p.loss, x0, 400)
    ref = lecture_nag(p.grad, x0, s, 400, lambda k: k / (k + r))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert np.abs(ref[-1] - ref[0]).max() > 1  # it went somewhere


def test_nag_sc_iterates_are_the_lecture_recursion():
    p = LeastSquares.random(decay=1.0)
    eig = np.linalg.eigvalsh(p.X.T @ p.X)
    mu, s, x0 = eig.min(), 1 / eig.max(), np.ones(p.X.shape[1])
    ours, _ = run(lambda ps: oo.NAGSC(ps, lr=s, mu=mu), p.loss, x0, 400)
    m = (1 - np.sqrt(mu * s)) / (1 + np.sqrt(mu * s))
    ref = lecture_nag(p.grad, x0, s, 400, lambda k: m)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    # linear convergence: the last iterate is the minimizer
    np.testing.assert_allclose(ours[-1], p.minimizer, atol=1e-8)


def test_the_registered_schedules_are_the_papers_momenta():
    nag_c = create_schedule("nag_c")
    assert [nag_c(k) for k in range(4)] == [0.0, 0.25, 0.4, 0.5]
    assert create_schedule("nag_c", r=4)(6) == 0.6
    nag_sc = create_schedule("nag_sc", mu=0.01, s=1.0)
    assert nag_sc(0) == nag_sc(1000) == pytest.approx(0.9 / 1.1, rel=1e-15)


@pytest.mark.parametrize(
    "problem", [LeastSquares.random(), Logistic.random()], ids=["least_squares", "logistic"]
)
def test_nag_c_meets_the_papers_bound_at_every_step(problem):
    """Su, Boyd & Candes, Theorem 6: f(y_k) - f* <= 2 ||x_0 - x*||^2 / (s (k+1)^2),
    s = 1/L, for the gradient steps y_k (their x_k); plain GD breaks it."""
    s, x_star = 1 / problem.L, problem.minimizer
    f_star = problem.value(x_star)
    x0 = np.full(len(x_star), 3.0)
    steps = 1500
    _, ys = run(lambda ps: oo.create("nag_c", ps, lr=s), problem.loss, x0, steps)
    k = np.arange(steps + 1)
    bound = 2 * np.sum((x0 - x_star) ** 2) / (s * (k + 1) ** 2)
    gaps = np.array([problem.value(y) - f_star for y in ys])
    assert np.all(gaps <= bound)
    assert gaps[-1] < 1e-3 * gaps[0]
    gd, _ = run(lambda ps: oo.SGD(ps, lr=s), problem.loss, x0, steps)
    assert np.any(np.array([problem.value(x) - f_star for x in gd]) > bound)


def test_nag_sc_is_nesterov_sgd_with_the_registered_momentum():
    """With a constant momentum the buffer lag does not matter: NAG-SC is torch-form
    Nesterov SGD, bit for bit, in every param group (each its own lr and momentum)."""
    a, b = make_params(), make_params()
    mu = 2.0
    nag = oo.NAGSC([{"params": a[:2]}, {"params": a[2:], "lr": 0.02}], lr=0.1, mu=mu)
    momentum = [create_schedule("nag_sc", mu=mu, s=s)(0) for s in (0.1, 0.02)]
    sgd = oo.SGD(
        [{"params": b[:2], "momentum": momentum[0]}, {"params": b[2:], "lr": 0.02}],
        lr=0.1,
        momentum=momentum[1],
        nesterov=True,
    )
    for step in range(30):
        feed_gradients(a, step)
        feed_gradients(b, step)
        nag.step()
        sgd.step()
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_nesterov_sgd_driven_by_the_nag_c_schedule_is_not_nag_c():
    """ScheduleAdapter writes mu_k before update k, and torch's buffer then decays by
    mu_k; NAG-C decays it by mu_{k-1}. The third update already differs."""
    a, b = make_params(), make_params()
    nag = oo.NAGC(a, lr=0.05)
    sgd = oo.SGD(b, lr=0.05, momentum=0.5, nesterov=True)
    adapter = ScheduleAdapter(sgd, create_schedule("nag_c"), key="momentum")
    for step in range(2):
        feed_gradients(a, step)
        feed_gradients(b, step)
        nag.step()
        sgd.step()
        adapter.step()
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    feed_gradients(a, 2)
    feed_gradients(b, 2)
    nag.step()
    sgd.step()
    assert not torch.equal(a[0], b[0])


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda p: oo.NAGC(p, lr=-0.1), r"invalid lr: -0.1; valid range is \[0, inf\]"),
        (lambda p: oo.NAGC(p, r=0.0), r"invalid r: 0.0; valid range is \(0, inf\]"),
        (lambda p: oo.NAGC(p, weight_decay=-1.0), r"invalid weight_decay"),
        (lambda p: oo.NAGSC(p, mu=0.0), r"invalid mu: 0.0; valid range is \(0, inf\]"),
        (lambda p: oo.NAGSC(p, lr=0.1, mu=20.0), r"invalid mu: 20.0; .*mu \* lr <= 1"),
        (lambda p: oo.create("nag_c", p, momentum=0.9), r"\['momentum'\].*valid: .*lr, .*\br\b"),
    ],
)
def test_invalid_arguments_name_the_argument_and_range(build, match):
    with pytest.raises(OptimlabError, match=match):
        build([torch.zeros(2, requires_grad=True)])


def test_bad_group_values_are_refused_on_add_param_group():
    opt = oo.NAGSC([torch.zeros(2, requires_grad=True)], lr=0.01, mu=1.0)
    with pytest.raises(OptimlabError, match="mu <= 1/lr = 0.5"):
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": 2.0})


@pytest.mark.parametrize("name", ["nag_c", "nag_sc"])
def test_momentum_never_recompiles_the_fast_path(name):
    """NAG-C's momentum changes every step: computed from the step tensor inside the
    graph, not a constant of it, so a compiled run matches the eager one without
    compiling again."""
    torch._dynamo.reset()

    def go(fast: bool) -> list[torch.Tensor]:
        params = make_params()
        opt = oo.create(name, params, lr=0.05, fast=fast)
        for step in range(8):
            feed_gradients(params, step)
            opt.step()
        return params

    eager = go(False)
    with torch._dynamo.config.patch(error_on_recompile=True):
        fast = go(True)
    for x, y in zip(fast, eager):
        torch.testing.assert_close(x, y, rtol=1e-14, atol=1e-14)
