"""Every registered problem builds and trains one step; problem-specific facts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from optimlab.data import DatasetNotFound
from optimlab.errors import OptimlabError
from optimlab.problems import PROBLEMS, available, build
from optimlab.problems.losses import cross_entropy
from optimlab.problems.problem import l2_penalty, with_penalty
from optimlab.problems.quadratic import NOISE_STD


def _build(name: str, **kwargs):
    try:
        return build(name, **kwargs)
    except DatasetNotFound as err:
        pytest.skip(f"{name}: dataset files not present ({str(err)[:60]}...)")


@pytest.mark.parametrize("name", available())
def test_every_problem_builds_and_backpropagates(name):
    problem = _build(name)
    record = PROBLEMS.get(name)
    assert problem.name == name and problem.task == record.task
    assert problem.batch_size >= 1 and problem.epochs == record.epochs
    problem.model.train()
    if problem.splits is None:
        loss = problem.loss_fn(problem.model(None), None)
    else:
        xb, yb = next(iter(problem.loader()))
        assert len(xb) == min(problem.batch_size, len(problem.splits.train))
        out = problem.model(xb)
        loss = problem.loss_fn(out, yb)
        for metric in problem.metrics.values():
            assert math.isfinite(float(metric(out, yb)))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in problem.model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_initialization_is_a_function_of_the_seed():
    a, b, c = build("digits_mlp", seed=3), build("digits_mlp", seed=3), build("digits_mlp", seed=4)
    for (_, pa), (_, pb), (_, _pc) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), c.model.state_dict().items()
    ):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.model[1].weight, c.model[1].weight)
    assert torch.equal(a.splits.val.y, b.splits.val.y)


def test_build_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build("digits_mlp", seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_options_are_checked():
    with pytest.raises(OptimlabError, match="unknown option.*'digits_mlp'.*hidden"):
        build("digits_mlp", hiden=(3,))
    with pytest.raises(OptimlabError, match="invalid loss 'mse'.*logistic"):
        build("wilson_separable", loss="mse")
    with pytest.raises(OptimlabError, match="unknown problem 'mnist_resnet'"):
        build("mnist_resnet")
    with pytest.raises(OptimlabError, match="invalid seed"):
        build("rosenbrock", seed=-2)
    problem = build("digits_mlp", hidden=(16,), dropout=0.1)
    assert sum(isinstance(m, nn.Dropout) for m in problem.model.modules()) == 1


def test_function_problems_have_no_data():
    problem = build("himmelblau", start=(1.0, -1.0))
    assert problem.splits is None and problem.function.name == "himmelblau"
    expected = (1 + -1 - 11) ** 2 + (1 + 1 - 7) ** 2
    assert problem.loss_fn(problem.model(None), None).item() == pytest.approx(expected)
    with pytest.raises(OptimlabError, match="pure function"):
        problem.loader()


def test_quadratic_deep_spectrum_and_noise():
    problem = build("quadratic_deep")
    q = problem.model.q.double()
    torch.testing.assert_close(q, q.T)
    eig = torch.linalg.eigvalsh(q)
    assert ((eig > 0) & (eig < 1)).sum() == 90
    assert ((eig > 30) & (eig < 60)).sum() == 10
    x = problem.splits.train.x
    assert len(x) == 1000 and x.shape[1] == 100
    assert x.double().std().item() == pytest.approx(NOISE_STD, rel=0.02)
    theta = problem.model.theta.detach().double()
    assert torch.equal(theta, torch.ones(100, dtype=torch.float64))  # DeepOBS start
    xb = x[:5].double()
    per_example = torch.stack([0.5 * (theta - xi) @ q @ (theta - xi) for xi in xb])
    torch.testing.assert_close(problem.model(x[:5]).double(), per_example, rtol=1e-4, atol=1e-4)
    assert torch.equal(build("quadratic_deep", seed=5).model.q, problem.model.q)  # one instance


def test_digits_mlp_reaches_95_percent_with_adam():
    problem = build("digits_mlp", seed=0)
    optimizer = torch.optim.Adam(problem.model.parameters(), lr=problem.lr_hints["adam"])
    loader = problem.loader()
    for epoch in range(problem.epochs):
        problem.model.train()
        for xb, yb in loader.epoch(epoch):
            optimizer.zero_grad()
            problem.loss_fn(problem.model(xb), yb).backward()
            optimizer.step()
    problem.model.eval()
    with torch.no_grad():
        val = problem.metrics["accuracy"](problem.model(problem.splits.val.x), problem.splits.val.y)
    assert val.item() >= 0.95


def _train_full_batch(problem, optimizer_cls, lr):
    optimizer = optimizer_cls(problem.model.parameters(), lr=lr)
    train = problem.splits.train
    for _ in range(problem.epochs):
        optimizer.zero_grad()
        problem.loss_fn(problem.model(train.x), train.y).backward()
        optimizer.step()
    with torch.no_grad():
        out = problem.model(problem.splits.test.x)
    return problem.metrics["accuracy"](out, problem.splits.test.y).item()


@pytest.mark.parametrize("loss", ["logistic", "binary_hinge", "binary_squared"])
def test_wilson_gd_generalizes_adaptive_methods_do_not(loss):
    problem = build("wilson_separable", loss=loss)
    assert problem.batch_size == len(problem.splits.train)  # full batch, as the argument needs
    assert _train_full_batch(problem, torch.optim.SGD, problem.lr_hints["sgd"]) == 1.0
    # Adaptive methods end near w ~ sign(X^T y) and give every new point the training
    # majority's label (stratified splits keep the pool's majority in training).
    majority = int(problem.splits.train.y.float().mean() > 0.5)
    majority_share = (problem.splits.test.y == majority).float().mean().item()
    for cls in (torch.optim.Adam, torch.optim.Adagrad, torch.optim.RMSprop):
        problem = build("wilson_separable", loss=loss)
        accuracy = _train_full_batch(problem, cls, problem.lr_hints["adam"])
        assert accuracy == pytest.approx(majority_share)


def test_l2_penalty_only_in_training_mode():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    loss = with_penalty(model, cross_entropy, l2_penalty(model, 0.002))
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    weights = model[0].weight.pow(2).sum() + model[2].weight.pow(2).sum()  # no biases
    model.train()
    trained = loss(model(x), y)
    model.eval()
    evaluated = loss(model(x), y)
    torch.testing.assert_close(trained - evaluated, 0.5 * 0.002 * weights)
    torch.testing.assert_close(evaluated, cross_entropy(model(x), y))


def test_cifar10_3c3d_carries_deepobs_l2():
    problem = _build("cifar10_3c3d")
    assert problem.penalty is not None
    weights = sum(p.pow(2).sum() for n, p in problem.model.named_parameters() if "bias" not in n)
    torch.testing.assert_close(problem.penalty(), 0.5 * 0.002 * weights)


def test_cli_lists_problems(capsys):
    from optimlab.cli import main

    assert main(["list", "problems"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in available())
