"""Order rules: permutations per epoch, determinism, curriculum pacing and pools."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from optimlab.data import BatchLoader
from optimlab.data.ordering import Curriculum, create, pacing_fraction, reference_losses
from optimlab.errors import OptimlabError

N = 37


def _data(n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    # x holds each example's index, so batches reveal the order; y = 3 x checks pairing.
    x = torch.arange(n).reshape(n, 1).float()
    return x, 3 * torch.arange(n)


def _order(loader: BatchLoader, epoch: int, **kwargs) -> list[int]:
    out: list[int] = []
    for xb, yb in loader.epoch(epoch, **kwargs):
        assert torch.equal(yb, 3 * xb[:, 0].long())
        out += xb[:, 0].long().tolist()
    return out


def _scores(n: int = N) -> np.ndarray:
    # Distinct difficulties in a scrambled order: example i has rank ranks[i].
    return np.random.default_rng(11).permutation(n).astype(float) * 0.5 - 3.0


@pytest.mark.parametrize("order", ["random", "shuffle_once", "cyclic"])
def test_named_orders_visit_every_example_once_per_epoch(order):
    loader = BatchLoader(*_data(), 5, order=order, seed=4)
    for e in range(3):
        assert sorted(_order(loader, e)) == list(range(N))


def test_shuffle_once_is_one_fixed_permutation():
    loader = BatchLoader(*_data(), 5, order="shuffle_once", seed=4)
    first = _order(loader, 0)
    assert first != list(range(N))
    assert all(_order(loader, e) == first for e in (1, 2, 9))
    other = BatchLoader(*_data(), 5, order="shuffle_once", seed=5)
    assert _order(other, 0) != first
    # It is not the epoch-0 permutation of "random" either (separate stream).
    assert _order(BatchLoader(*_data(), 5, order="random", seed=4), 0) != first


def test_random_order_is_unchanged_by_the_ordering_module():
    # The permutation the loader always used: numpy's generator on [0x10AD, seed, epoch].
    loader = BatchLoader(*_data(), 5, seed=9)
    expected = np.random.default_rng([0x10AD, 9, 3]).permutation(N).tolist()
    assert _order(loader, 3) == expected


@pytest.mark.parametrize(
    "pacing, formula",
    [
        ("linear", lambda t, c0: c0 + (1 - c0) * t),
        ("root", lambda t, c0: math.sqrt(c0**2 + (1 - c0**2) * t)),
        ("exp", lambda t, c0: c0 ** (1 - t)),
        ("step", lambda t, c0: c0 + (1 - c0) * math.floor(4 * t) / 4),
    ],
)
def test_pacing_matches_its_formula(pacing, formula):
    c0, epochs = 0.1, 8
    for e in range(12):
        t = min(e / epochs, 1.0)
        assert pacing_fraction(e, c0, epochs, pacing) == pytest.approx(formula(t, c0))
    assert pacing_fraction(0, c0, epochs, pacing) == pytest.approx(c0)
    assert pacing_fraction(epochs, c0, epochs, pacing) == pytest.approx(1.0)


@pytest.mark.parametrize("pacing", ["linear", "root", "exp", "step"])
def test_curriculum_admits_the_paced_fraction_of_the_easiest(pacing):
    scores = _scores()
    easiest = np.argsort(scores)
    cur = Curriculum(scores, start=0.2, epochs=6, pacing=pacing)
    loader = BatchLoader(*_data(), 4, order=cur, seed=2)
    sizes = []
    for e in range(9):
        want = max(1, math.ceil(pacing_fraction(e, 0.2, 6, pacing) * N - 1e-9))
        seen = _order(loader, e)
        assert len(seen) == len(set(seen)) == want  # each pool example exactly once
        assert set(seen) == set(easiest[:want].tolist())  # and they are the easiest
        assert loader.num_batches(epoch=e) == math.ceil(want / 4)
        sizes.append(want)
    assert sizes == sorted(sizes) and sizes[0] == math.ceil(0.2 * N) and sizes[-1] == N


def test_curriculum_shuffles_the_pool_by_seed_and_epoch():
    scores = _scores()
    a = BatchLoader(*_data(), 4, order=Curriculum(scores, start=0.5, epochs=0), seed=3)
    b = BatchLoader(*_data(), 4, order=Curriculum(scores, start=0.5, epochs=0), seed=3)
    c = BatchLoader(*_data(), 4, order=Curriculum(scores, start=0.5, epochs=0), seed=4)
    assert _order(a, 2) == _order(b, 2)
    assert _order(a, 2) != _order(a, 3)
    assert _order(a, 2) != _order(c, 2)
    # Unshuffled, the pool is visited easiest first.
    plain = BatchLoader(*_data(), 4, order=Curriculum(scores, start=0.3, shuffle=False))
    assert _order(plain, 0) == np.argsort(scores)[: math.ceil(0.3 * N)].tolist()


def test_curriculum_resumes_mid_epoch_with_skip():
    loader = BatchLoader(*_data(), 3, order=Curriculum(_scores(), start=0.4), seed=1)
    full = _order(loader, 2)
    assert _order(loader, 2, skip=2) == full[6:]


def test_reference_losses_are_per_example_losses():
    gen = torch.Generator().manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(10, 4, generator=gen), torch.randint(0, 3, (10,), generator=gen)
    got = reference_losses(model, x, y, batch_size=3)
    logits = model(x).detach()
    expected = torch.logsumexp(logits, 1) - logits[torch.arange(10), y]
    assert torch.allclose(got, expected, atol=1e-6)
    reg = nn.Linear(4, 2)
    t = torch.randn(10, 2, generator=gen)
    want = ((reg(x).detach() - t) ** 2).sum(1)
    assert torch.allclose(reference_losses(reg, x, t, task="regression"), want, atol=1e-6)


def test_bad_orders_are_named():
    with pytest.raises(OptimlabError, match="valid orders: curriculum, cyclic, full"):
        create("easy_first")
    with pytest.raises(OptimlabError, match="needs scores"):
        create("curriculum")
    with pytest.raises(OptimlabError, match="invalid start"):
        Curriculum(_scores(), start=0.0)
    with pytest.raises(OptimlabError, match="valid pacings: exp, linear, root, step"):
        Curriculum(_scores(), pacing="quadratic")
    with pytest.raises(OptimlabError, match="finite"):
        Curriculum([0.0, float("nan")])
    with pytest.raises(OptimlabError, match="37 scores but the data has 5"):
        BatchLoader(*_data(5), 2, order=Curriculum(_scores()))
    with pytest.raises(OptimlabError, match="invalid order"):
        BatchLoader(*_data(), 2, order=42)  # type: ignore[arg-type]
