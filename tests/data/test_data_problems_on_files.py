"""The file-backed problems build and train a step from files in the true formats,
even where the real MNIST and CIFAR-10 are absent."""

from __future__ import annotations

import hashlib

import pytest
import torch

from optimlab.data import sources
from optimlab.data.locate import FileSpec
from optimlab.problems import build


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _step(problem) -> None:
    problem.model.train()
    xb, yb = next(iter(problem.loader()))
    loss = problem.loss_fn(problem.model(xb), yb)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in problem.model.parameters())


def test_mnist_mlp_from_idx_files(isolated, files, monkeypatch):
    folder = isolated / "data" / "mnist"
    files["write_mnist_like"](folder, n_train=40, n_test=8)
    specs = tuple(FileSpec(s.name, _md5(folder / s.name)) for s in sources.FILES["mnist"])
    monkeypatch.setitem(sources.FILES, "mnist", specs)
    problem = build("mnist_mlp", data_dir=isolated / "data", val_size=8)
    assert (len(problem.splits.train), len(problem.splits.val)) == (32, 8)
    assert float(problem.splits.train.x.max()) <= 1.0  # DeepOBS's [0, 1] pixels
    _step(problem)


def test_cifar10_3c3d_from_the_archive(cifar_archive):
    problem = build("cifar10_3c3d", data_dir=cifar_archive, val_size=4)
    assert problem.splits.train.x.shape == (16, 3, 32, 32)
    _step(problem)
    with pytest.raises(ValueError, match="invalid l2"):
        build("cifar10_3c3d", data_dir=cifar_archive, val_size=4, l2=-1.0)
