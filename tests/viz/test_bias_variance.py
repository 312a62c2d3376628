"""Bias and variance: polynomial fits against numpy, and GD reaching the ridge solution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optimlab.errors import OptimlabError
from optimlab.viz import bias_variance as bv
from optimlab.viz.style import save_figure


@pytest.fixture(scope="module")
def d() -> bv.PolyData:
    return bv.data()


def test_the_lectures_set_up(d: bv.PolyData) -> None:
    assert len(d.x_train) == 21
    assert d.x_train.abs().max() <= 1.0


@pytest.mark.parametrize("lam", [1e-2, 1.0])
def test_gradient_descent_reaches_the_closed_form_ridge(d: bv.PolyData, lam: float) -> None:
    w_gd, steps = bv.ridge_by_gradient_descent(d.x_train, d.y_train, 14, lam)
    w_cf = bv.ridge_closed_form(d.x_train, d.y_train, 14, lam)
    assert steps < 200_000
    assert float((w_gd - w_cf).norm() / w_cf.norm()) < 1e-6


def test_closed_form_ridge_is_the_augmented_least_squares(d: bv.PolyData) -> None:
    # min 1/2||y - Xw||^2 + lam/2 ||Dw||^2 is least squares on [X; sqrt(lam) D], [y; 0].
    lam, degree = 0.3, 6
    x = np.vander(d.x_train.numpy(), degree + 1, increasing=True)
    pen = np.sqrt(lam) * np.diag([0.0] + [1.0] * degree)
    a = np.vstack([x, pen])
    b = np.concatenate([d.y_train.numpy(), np.zeros(degree + 1)])
    expected = np.linalg.lstsq(a, b, rcond=None)[0]
    np.testing.assert_allclose(bv.ridge_closed_form(d.x_train, d.y_train, degree, lam).numpy(),
                               expected, rtol=1e-8, atol=1e-10)  # fmt: skip


def test_degree_curve_matches_numpy_polyfit(d: bv.PolyData) -> None:
    degrees = [0, 1, 2, 5, 9]
    train, test = bv.degree_curve(d, degrees)
    xs, ys = d.x_train.numpy(), d.y_train.numpy()
    xt, yt = d.x_test.numpy(), d.y_test.numpy()
    for k, tr, te in zip(degrees, train, test, strict=True):
        coef = np.polyfit(xs, ys, k)
        assert tr == pytest.approx(np.mean((np.polyval(coef, xs) - ys) ** 2), rel=1e-6)
        assert te == pytest.approx(np.mean((np.polyval(coef, xt) - yt) ** 2), rel=1e-6)
    # Nested models: the training error cannot rise with the degree.
    assert (np.diff(train) <= 1e-12).all()


def test_ridge_training_error_rises_with_lambda(d: bv.PolyData) -> None:
    train, _ = bv.ridge_curve(d, np.logspace(-6, 2, 9), 14)
    assert (np.diff(train) >= -1e-12).all()


def test_figure_and_bad_input(d: bv.PolyData, tmp_path) -> None:
    path = save_figure(bv.plot(d, degrees=range(6), lambdas=[1e-3, 1.0]), tmp_path / "bv.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OptimlabError, match="lam"):
        bv.ridge_closed_form(d.x_train, d.y_train, 3, -1.0)
    with pytest.raises(OptimlabError, match="degree"):
        bv.features(torch.zeros(3, dtype=torch.float64), -1)
