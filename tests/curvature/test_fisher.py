"""Gauss-Newton and Fisher matrices: against Python loops over examples and classes,
and against the Hessian where theory says they are equal."""

from __future__ import annotations

import pytest
import torch
from curvature_models import autograd_hessian, linear_objective, mlp_objective

import optimlab.curvature as cv
from optimlab.errors import OptimlabError
from optimlab.problems import get_loss

TOL = dict(rtol=1e-10, atol=1e-12)


def loop_example_gradients(obj):
    """Per-example gradients by plain autograd, one example at a time."""
    model = obj.model
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(obj.x)):
        loss = obj.loss_fn(model(obj.x[i : i + 1]), obj.y[i : i + 1])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                               for g, p in zip(grads, params)]))  # fmt: skip
    return rows


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_empirical_fisher_is_the_mean_of_per_example_outer_products(loss):
    obj = mlp_objective(loss)
    rows = loop_example_gradients(obj)
    expected = sum(torch.outer(g, g) for g in rows) / len(rows)
    torch.testing.assert_close(cv.empirical_fisher(obj), expected, **TOL)
    torch.testing.assert_close(cv.per_example_gradients(obj), torch.stack(rows), **TOL)
    v = torch.randn(29, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    torch.testing.assert_close(cv.empirical_fisher_vector_product(obj, v), expected @ v, **TOL)
    matvec, n = cv.operator(obj, "empirical_fisher")
    torch.testing.assert_close(matvec(v), expected @ v, **TOL)
    # the mean of the per-example gradients is the batch gradient
    batch = torch.autograd.grad(obj.loss(dict(obj.model.named_parameters())),
                                list(obj.model.parameters()), allow_unused=True)  # fmt: skip
    assert torch.count_nonzero(expected[:3]) == 0  # the unused parameter
    torch.testing.assert_close(torch.stack(rows).mean(0)[3:],
                               torch.cat([g.reshape(-1) for g in batch[1:]]), **TOL)  # fmt: skip


@pytest.mark.parametrize("loss", ["cross_entropy", "logistic", "mse"])
def test_true_fisher_of_a_linear_model_is_the_hessian(loss):
    """Canonical links: for softmax / logistic / least-squares regression F = H."""
    obj = linear_objective(loss)
    h = autograd_hessian(obj)
    f = cv.fisher(obj)
    torch.testing.assert_close(f, h, **TOL)
    torch.testing.assert_close(cv.ggn(obj), h, **TOL)
    assert torch.linalg.matrix_rank(f) > 1  # not a degenerate agreement


def test_fisher_products_and_gauss_newton_agree_with_the_enumerated_fisher_on_an_mlp():
    obj = mlp_objective("cross_entropy")
    f = cv.fisher(obj)  # sums over examples and classes of score outer products
    h = autograd_hessian(obj)
    # on a nonlinear model the Fisher is not the Hessian (the model's curvature is missing)
    assert (f - h).abs().max() > 1e-3
    assert torch.count_nonzero(f[:3]) == 0 and torch.count_nonzero(f[:, :3]) == 0
    assert torch.linalg.eigvalsh(f).min() > -1e-12  # positive semi-definite
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        v = torch.randn(29, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(cv.fisher_vector_product(obj, v), f @ v, **TOL)
        torch.testing.assert_close(cv.ggn_vector_product(obj, v), f @ v, **TOL)
        matvec, _ = cv.operator(obj, "fisher")
        torch.testing.assert_close(matvec(v), f @ v, **TOL)
        matvec, _ = cv.operator(obj, "ggn")
        torch.testing.assert_close(matvec(v), f @ v, **TOL)
    torch.testing.assert_close(cv.ggn(obj), f, **TOL)


def test_gaussian_fisher_on_an_mlp_matches_its_products():
    obj = mlp_objective("mse")
    f = cv.fisher(obj, likelihood="mse")
    v = torch.randn(29, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    torch.testing.assert_close(cv.fisher_vector_product(obj, v, likelihood="mse"), f @ v, **TOL)
    torch.testing.assert_close(cv.ggn_vector_product(obj, v), f @ v, **TOL)
    matvec, n = cv.ggn_operator(obj)  # one operator, several products at its point
    assert n == 29
    for w in (v, 2 * v, torch.ones(29, dtype=torch.float64)):
        torch.testing.assert_close(matvec(w), f @ w, **TOL)
    assert (f - autograd_hessian(obj)).abs().max() > 1e-3


def test_likelihood_names_and_bad_input():
    assert cv.likelihood_of("ce") == "cross_entropy"
    assert cv.likelihood_of(get_loss("mse")) == "mse"
    with pytest.raises(OptimlabError, match="'binary_hinge' is not a negative log-likelihood"):
        cv.likelihood_of("binary_hinge")
    with pytest.raises(OptimlabError, match="unknown loss 'hinj'"):
        cv.likelihood_of("hinj")
    obj = mlp_objective("cross_entropy")
    assert cv.likelihood_of(obj.loss_fn) == "cross_entropy"  # torch's own function
    # a loss of its own (a wrapper, say) cannot be recognized: say how to name it
    wrapped = cv.ModelObjective(obj.model, lambda out, y: obj.loss_fn(out, y), obj.x, obj.y)
    with pytest.raises(OptimlabError, match="pass likelihood="):
        cv.fisher(wrapped)
    torch.testing.assert_close(cv.fisher(wrapped, likelihood="ce"), cv.fisher(obj))
    with pytest.raises(OptimlabError, match="x has 12 examples and y has 11"):
        cv.ModelObjective(obj.model, obj.loss_fn, obj.x, obj.y[:11])
