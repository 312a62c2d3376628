"""2-D test functions: known minima, values and gradients; the point model."""

from __future__ import annotations

import pytest
import torch

from optimlab.problems import FUNCTIONS, PointModel


def _grad_and_hessian(fn, point):
    xy = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    value = fn(xy)
    (grad,) = torch.autograd.grad(value, xy, create_graph=True)
    hessian = torch.stack([torch.autograd.grad(g, xy, retain_graph=True)[0] for g in grad])
    return value.detach(), grad.detach(), hessian.detach()


@pytest.mark.parametrize("fn", list(FUNCTIONS), ids=lambda f: f.name)
def test_known_minima_are_stationary_with_the_known_value(fn):
    for point in fn.minima:
        value, grad, hessian = _grad_and_hessian(fn, point)
        assert value.item() == pytest.approx(fn.min_value, abs=1e-10)
        assert grad.norm().item() < 1e-8
        assert torch.linalg.eigvalsh(hessian).min().item() > 0  # a strict local minimum
    # The customary start is not already a stationary point.
    _, grad, _ = _grad_and_hessian(fn, fn.start)
    assert grad.norm().item() > 1e-3


def test_catalogue_values():
    # Exact facts: rosenbrock(1, 1) = 0, beale(3, 0.5) = 0, four himmelblau minima.
    assert FUNCTIONS.get("rosenbrock").minima == ((1.0, 1.0),)
    assert FUNCTIONS.get("beale").minima == ((3.0, 0.5),)
    assert len(FUNCTIONS.get("himmelblau").minima) == 4
    for name in ("saddle",):
        assert FUNCTIONS.get(name).minima == () and FUNCTIONS.get(name).min_value is None


def test_saddle_point_is_a_saddle():
    fn = FUNCTIONS.get("saddle")
    (point,) = fn.saddles
    value, grad, hessian = _grad_and_hessian(fn, point)
    assert value.item() == 0 and grad.norm().item() == 0
    eig = torch.linalg.eigvalsh(hessian)
    assert eig.min().item() == pytest.approx(-2) and eig.max().item() == pytest.approx(2)


def test_ravine_condition_number_is_100():
    _, _, hessian = _grad_and_hessian(FUNCTIONS.get("ravine"), (0.3, -0.2))
    eig = torch.linalg.eigvalsh(hessian)
    assert (eig.max() / eig.min()).item() == pytest.approx(100)


def test_point_model_and_grid():
    fn = FUNCTIONS.get("rosenbrock")
    model = PointModel(fn)
    assert model.point.tolist() == pytest.approx(list(fn.start))
    value = model(torch.zeros(7, 3))  # the "data" is ignored
    x, y = fn.start
    assert value.item() == pytest.approx((1 - x) ** 2 + 100 * (y - x**2) ** 2)
    assert model(None).item() == value.item()
    gx, gy, z = fn.grid(50)
    assert gx.shape == gy.shape == z.shape == (50, 50)
    assert z.min() >= 0
