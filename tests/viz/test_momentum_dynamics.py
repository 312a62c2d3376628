"""Momentum dynamics: measured rates against Goh's closed forms and the 2x2 matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimlab.errors import OptimlabError
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
    else:
        assert abs(w[-1]) > 1e3


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
