"""K-FAC: the Kronecker factors against exact per-example Fisher blocks, the step
against a dense solve with the Kronecker product, the fallback for other layers,
state round trips and bad input (float64)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from fisher_problems import closure_of, seeded, softmax_data
from second_order_problems import resumed_against_straight
from torch import nn

import optimlab.curvature as cv
import optimlab.optim as oo
from optimlab.errors import OptimlabError

TOL = dict(rtol=1e-10, atol=1e-12)


def bar_gradient(layer: nn.Module, loss) -> torch.Tensor:
    """The gradient of ``[W | b]`` (the bias as the last column), row by row."""
    grads = torch.autograd.grad(loss, [layer.weight, layer.bias])
    return torch.cat([grads[0].reshape(grads[0].shape[0], -1), grads[1][:, None]], 1).reshape(-1)


def factors(opt, layer):
    state = opt.state[layer.weight]
    return state["A"], state["G"]


def test_one_example_factors_reproduce_its_fisher_block_for_a_linear_layer():
    """One example at one position: G (x) A is that example's gradient outer product,
    exactly (the empirical Fisher's block; the labels are the observed ones)."""
    x, y = softmax_data(n=1, dim=4, classes=3, seed=1)
    layer = seeded(nn.Linear(4, 3).double(), 2)
    g = bar_gradient(layer, nn.functional.cross_entropy(layer(x), y))
    block = torch.outer(g, g)
    opt = oo.KFAC(layer.parameters(), fisher="empirical")
    opt.step(closure_of(opt, layer, x, y))
    a, gg = factors(opt, layer)
    assert a.shape == (5, 5) and gg.shape == (3, 3)  # the homogeneous coordinate
    torch.testing.assert_close(torch.kron(gg, a), block, **TOL)
    assert float(block.abs().max()) > 1e-2


def test_one_example_factors_of_a_hidden_layer_under_an_inplace_relu():
    """The first layer of Linear -> ReLU(inplace) -> Linear: its G comes from the
    pre-activation's gradient, though the ReLU overwrote the pre-activation."""
    x, y = softmax_data(n=1, dim=4, classes=3, seed=3)
    model = seeded(nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Linear(6, 3)), 4)
    model.double()
    first = model[0]
    g = bar_gradient(first, nn.functional.cross_entropy(model(x), y))
    assert torch.count_nonzero(g) < g.numel()  # some units are off: the ReLU matters
    opt = oo.KFAC(model.parameters(), fisher="empirical")
    opt.step(closure_of(opt, model, x, y))
    a, gg = factors(opt, first)
    torch.testing.assert_close(torch.kron(gg, a), torch.outer(g, g), **TOL)


def conv_patches(x, kernel, padding, stride):
    """Patches by slicing, position by position (an independent unfold)."""
    xp = nn.functional.pad(x, (padding,) * 4)
    rows = []
    size = (xp.shape[-1] - kernel) // stride + 1
    for i in range(size):
        for j in range(size):
            win = xp[0, :, i * stride : i * stride + kernel, j * stride : j * stride + kernel]
            rows.append(torch.cat([win.reshape(-1), torch.ones(1, dtype=x.dtype)]))
    return torch.stack(rows)


@pytest.mark.parametrize("padding, stride", [(0, 1), (1, 1), (1, 2)])
def test_conv_factors_sum_over_positions_in_a_and_average_in_g(padding, stride):
    """KFC: A = sum_t a_t a_t^T (patches with the 1), G = mean_t g_t g_t^T; with one
    position (a 3x3 kernel on a 3x3 image) G (x) A is the example's Fisher block."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64)
    conv = seeded(nn.Conv2d(2, 4, 3, padding=padding, stride=stride).double(), 6)
    model = nn.Sequential(conv, nn.Flatten())
    out = model(x)
    y = torch.randint(0, out.shape[1], (1,), generator=gen)
    grad = bar_gradient(conv, nn.functional.cross_entropy(out, y))
    opt = oo.KFAC(model.parameters(), fisher="empirical")
    opt.step(closure_of(opt, model, x, y))
    a, g = factors(opt, conv)
    assert a.shape == (19, 19) and g.shape == (4, 4)
    patches = conv_patches(x, 3, padding, stride)
    torch.testing.assert_close(a, patches.T @ patches, **TOL)
    if len(patches) == 1:  # one position: the exact block
        torch.testing.assert_close(torch.kron(g, a), torch.outer(grad, grad), **TOL)


def test_conv_output_factor_is_the_mean_over_positions():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 1, 4, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (2,), generator=gen)
    conv = seeded(nn.Conv2d(1, 3, 3, padding="same", padding_mode="reflect").double(), 8)
    head = seeded(nn.Linear(48, 3).double(), 9)
    model = nn.Sequential(conv, nn.Tanh(), nn.Flatten(), head)
    s = conv(x)
    (gs,) = torch.autograd.grad(nn.functional.cross_entropy(head(torch.tanh(s).flatten(1)), y), s)
    rows = 2 * gs.permute(0, 2, 3, 1).reshape(-1, 3)  # N dL/ds, one row per position
    expected_g = rows.T @ rows / rows.shape[0]
    xp = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    patches = torch.cat([conv_patches(xp[i : i + 1], 3, 0, 1) for i in range(2)])
    opt = oo.KFAC(model.parameters(), fisher="empirical")
    opt.step(closure_of(opt, model, x, y))
    a, g = factors(opt, conv)
    torch.testing.assert_close(g, expected_g, **TOL)
    torch.testing.assert_close(a, patches.T @ patches / 2, **TOL)


def test_true_fisher_factors_estimate_the_true_fisher_block():
    """One example repeated M times: A is exact and G, from targets drawn from the
    model's own distribution, estimates F_z; G (x) A against the exact true Fisher
    (optimlab.curvature.fisher) within the sampling error."""
    x1, _ = softmax_data(n=1, dim=3, classes=4, seed=10)
    m = 20_000
    x = x1.expand(m, 3).clone()
    y = torch.zeros(m, dtype=torch.long)  # observed labels: not used by the true Fisher
    layer = seeded(nn.Linear(3, 4).double(), 11)
    exact = cv.fisher(cv.ModelObjective(layer, nn.functional.cross_entropy, x1, y[:1]))
    opt = oo.KFAC(layer.parameters(), fisher="true", seed=3)
    opt.step(closure_of(opt, layer, x, y))
    a, g = factors(opt, layer)
    # the parameter order of cv.fisher is (weight, bias); put the bias last per row
    n_out, n_in = 4, 3
    order = [r * n_in + c if c < n_in else n_out * n_in + r
             for r in range(n_out) for c in range(n_in + 1)]  # fmt: skip
    exact = exact[order][:, order]
    approx = torch.kron(g, a)
    assert float((approx - exact).abs().max()) < 0.05 * float(exact.abs().max())


def damped_kron_step(a, g, grad_bar, damping):
    """The K-FAC direction by a dense solve with the damped Kronecker product."""
    pi = math.sqrt((a.trace() / a.shape[0]) / (g.trace() / g.shape[0]))
    r = math.sqrt(damping)
    big = torch.kron(g + r / pi * torch.eye(g.shape[0], dtype=g.dtype),
                     a + pi * r * torch.eye(a.shape[0], dtype=a.dtype))  # fmt: skip
    return torch.linalg.solve(big, grad_bar)


@pytest.mark.parametrize("n", [2, 10])  # 2 rows: the low-rank product order; 10: dense
def test_the_step_is_the_damped_kronecker_solve(n):
    x, y = softmax_data(n=n, dim=4, classes=3, seed=12)
    layer = seeded(nn.Linear(4, 3).double(), 13)
    grad = bar_gradient(layer, nn.functional.cross_entropy(layer(x), y))
    before = torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], 1).reshape(-1)
    opt = oo.KFAC(layer.parameters(), lr=0.3, damping=0.05, fisher="empirical", kl_clip=None)
    opt.step(closure_of(opt, layer, x, y))
    a, g = factors(opt, layer)
    after = torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], 1).reshape(-1)
    d = damped_kron_step(a, g, grad, 0.05)
    torch.testing.assert_close(after, before - 0.3 * d, **TOL)


def test_kl_clip_scales_the_step_to_the_bound_and_penalties_step_plainly():
    """nu = sqrt(kappa / (lr^2 D.g)) when that is below 1; the gradient of a penalty on
    the weights (not through the layer's outputs) takes a plain step."""
    x, y = softmax_data(n=6, dim=4, classes=3, seed=14)
    layer = seeded(nn.Linear(4, 3).double(), 15)
    c = 0.2

    def loss_fn(out, t):
        return nn.functional.cross_entropy(out, t) + 0.5 * c * (layer.weight**2).sum()

    grad = bar_gradient(layer, nn.functional.cross_entropy(layer(x), y))
    w0 = torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], 1)
    penalty = torch.cat([c * w0[:, :-1], torch.zeros(3, 1, dtype=torch.float64)], 1).reshape(-1)
    lr, kappa = 0.5, 1e-4
    opt = oo.KFAC(layer.parameters(), lr=lr, damping=0.01, fisher="empirical", kl_clip=kappa)
    opt.step(closure_of(opt, layer, x, y, loss_fn))
    a, g = factors(opt, layer)
    d = damped_kron_step(a, g, grad, 0.01)
    nu = math.sqrt(kappa / (lr * lr * float(d @ grad)))
    assert nu < 0.5  # the bound is active
    after = torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], 1).reshape(-1)
    torch.testing.assert_close(after, w0.reshape(-1) - lr * nu * (d + penalty), **TOL)


def test_a_penalty_from_a_second_backward_pass_steps_plainly():
    """A penalty's gradient accumulated into .grad by a second backward call (which may
    change the tensor the first pass handed on) still takes a plain step, the rest the
    preconditioned one."""
    x, y = softmax_data(n=6, dim=4, classes=3, seed=14)
    layer = seeded(nn.Linear(4, 3).double(), 15)
    c = 0.2
    grad = bar_gradient(layer, nn.functional.cross_entropy(layer(x), y))
    w0 = torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], 1)
    penalty = torch.cat([c * w0[:, :-1], torch.zeros(3, 1, dtype=torch.float64)], 1).reshape(-1)
    opt = oo.KFAC(layer.parameters(), lr=0.5, damping=0.01, fisher="empirical", kl_clip=None)

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(layer(x), y)
        loss.backward()
        (0.5 * c * (layer.weight**2).sum()).backward()
        return loss

    opt.step(closure)
    a, g = factors(opt, layer)
    d = damped_kron_step(a, g, grad, 0.01)
    after = torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], 1).reshape(-1)
    torch.testing.assert_close(after, w0.reshape(-1) - 0.5 * (d + penalty), **TOL)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n", [2, 10])  # both product orders
def test_steps_agree_whether_v_is_caught_from_the_pass_or_formed_from_the_rows(bias, n):
    """V as the closure's backward pass computed it (a matrix input) and V = E^T Abar
    (a 3-d input, whose graph the recorder does not take apart) give the same steps,
    with a penalty's gradient in .grad and the kl bound active."""
    x, y = softmax_data(n=n, dim=4, classes=3, seed=30)

    def run(inputs):
        layer = seeded(nn.Linear(4, 3, bias=bias).double(), 31)

        def loss_fn(out, t):
            return (
                nn.functional.cross_entropy(out.reshape(-1, 3), t) + 0.1 * (layer.weight**2).sum()
            )

        opt = oo.KFAC(layer.parameters(), lr=0.5, fisher="empirical", kl_clip=1e-4,
                      cov_interval=2, inv_interval=3)  # fmt: skip
        for _ in range(4):
            opt.step(closure_of(opt, layer, inputs, y, loss_fn))
        return opt, layer

    caught, layer = run(x)
    # which input takes which path: test_capture's param_grads tests
    formed, other = run(x[:, None, :])
    for p, q in zip(layer.parameters(), other.parameters(), strict=True):
        torch.testing.assert_close(p, q, **TOL)
    assert not torch.equal(layer.weight, seeded(nn.Linear(4, 3, bias=bias).double(), 31).weight)


def test_factors_start_as_the_plain_mean_of_the_first_batches():
    x, y = softmax_data(n=8, dim=4, classes=3, seed=16)
    layer = seeded(nn.Linear(4, 3).double(), 17)
    opt = oo.KFAC(layer.parameters(), fisher="empirical", decay=0.95, lr=1e-3, cov_interval=1)
    seen = []
    for part in (slice(0, 4), slice(4, 8)):
        one = oo.KFAC(layer.parameters(), fisher="empirical")  # this batch alone
        snapshot = {k: v.clone() for k, v in layer.state_dict().items()}
        one.step(closure_of(one, layer, x[part], y[part]))
        seen.append(factors(one, layer))
        layer.load_state_dict(snapshot)
        opt.step(closure_of(opt, layer, x[part], y[part]))
    a, g = factors(opt, layer)
    torch.testing.assert_close(a, (seen[0][0] + seen[1][0]) / 2, **TOL)
    torch.testing.assert_close(g, (seen[0][1] + seen[1][1]) / 2, **TOL)
    assert opt.state[layer.weight]["factor_updates"] == 2


def test_other_layers_take_plain_sgd_steps_and_are_named_once():
    x, y = softmax_data(n=8, dim=4, classes=3, seed=18)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3))
    model = seeded(model.double(), 19)
    norm = model[1]
    opt = oo.KFAC(model.parameters(), lr=0.1, kl_clip=None)
    message = r"no Kronecker factors for BatchNorm1d '1' \(a BatchNorm1d.*\(weight, bias\) take"
    with pytest.warns(UserWarning, match=message) as rec:
        for _ in range(3):
            before = norm.weight.detach().clone()
            opt.step(closure_of(opt, model, x, y))
            torch.testing.assert_close(norm.weight.detach(), before - 0.1 * norm.weight.grad,
                                       **TOL)  # fmt: skip
    assert len([w for w in rec if "Kronecker" in str(w.message)]) == 1
    assert "A_inv" in opt.state[model[0].weight] and "A_inv" in opt.state[model[3].weight]
    grouped = nn.Sequential(nn.Conv2d(2, 2, 1, groups=2), nn.Flatten()).double()
    opt = oo.KFAC(grouped.parameters())
    with pytest.warns(UserWarning, match=r"Conv2d '0' \(a Conv2d with groups=2"):
        opt.step(closure_of(opt, grouped, torch.ones(3, 2, 1, 1, dtype=torch.float64),
                            torch.tensor([0, 1, 0])))  # fmt: skip


def test_state_dict_round_trip_continues_identically():
    """Mid-interval (factor updates every 2 steps, inverses every 3): the factors,
    inverses, step count and the draws' generator come back, the steps are identical."""
    x, y = softmax_data(n=16, dim=4, classes=3, seed=20)

    def fresh():
        model = seeded(nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double(), 21)
        params = list(model.parameters())
        opt = oo.KFAC(params, lr=0.2, cov_interval=2, inv_interval=3, seed=7)
        return params, opt, closure_of(opt, model, x, y)

    def forget_generator(opt):
        opt._generator = None  # a new process has none: it must come from the state

    straight, counts, params, opt = resumed_against_straight(fresh, 11, forget_generator)
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in params]), straight)
    assert opt.counts == counts
    state = opt.state[params[0]]
    assert {"A", "G", "A_inv", "G_inv", "factor_updates", "n_iter"} <= set(state)
    assert opt.state["draws"].dtype == torch.uint8
    assert state["n_iter"] == 11 and state["factor_updates"] == 6


def test_bad_input_is_explained():
    x, y = softmax_data(n=4, dim=4, classes=3, seed=22)
    layer = seeded(nn.Linear(4, 3).double(), 23)
    opt = oo.KFAC(layer.parameters())
    with pytest.raises(OptimlabError, match="needs a closure"):
        opt.step()
    with pytest.raises(OptimlabError, match=r"non-finite loss \(inf\)"):
        opt.step(closure_of(opt, layer, x, y, lambda o, t: o.sum() + torch.inf))

    def twice(out, t):
        return nn.functional.cross_entropy(out + layer(x), t)

    with pytest.raises(OptimlabError, match=r"Linear '\(the model\)' was called more than once"):
        opt.step(closure_of(opt, layer, x, y, twice))
    for kw, match in [
        ({"damping": 0.0}, r"invalid damping: 0.0; valid range is \(0, inf\)"),
        ({"fisher": "exact"}, r"invalid fisher: 'exact'; valid: 'true', 'empirical'"),
        ({"decay": 1.0}, r"invalid decay: 1.0; valid range is \[0, 1\)"),
        ({"cov_interval": 0}, r"invalid cov_interval: 0; valid: an integer in \[1, inf\]"),
        ({"inv_interval": 1.5}, r"invalid inv_interval: 1.5"),
        ({"kl_clip": 0.0}, r"invalid kl_clip: 0.0"),
        ({"likelihood": "poisson"}, r"invalid likelihood: 'poisson'"),
    ]:
        with pytest.raises(OptimlabError, match=match):
            oo.KFAC(layer.parameters(), **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain Linear model warns of nothing
        oo.KFAC(layer.parameters()).step(closure_of(opt, layer, x, y))


@pytest.mark.parametrize("inplace", [False, True])
def test_sampled_g_of_a_hidden_layer_estimates_its_true_fisher_factor(inplace):
    """The draws' backward pass reaches a hidden layer's pre-activation (asked for
    directly, or through the weight when an in-place ReLU overwrote it): G estimates
    sum_c p_c g_c g_c^T, g_c the pre-activation's gradient of -log p(c | x)."""
    x1, _ = softmax_data(n=1, dim=3, classes=4, seed=24)
    model = seeded(nn.Sequential(nn.Linear(3, 5), nn.ReLU(inplace=inplace), nn.Linear(5, 4)), 25)
    model.double()
    s = model[0](x1)
    z = model[2](torch.relu(s))
    p = torch.softmax(z, dim=1)[0].detach()
    exact = sum(
        p[c] * torch.outer(g, g)
        for c in range(4)
        for g in torch.autograd.grad(-torch.log_softmax(z, 1)[0, c], s, retain_graph=True)[0]
    )
    m = 20_000
    opt = oo.KFAC(model.parameters(), seed=5)
    opt.step(closure_of(opt, model, x1.expand(m, 3).clone(), torch.zeros(m, dtype=torch.long)))
    _, g = factors(opt, model[0])
    assert float((g - exact).abs().max()) < 0.05 * float(exact.abs().max())
    assert float(exact.abs().max()) > 1e-3


def test_unused_parameters_and_layers_neither_move_nor_warn():
    x, y = softmax_data(n=6, dim=4, classes=3, seed=26)
    model = nn.Sequential(nn.Linear(4, 3)).double()
    model.add_module("spare", nn.Linear(3, 3).double())  # never called
    model.register_parameter("unused", nn.Parameter(torch.ones(2, dtype=torch.float64)))
    spare = [p.detach().clone() for p in model.spare.parameters()]
    opt = oo.KFAC(model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            opt.step(closure_of(opt, model[0], x, y))
    assert all(torch.equal(p, q) for p, q in zip(model.spare.parameters(), spare, strict=True))
    assert torch.equal(model.unused.detach(), torch.ones(2, dtype=torch.float64))
    assert "A_inv" in opt.state[model[0].weight] and model.spare.weight not in opt.state
