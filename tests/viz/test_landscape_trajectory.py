"""``optimlab landscape --trajectory``: the PCA plane of a run's path (Li et al. 2018, s. 7)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from optimlab.cli import main
from optimlab.cli.landscape import epoch_checkpoints
from optimlab.errors import OptimlabError
from optimlab.problems import build
from optimlab.viz import landscape as ls

EPOCHS = 5


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("traj") / "run"
    argv = ["train", "--problem", "linreg", "--optimizer", "sgd", "--lr", "0.02",
            "--epochs", str(EPOCHS), "--keep-epochs", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    return out


def _flat_path(run_dir) -> np.ndarray:
    files = [*epoch_checkpoints(run_dir), run_dir / "checkpoints" / "last.pt"]
    rows = []
    for f in files:
        state = torch.load(f, weights_only=True)
        state = state.get("model", state)
        rows.append(np.concatenate([state[k].double().reshape(-1).numpy()
                                    for k in ("weight", "bias")]))  # fmt: skip
    return np.stack(rows)


def test_pca_coordinates_match_numpy_svd(run_dir) -> None:
    flat = _flat_path(run_dir)
    assert len(flat) == EPOCHS + 2  # the start, each epoch, the final model
    problem = build("linreg", seed=0)
    assert [p.numel() for p in problem.model.parameters()] == [10, 1]  # weight, bias order
    path = [[torch.from_numpy(r[:10]).view(1, 10).float(), torch.from_numpy(r[10:]).float()]
            for r in flat]  # fmt: skip
    dirs, ratio, coords = ls.pca_directions(path)
    assert ratio.shape == (2,) and np.all(ratio >= 0) and ratio.sum() <= 1 + 1e-12
    offsets = flat[:-1] - flat[-1]
    _, s, vt = np.linalg.svd(offsets, full_matrices=False)
    np.testing.assert_allclose(ratio, (s**2 / (s**2).sum())[:2], rtol=1e-6)
    expected = offsets @ vt[:2].T
    for j in range(2):  # a principal direction is defined up to its sign
        sign = np.sign(expected[:, j] @ coords[:-1, j])
        np.testing.assert_allclose(coords[:-1, j], sign * expected[:, j], atol=1e-5)
    np.testing.assert_allclose(coords[-1], 0.0)
    d = np.concatenate([t.reshape(-1).double().numpy() for t in dirs[0]])
    assert np.linalg.norm(d) == pytest.approx(1.0, rel=1e-5)


def test_cli_draws_the_plane_with_the_path(run_dir, tmp_path, capsys) -> None:
    out = tmp_path / "traj.png"
    argv = ["landscape", "--trajectory", str(run_dir), "--resolution", "5", "--subset", "64",
            "--out", str(out)]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "explained variance ratio" in printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    surface = ls.Surface.load(out.with_suffix(".npz"))
    assert surface.z.shape == (5, 5)
    path = np.asarray(surface.meta["path"])
    assert path.shape == (EPOCHS + 2, 2)
    # the grid covers every point of the path, with a margin
    assert surface.alphas.min() < path[:, 0].min() and surface.alphas.max() > path[:, 0].max()
    assert surface.betas.min() < path[:, 1].min() and surface.betas.max() > path[:, 1].max()
    ratio = surface.meta["explained_variance"]
    assert f"{ratio[0]:.4f}" in printed and sum(ratio) <= 1 + 1e-12
    # one grid value against a direct evaluation at final + a d1 + b d2
    flat = _flat_path(run_dir)
    offsets = flat[:-1] - flat[-1]
    vt = np.linalg.svd(offsets, full_matrices=False)[2]
    signs = [np.sign(offsets @ vt[j] @ path[:-1, j]) for j in range(2)]
    a, b = surface.alphas[1], surface.betas[3]
    theta = flat[-1] + a * signs[0] * vt[0] + b * signs[1] * vt[1]
    problem = build("linreg", seed=0)
    train = problem.splits.train
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:64]
    x, y = train.x[idx].double().numpy(), train.y[idx].double().numpy().reshape(-1)
    mse = np.mean((x @ theta[:10] + theta[10] - y) ** 2)
    assert surface.z[3, 1] == pytest.approx(mse, rel=1e-4)
    assert main(argv) == 0
    assert "replotting" in capsys.readouterr().out


def test_too_few_epoch_checkpoints(run_dir, tmp_path, capsys) -> None:
    short = tmp_path / "short"
    (short / "checkpoints").mkdir(parents=True)
    for name in ("epoch_0000.pt", "epoch_0001.pt", "last.pt"):
        shutil.copy(run_dir / "checkpoints" / name, short / "checkpoints" / name)
    with pytest.raises(OptimlabError, match="--keep-epochs"):
        epoch_checkpoints(short)
    argv = ["landscape", "--trajectory", str(short), "--out", str(tmp_path / "x.png")]
    assert main(argv) == 2
    assert "--keep-epochs" in capsys.readouterr().err
