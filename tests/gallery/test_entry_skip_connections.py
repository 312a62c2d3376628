"""The verdict rule of the skip-connections entry on fixed numbers, the curvature test it
applies to a surface (exact on quadratics), and one small net's run and surface."""

from __future__ import annotations

import numpy as np
from gallery_helpers import changed

from optimlab.gallery.entries import skip_connections as sc
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context

NUMBERS = {
    "depth": 20, "grid": 15, "seeds": [0, 1, 2],
    "plain": {"train_loss": [0.94, 1.09, 1.07], "nonconvex_share": [0.23, 0.27, 0.45],
              "loss_at_center": [0.9, 1.0, 1.0], "loss_max_on_plane": [160.0, 170.0, 150.0]},
    "residual": {"train_loss": [0.32, 0.17, 0.41], "nonconvex_share": [0.0, 0.0, 0.0],
                 "loss_at_center": [0.3, 0.2, 0.4], "loss_max_on_plane": [150.0, 155.0, 160.0]},
}  # fmt: skip


def test_reproduced_when_the_plain_surface_is_far_less_convex_in_every_seed():
    verdict = sc.rule(NUMBERS)
    assert verdict.status == REPRODUCED
    assert "over 3 seeds (mean ± sd): plain 31.7% ± 11.7%, residual 0.0% ± 0.0%" in (verdict.reason)


def test_not_reproduced_when_the_shares_are_close_or_zero_in_one_seed():
    close = sc.rule(changed(NUMBERS, "residual.nonconvex_share", [0.0, 0.2, 0.0]))
    assert close.status == NOT_REPRODUCED and "seed 1: the plain net's surface (27.0%" in (
        close.reason
    )
    zero = sc.rule(changed(NUMBERS, "plain.nonconvex_share", [0.23, 0.27, 0.0]))
    assert zero.status == NOT_REPRODUCED and "seed 2:" in zero.reason
    assert "seed 0" not in zero.reason


def test_the_table_gives_mean_and_spread():
    headers, rows = sc.table(NUMBERS)
    assert headers[1] == "non-convex share (mean ± sd over 3 seeds)"
    assert rows[0][:3] == ["plain", "31.7% ± 11.7%", "1.03 ± 0.0814"]


def test_the_hessian_ratio_is_exact_on_quadratic_surfaces():
    grid = np.linspace(-1, 1, 11)
    a, b = np.meshgrid(grid, grid)  # z[i, j] at alpha = grid[j], beta = grid[i]
    step = grid[1] - grid[0]
    bowl = sc.hessian_ratio(3 * a**2 + b**2 + a * b, step)
    assert np.allclose(bowl, 0.0)  # convex everywhere
    saddle = sc.hessian_ratio(2 * a**2 - 0.5 * b**2, step)
    # Hessian diag(4, -1): |lambda_min| / lambda_max = 1/4 at every point
    assert np.allclose(saddle, 0.25)
    assert saddle.shape == (9, 9)


def test_a_small_net_trains_checkpoints_and_resumes_to_the_same_surface(tmp_path):
    budget = {"depth": 4, "width": 8, "epochs": 1, "lr": 0.05, "seeds": 2, "grid": 3}
    work = Context(work=str(tmp_path))
    loss, surface = sc.train_and_probe(budget, True, work, 1)
    assert surface.z.shape == (3, 3) and np.isfinite(surface.z).all() and loss > 0
    assert [p.name[:4] for p in tmp_path.iterdir()] == ["run-"]
    again_loss, again = sc.train_and_probe(budget, True, work, 1)
    assert again_loss == loss and np.array_equal(again.z, surface.z)
    other_loss, _ = sc.train_and_probe(budget, True, Context(), 0)
    assert other_loss != loss  # another seed, another run
