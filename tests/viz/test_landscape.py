"""Loss landscapes: the surface against direct evaluation, filter normalization, cache."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from optimlab.cli import main
from optimlab.problems import build
from optimlab.viz import landscape as ls


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    model(torch.randn(32, 5))  # give BN running statistics that differ from a batch's
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    return model, nn.functional.cross_entropy, x, y


def test_origin_is_the_models_loss_and_weights_are_restored() -> None:
    model, loss_fn, x, y = _setup()
    before = [p.clone() for p in model.parameters()]
    dirs = [ls.random_direction(model, s) for s in (1, 2)]
    grid = np.array([-0.5, 0.0, 0.5])
    surface = ls.evaluate_plane(model, loss_fn, x, y, dirs, grid, grid, batch_size=7)
    assert model.training  # the mode is restored
    model.eval()
    with torch.no_grad():
        direct = float(loss_fn(model(x), y))
    assert surface.z[1, 1] == pytest.approx(direct, rel=1e-6)
    for p, q in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_a_slice_equals_direct_evaluation() -> None:
    model, loss_fn, x, y = _setup()
    model.train()
    d = ls.random_direction(model, 3)
    alphas = np.array([-1.0, 0.3, 0.8])
    surface = ls.evaluate_plane(model, loss_fn, x, y, [d], alphas)
    assert model.training  # restored
    for a, value in zip(alphas, surface.z, strict=True):
        moved = copy.deepcopy(model).eval()
        with torch.no_grad():
            for p, di in zip(moved.parameters(), d, strict=True):
                p.add_(float(a) * di)
            assert value == pytest.approx(float(loss_fn(moved(x), y)), rel=1e-6)


def test_filter_normalization() -> None:
    model, *_ = _setup()
    d = ls.random_direction(model, 4)
    for di, (name, w) in zip(d, model.named_parameters(), strict=True):
        if w.dim() <= 1:
            assert torch.count_nonzero(di) == 0, name  # biases and BN zero by default
        else:
            torch.testing.assert_close(di.norm(dim=1), w.detach().norm(dim=1))
    d_all = ls.random_direction(model, 4, ignore_1d=False)
    bias = dict(zip([n for n, _ in model.named_parameters()], d_all, strict=True))["0.bias"]
    assert float(bias.norm()) == pytest.approx(float(model[0].bias.detach().norm()), rel=1e-6)


def test_interpolation_ends_at_both_models() -> None:
    model, loss_fn, x, y = _setup()
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(0.5)
    s = ls.interpolate(model, loss_fn, x, y, ls.weights(model), ls.weights(other),
                       np.array([0.0, 1.0]))  # fmt: skip
    for value, m in zip(s.z, (model, other), strict=True):
        m.eval()
        with torch.no_grad():
            assert value == pytest.approx(float(loss_fn(m(x), y)), rel=1e-6)


def test_pca_directions_recover_a_planar_path() -> None:
    # A path that lies in a plane: its top two components explain all the variance.
    gen = torch.Generator().manual_seed(0)
    u, v = torch.randn(2, 30, generator=gen, dtype=torch.float64)
    path = [[(a * u + b * v)[:20].view(4, 5), (a * u + b * v)[20:]]
            for a, b in [(3, 1), (2, 2), (1, 0.5), (0.5, -0.3), (0, 0)]]  # fmt: skip
    _, ratio, coords = ls.pca_directions(path)
    assert ratio.sum() == pytest.approx(1.0, abs=1e-10)
    # The projections keep the pairwise distances of the path points.
    flat = np.stack([torch.cat([t.reshape(-1) for t in p]).numpy() for p in path])
    d_true = np.linalg.norm(flat[:, None] - flat[None], axis=-1)
    d_proj = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.testing.assert_allclose(d_proj, d_true, atol=1e-9)


def test_cli_writes_the_figure_and_replots_from_the_cache(tmp_path, capsys) -> None:
    problem = build("linreg", seed=0)
    ckpt = tmp_path / "last.pt"
    torch.save({"model": problem.model.state_dict(), "config": {"problem": "linreg"}}, ckpt)
    out = tmp_path / "land.png"
    argv = ["landscape", "--checkpoint", str(ckpt), "--resolution", "3", "--subset", "50",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cached = ls.Surface.load(out.with_suffix(".npz"))
    assert cached.z.shape == (3, 3)
    capsys.readouterr()
    assert main(argv) == 0
    assert "replotting" in capsys.readouterr().out
    assert main([*argv[:-2], "--dims", "3", "--out", str(out)]) == 2
    capsys.readouterr()
    other = [*argv[:-2], "--problem", "logreg_digits", "--recompute", "--out", str(out)]
    assert main(other) == 2  # the checkpoint holds linreg's weights
    err = capsys.readouterr().err
    assert "holds the weights of another model than 'logreg_digits'" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("include_1d", [False, True])
def test_factored_first_layer_matches_direct_evaluation(include_1d) -> None:
    # x (W0 + a D1 + b D2)^T is summed in another order than the direct product, so the
    # two differ only by float32 rounding: a few ulps of the logits, ~1e-6 relative.
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(50, 3, 4), torch.randint(0, 4, (50,))
    loss_fn = nn.functional.cross_entropy
    dirs = [ls.random_direction(model, s, ignore_1d=not include_1d) for s in (5, 6)]
    grid = np.linspace(-1.0, 1.0, 4)
    fast = ls.evaluate_plane(model, loss_fn, x, y, dirs, grid, grid, batch_size=16)
    slow = ls.evaluate_plane(
        model, loss_fn, x, y, dirs, grid, grid, batch_size=16, factor_first_layer=False
    )
    np.testing.assert_allclose(fast.z, slow.z, rtol=1e-5)
    for i, b in enumerate(grid):  # and against a model moved by hand
        moved = copy.deepcopy(model).eval()
        with torch.no_grad():
            for p, d1, d2 in zip(moved.parameters(), *dirs, strict=True):
                p.add_(float(grid[2]) * d1 + float(b) * d2)
            assert fast.z[i, 2] == pytest.approx(float(loss_fn(moved(x), y)), rel=1e-5)
