"""Momentum dynamics: measured rates against Goh's closed forms and the 2x2 matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optimlab.errors import OptimlabError
from optimlab.optim import SGD
from optimlab.viz import momentum_dynamics as md
from optimlab.viz.style import save_figure


@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_measured_rate_at_the_optimum_is_the_optimal_rate(kappa: float) -> None:
    lr, beta, _ = md.optimal_parameters(1.0, kappa)
    closed = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    assert md.measured_rate([1.0, kappa], lr, beta) == pytest.approx(closed, rel=0.02)


def test_reference_numbers_for_kappa_100() -> None:
    lr, beta, rate = md.optimal_parameters(1.0, 100.0)
    assert beta == pytest.approx(0.669, abs=5e-4)
    assert rate == pytest.approx(0.818, abs=5e-4)
    # Plain GD at its best rate 2/(l1+ln) contracts by (kappa-1)/(kappa+1) = 0.980.
    assert md.measured_rate([1.0, 100.0], 2 / 101, 0.0) == pytest.approx(99 / 101, rel=1e-3)


def test_rate_map_agrees_with_the_spectral_radius_and_the_boundary() -> None:
    rm = md.rate_map(1.0, 50.0, n_lr=16, n_beta=12, steps=400)
    l1, ln = rm.eigenvalues
    checked = 0
    for i, beta in enumerate(rm.betas):
        for j, lr in enumerate(rm.lrs):
            margin = lr * ln / (2 + 2 * beta)
            if 0.95 < margin < 1.05:
                continue  # too close to the boundary to settle in 400 steps
            if margin >= 1.05:
                assert rm.rates[i, j] > 1.0
                continue
            # Complex roots make the norm ratio wobble with the phase; check real ones.
            if all((1 + beta - lr * l) ** 2 >= 4 * beta + 1e-3 for l in (l1, ln)):
                exact = max(md.spectral_radius(lr * l, beta) for l in (l1, ln))
                assert rm.rates[i, j] == pytest.approx(exact, rel=0.02)
                checked += 1
    assert checked >= 10


@pytest.mark.parametrize("name", md.REGIMES)
def test_regime_examples_behave_as_classified(name: str) -> None:
    lr_l, beta = md.REGIME_EXAMPLES[name]
    assert md.regime(lr_l, beta) == name
    w = md.direction_path(lr_l, beta, 80)
    signs = np.sign(w[1:])
    flips = int((signs[1:] != signs[:-1]).sum())
    if name == "monotonic":
        assert flips == 0 and (np.diff(np.abs(w)) < 0).all()
    elif name == "oscillation":
        assert flips >= 70  # the sign changes (almost) every step
    elif name == "ripples":
        assert 2 <= flips <= 20 and abs(w[-1]) < 1
    elif name == "one_step":
        assert w[0] == 1 and not w[1:].any()  # exactly 0 after one step, and stays there
    else:
        assert abs(w[-1]) > 1e3


def test_the_lectures_five_regimes_in_order() -> None:
    assert md.REGIMES == ("ripples", "monotonic", "one_step", "oscillation", "divergence")
    assert md.regime(1.0, 0.0) == "one_step"
    assert md.regime(1.0, 1e-3) != "one_step" and md.regime(1.0 + 1e-9, 0.0) != "one_step"


def test_one_step_convergence_kills_one_eigen_direction() -> None:
    """lr = 1/l_i, beta = 0: the error along eigenvector i is 0 after one step, exactly,
    while the others are still there."""
    eig = [0.5, 2.0, 8.0]
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = SGD([w], lr=1 / 2.0)
    (0.5 * (torch.tensor(eig, dtype=torch.float64) * w * w).sum()).backward()
    opt.step()
    assert w[1].item() == 0.0 and w[0].item() == 0.75 and w[2].item() == -3.0


@pytest.mark.parametrize("beta", [0.04, 0.25, 0.5, 0.81, 0.97])
def test_ripples_contract_by_sqrt_beta_whatever_the_learning_rate(beta: float) -> None:
    """In the complex-root regime the spectral radius of the 2x2 matrix is sqrt(beta)
    (not the slide's 2 sqrt(beta)), and SGD's measured rate agrees."""
    lo, hi = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2  # complex for lr l inside
    for lr_l in np.linspace(lo, hi, 9)[1:-1]:
        assert md.regime(lr_l, beta) == "ripples"
        radius = np.abs(np.linalg.eigvals(md.iteration_matrix(lr_l, beta))).max()
        assert radius == pytest.approx(md.ripple_rate(beta), rel=1e-12)
        assert md.spectral_radius(lr_l, beta) == pytest.approx(math.sqrt(beta), rel=1e-12)
    # long enough to average the phase out, short enough not to underflow
    steps = int(min(2000, 250 / -math.log10(math.sqrt(beta))))
    measured = md.measured_rate([1.0], (lo + hi) / 2, beta, steps=steps)
    assert measured == pytest.approx(math.sqrt(beta), rel=0.01)
    if beta > 0.25:
        assert measured < 1 < 2 * math.sqrt(beta)  # the slide's factor is no contraction


def test_figures_are_png(tmp_path) -> None:
    rm = md.rate_map(n_lr=6, n_beta=5, steps=40)
    for fig, stem in ((md.plot_rate_map(rm), "map"), (md.plot_regimes(20), "regimes")):
        path = save_figure(fig, tmp_path / f"{stem}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input() -> None:
    with pytest.raises(OptimlabError, match="beta"):
        md.measured_rate([1.0, 2.0], 0.1, 1.0)
    with pytest.raises(OptimlabError, match="l_max"):
        md.optimal_parameters(2.0, 1.0)
