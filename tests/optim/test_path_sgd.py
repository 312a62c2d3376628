"""Path-SGD: gamma by the two passes against a brute-force sum over paths, the update
against the paper's rule, invariance of the trajectory to node rescaling (SGD's is
not invariant), unsupported models refused, and training from ``optimlab train``."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

import optimlab.optim as oo
from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.optim.path_sgd import linear_chain, path_scales


def mlp(widths, seed=0, bias=True):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b, bias=bias))
    return nn.Sequential(*layers).double()


def brute_force_gammas(model):
    """gamma of every edge, by listing every path: from an input unit, or from the
    constant-1 unit behind a bias, to an output unit."""
    layers = [m for m in model if isinstance(m, nn.Linear)]
    gamma = {id(p): torch.zeros_like(p) for p in model.parameters()}
    # an edge is (parameter, index, value); a path is a list of edges
    paths = []
    for start in range(len(layers)):
        first = layers[start]
        sources = [("input", i) for i in range(first.in_features)] if start == 0 else []
        if first.bias is not None:
            sources += [("bias", None)]
        for kind, i in sources:
            units = range(first.out_features)
            for chain in itertools.product(
                units, *(range(m.out_features) for m in layers[start + 1 :])
            ):
                v = chain[0]
                if kind == "input":
                    edges = [(first.weight, (v, i))]
                else:
                    edges = [(first.bias, (v,))]
                for layer, (u, w) in zip(layers[start + 1 :], itertools.pairwise(chain)):
                    edges.append((layer.weight, (w, u)))
                paths.append(edges)
    for edges in paths:
        for k, (param, index) in enumerate(edges):
            rest = [p[i] ** 2 for j, (p, i) in enumerate(edges) if j != k]
            gamma[id(param)][index] += torch.stack(rest).prod() if rest else 1.0
    return gamma, len(paths)


def test_gamma_by_two_passes_equals_the_sum_over_paths():
    model = mlp([3, 4, 3, 2], seed=1)
    want, n_paths = brute_force_gammas(model)
    assert n_paths == 3 * 4 * 3 * 2 + 4 * 3 * 2 + 3 * 2 + 2
    got = oo.PathSGD(model.parameters()).attach_model(model).gammas()
    assert set(got) == set(want)
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-12, atol=0)


def test_gamma_without_biases_counts_input_paths_only():
    model = mlp([2, 3, 2], seed=2, bias=False)
    want, n_paths = brute_force_gammas(model)
    assert n_paths == 2 * 3 * 2
    (g1, b1), (g2, b2) = path_scales(linear_chain(model))
    assert b1 is None and b2 is None
    torch.testing.assert_close(g1, want[id(model[0].weight)], rtol=1e-12, atol=0)
    torch.testing.assert_close(g2, want[id(model[2].weight)], rtol=1e-12, atol=0)


def test_step_is_the_papers_update_with_per_group_lr():
    model = mlp([3, 5, 2], seed=3)
    before = [p.detach().clone() for p in model.parameters()]
    want, _ = brute_force_gammas(model)
    first, second = list(model[0].parameters()), list(model[2].parameters())
    opt = oo.PathSGD([{"params": first}, {"params": second, "lr": 0.3}], lr=0.1)
    opt.attach_model(model)
    x = torch.randn(7, 3, dtype=torch.float64)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 1, 0, 1, 0, 0])).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    opt.step()
    for p, p0, g, lr in zip(model.parameters(), before, grads, [0.1, 0.1, 0.3, 0.3]):
        torch.testing.assert_close(p.detach(), p0 - lr * g / want[id(p)], rtol=1e-12, atol=1e-15)


def rescale_(model, factors):
    """Multiply hidden unit j of each hidden layer's incoming weights and bias by a_j
    and its outgoing weights by 1/a_j (the function does not change)."""
    layers = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer, after, a in zip(layers, layers[1:], factors):
            layer.weight.mul_(a[:, None])
            layer.bias.mul_(a)
            after.weight.div_(a[None, :])


def trajectories(name, steps=8, **hp):
    torch.manual_seed(10)
    model = mlp([5, 8, 6, 3], seed=4)
    gen = torch.Generator().manual_seed(5)
    factors = [torch.rand(8, generator=gen, dtype=torch.float64) * 9.9 + 0.1,
               torch.rand(6, generator=gen, dtype=torch.float64) * 9.9 + 0.1]  # fmt: skip
    rescaled = mlp([5, 8, 6, 3], seed=4)
    rescale_(rescaled, factors)
    x = torch.randn(steps, 16, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (steps, 16), generator=gen)
    torch.testing.assert_close(model(x[0]), rescaled(x[0]), rtol=1e-12, atol=1e-12)
    for net in (model, rescaled):
        opt = oo.create(name, net.parameters(), **hp)
        if name == "path_sgd":
            opt.attach_model(net)
        for xb, yb in zip(x, y):
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    rescale_(rescaled, [1.0 / a for a in factors])  # map back
    return model, rescaled


def largest_difference(a, b):
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def test_path_sgd_trajectory_is_invariant_to_node_rescaling_and_sgds_is_not():
    model, mapped = trajectories("path_sgd", lr=0.05)
    moved = largest_difference(model, mlp([5, 8, 6, 3], seed=4))
    assert moved > 1e-3  # the steps did something
    assert largest_difference(model, mapped) < 1e-10
    model, mapped = trajectories("sgd", lr=0.05)
    assert largest_difference(model, mapped) > 1e-3


def test_lecture_toy_sgd_step_depends_on_the_gauge_path_sgd_step_does_not():
    """z = w4 w3 w2 w1 x (lecture 001): (1, 1, 1, 1) and (1, 0.01, 100, 1) are one
    function; one SGD step on (z - y)^2 / 2 from each gives two different functions,
    one Path-SGD step gives the same one."""
    from optimlab.nn.models import deep_linear

    x, y = torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([[3.0]], dtype=torch.float64)

    def after_step(name, init):
        model = deep_linear().double()
        with torch.no_grad():  # in float64: 0.01 * 100 is 1 there
            for w, value in zip(model.weights, init):
                w.fill_(value)
        opt = oo.create(name, model.parameters(), lr=0.01)
        if name == "path_sgd":
            opt.attach_model(model)
        (0.5 * (model(x) - y) ** 2).sum().backward()
        opt.step()
        return float(model(x).detach())

    plain, gauge = (1, 1, 1, 1), (1, 0.01, 100, 1)
    with torch.no_grad():
        assert float(deep_linear(init=plain)(x.float())) == float(
            deep_linear(init=gauge)(x.float())
        )
    sgd = after_step("sgd", plain), after_step("sgd", gauge)
    assert abs(sgd[0] - sgd[1]) > 1.0  # the gauge's gradient of w2 is 100x larger
    path = after_step("path_sgd", plain), after_step("path_sgd", gauge)
    assert path[0] == pytest.approx(path[1], rel=1e-12)
    assert path[0] != pytest.approx(1.0)  # and it moved


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)), "is a Conv2d"),
        (nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)), "is a BatchNorm1d"),
        (nn.Sequential(nn.Linear(4, 3), nn.PReLU(), nn.Linear(3, 2)), "is a PReLU"),
        (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2)), "takes 5 inputs"),
        (nn.Sequential(nn.ReLU()), "at least one Linear"),
    ],
)
def test_unsupported_models_are_refused_with_one_line(model, message):
    opt = oo.PathSGD(list(model.parameters()) or [nn.Parameter(torch.zeros(1))])
    with pytest.raises(OptimlabError, match=message) as err:
        opt.attach_model(model)
    assert "\n" not in str(err.value)


def test_parameters_outside_the_chain_and_a_missing_model_are_refused():
    model = nn.Sequential(nn.Linear(3, 2))
    stray = nn.Parameter(torch.zeros(4))
    with pytest.raises(OptimlabError, match=r"shape \(4,\) is not one of them"):
        oo.PathSGD([*model.parameters(), stray]).attach_model(model)
    opt = oo.PathSGD(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    with pytest.raises(OptimlabError, match="attach_model"):
        opt.step()
    with pytest.raises(OptimlabError, match="invalid lr"):
        oo.PathSGD(model.parameters(), lr=0.0)
    # the run builder passes the model, and says so when an entry point has none
    from optimlab.run.build import make_optimizer

    built, _ = make_optimizer("path_sgd", model.parameters(), model=model)
    assert built.layers is not None
    with pytest.raises(OptimlabError, match="reads the model's layers and none was given"):
        make_optimizer("path_sgd", model.parameters())


def test_trains_digits_mlp_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--problem", "digits_mlp", "--optimizer", "path_sgd", "--epochs", "4"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    final = json.loads((out / "summary.json").read_text())["final"]
    # measured: test accuracy 0.96-0.98 after 4-10 epochs at the default lr 0.01
    assert final["test_accuracy"] > 0.9
    rc = main(["train", "--problem", "deep_linear", "--optimizer", "path_sgd", "--epochs", "1"])
    assert rc == 0  # the lectures' toy is a chain too
    assert main(["train", "--problem", "sparse_logreg", "--optimizer", "path_sgd"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("optimlab: error: path_sgd supports feed-forward chains")
    assert err.endswith("model is a SparseLinear") and "\n" not in err
