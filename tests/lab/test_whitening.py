"""The whitening experiment: conditioning facts and step counts."""

from __future__ import annotations

import numpy as np
import pytest

from optimlab.data.preprocess import create
from optimlab.lab import whitening as we


def test_condition_numbers_match_numpy_and_whitening_gives_one():
    x, _ = we.lecture_features(150, seed=1)
    a = np.column_stack([x.numpy(), np.ones(150)])
    assert we.condition_number(x) == pytest.approx(np.linalg.cond(a.T @ a), rel=1e-6)
    for name in ("pca_whiten", "zca_whiten"):
        z = create(name, eps=0.0).fit(x)(x)
        assert we.condition_number(z) == pytest.approx(1.0, abs=1e-6)
    # Standardized, only the correlation r is left: cond = (1 + |r|) / (1 - |r|).
    r = abs(np.corrcoef(x.numpy().T)[0, 1])
    z = create("standardize").fit(x)(x)
    assert we.condition_number(z) == pytest.approx((1 + r) / (1 - r), rel=1e-6)


def test_gd_needs_fewer_steps_whitened_than_standardized_than_raw():
    rows = {r.representation: r for r in we.run(120, tol=1e-6, max_steps=300)}
    raw, std, white = rows["raw"], rows["standardize"], rows["zca_whiten"]
    assert raw.condition > 1e6 and white.condition == pytest.approx(1.0, abs=1e-6)
    assert white.gd_steps is not None and std.gd_steps is not None
    assert raw.gd_steps is None or white.gd_steps < raw.gd_steps
    assert white.gd_steps < std.gd_steps
    # kappa = 1 and lr = 1/lambda: one step lands on the least-squares solution.
    assert white.gd_steps == 1 and white.momentum_steps == 1
    # GD's gap shrinks by at least (1 - 1/kappa)^2 per step (squared error of the slowest mode).
    bound = np.log(1e-6) / (2 * np.log(1 - 1 / std.condition))
    assert std.gd_steps <= np.ceil(bound)
