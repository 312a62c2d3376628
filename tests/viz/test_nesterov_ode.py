"""NAG-C and its ODE X'' + (3/t) X' + grad f(X) = 0 (Su, Boyd & Candes 2016): SciPy's
solve_ivp against the Bessel-function solution on a quadratic, then NAG-C's iterates
against the solution as the step size shrinks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import j1

from optimlab.errors import OptimlabError
from optimlab.viz import nesterov_ode as no
from optimlab.viz.style import save_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bessel_solution(times: np.ndarray) -> np.ndarray:
    """On f = 1/2 sum l_i x_i^2 the ODE is solved by x0_i * 2 J_1(sqrt(l_i) t) / (sqrt(l_i) t)."""
    z = np.sqrt(np.array(no.SU_CURVATURES))[None, :] * times[:, None]
    safe = np.where(z == 0, 1.0, z)
    return np.where(z == 0, 1.0, 2 * j1(safe) / safe) * np.array(no.SU_START)


def tilted(x: torch.Tensor) -> torch.Tensor:
    """A smooth strongly convex function that is not a quadratic."""
    soft = torch.nn.functional.softplus(x[0] + x[1])
    return torch.log(torch.cosh(x[0] - 0.5)) + 0.05 * x[0] ** 2 + 0.05 * x[1] ** 2 + 0.2 * soft


def test_the_ode_solve_matches_the_closed_form_on_a_quadratic():
    times = np.concatenate([[0.0, 1e-5], np.linspace(0.5, 120.0, 300)])
    ode = no.ode_path(no.su_quadratic, no.SU_START, times)
    np.testing.assert_allclose(ode, bessel_solution(times), rtol=0, atol=1e-8)
    assert ode[:, 0].min() < -0.1  # it overshoots: the damping 3/t fades


@pytest.mark.parametrize("f", [no.su_quadratic, tilted], ids=["quadratic", "tilted"])
def test_nag_c_tracks_the_ode_ever_closer_as_the_step_shrinks(f):
    """The largest deviation over t <= 40 halves when s is quartered: order sqrt(s)."""
    devs = [no.max_deviation(f, (1.0, 1.0), s, 40.0) for s in (0.25, 0.0625, 0.015625)]
    ratios = [devs[0] / devs[1], devs[1] / devs[2]]
    assert all(1.6 < q < 2.4 for q in ratios), (devs, ratios)


def test_iterates_start_on_the_ode_and_are_optimlabs_nag_c():
    run = no.track(no.su_quadratic, no.SU_START, 0.25, 10.0)
    assert len(run.times) == 21 and run.times[-1] == pytest.approx(10.0)
    np.testing.assert_array_equal(run.iterates[0], no.SU_START)
    # the first NAG-C step is a gradient step: x_1 = x_0 - s * grad f(x_0)
    np.testing.assert_allclose(run.iterates[1], (1 - 0.25 * np.array(no.SU_CURVATURES)))


def test_figure_is_written_as_png(tmp_path):
    fig = no.plot_nag_ode(step_sizes=(1.0, 0.25), t_end=60.0)
    out = save_figure(fig, tmp_path / "figs" / "nag_ode.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in out.parent.iterdir()] == ["nag_ode.png"]
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend[0].startswith("NAG-C, s = 1 (max dev") and legend[-1].startswith("ODE")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: no.ode_path(no.su_quadratic, (1.0, 1.0), [-1.0, 2.0]), "invalid times"),
        (lambda: no.nag_c_path(no.su_quadratic, (1.0, 1.0), 0.0, 5), "invalid s"),
        (lambda: no.track(no.su_quadratic, (1.0, 1.0), 0.1, -3.0), "invalid t_end"),
        (lambda: no.plot_nag_ode(step_sizes=()), "invalid step_sizes"),
    ],
)
def test_bad_arguments_are_one_line_errors(call, match):
    with pytest.raises(OptimlabError, match=match):
        call()
