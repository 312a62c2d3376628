"""Preprocessing: fitted on train only, checked against sklearn and exact whitening facts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from optimlab.data import Split, Splits
from optimlab.data.preprocess import (
    apply_to_splits,
    available,
    create,
    from_state_dict,
)
from optimlab.errors import OptimlabError


def _correlated(n: int, d: int, seed: int) -> torch.Tensor:
    """Features in very different units and strongly mixed, float64."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) * np.logspace(0, 3, d)[:, None]
    return torch.from_numpy(rng.standard_normal((n, d)) @ mix + rng.uniform(-50, 50, d))


def _splits(x_train, x_val, x_test) -> Splits:
    def split(x):
        return Split(x, torch.zeros(x.shape[0], dtype=torch.int64))

    return Splits(
        name="toy",
        train=split(x_train),
        val=split(x_val),
        test=split(x_test),
        task="classification",
        input_shape=tuple(x_train.shape[1:]),
        num_classes=2,
    )


def _cov(z: torch.Tensor) -> torch.Tensor:
    z = z.reshape(z.shape[0], -1)
    c = z - z.mean(0)
    return c.T @ c / z.shape[0]


@pytest.mark.parametrize("name", ["standardize", "pca_whiten", "zca_whiten", "channel_mean"])
def test_fit_uses_the_training_split_alone(name):
    gen = torch.Generator().manual_seed(0)
    shape = (40, 3, 2, 2)
    train = torch.randn(shape, generator=gen, dtype=torch.float64) * 3 + 1
    val, test = torch.randn(shape, generator=gen, dtype=torch.float64), torch.randn(shape)
    a, ta = apply_to_splits(_splits(train, val, test.double()), name)
    b, tb = apply_to_splits(_splits(train, 100 * val + 7, -(test.double() ** 3)), name)
    for key, value in ta.state_dict().items():
        other = tb.state_dict()[key]
        assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
    assert torch.equal(a.train.x, b.train.x)
    # Held-out splits go through the same fitted map: applying it by hand agrees.
    assert torch.allclose(b.val.x, ta(100 * val + 7))
    # ... and changing the training data does change the fit.
    _, tc = apply_to_splits(_splits(train * 2 + 1, val, test.double()), name)
    assert not torch.equal(tc.state_dict()["mean"], ta.state_dict()["mean"])


def test_standardize_matches_sklearn():
    x = _correlated(200, 6, seed=1)
    x[:, 2] = 4.0  # a constant feature: sklearn keeps scale 1
    held_out = _correlated(50, 6, seed=2)
    scaler = StandardScaler().fit(x.numpy())
    t = create("standardize").fit(x)
    np.testing.assert_allclose(t(x).numpy(), scaler.transform(x.numpy()), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        t(held_out).numpy(), scaler.transform(held_out.numpy()), rtol=1e-12, atol=1e-10
    )


def test_channel_mean_is_standardize_on_pixels_of_each_channel():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(30, 3, 4, 5, generator=gen, dtype=torch.float64) * torch.tensor(
        [1.0, 10.0, 0.1]
    ).view(1, 3, 1, 1)
    pixels = x.permute(0, 2, 3, 1).reshape(-1, 3).numpy()  # one row per pixel
    expected = StandardScaler().fit_transform(pixels).reshape(30, 4, 5, 3).transpose(0, 3, 1, 2)
    out = create("channel_mean").fit(x)(x)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)
    with pytest.raises(OptimlabError, match="standardize"):
        create("channel_mean").fit(x.reshape(30, -1))


@pytest.mark.parametrize("name", ["pca_whiten", "zca_whiten"])
def test_whitening_gives_identity_covariance_on_train(name):
    x = _correlated(500, 8, seed=4)
    t = create(name, eps=0.0).fit(x)
    z = t(x)
    assert torch.allclose(z.mean(0), torch.zeros(8, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(_cov(z), torch.eye(8, dtype=torch.float64), atol=1e-6)
    # With eps > 0 the covariance is diag(lambda / (lambda + eps)) in the PCA basis.
    lam = torch.linalg.eigvalsh(_cov(x))
    eps = float(lam[3])
    z_eps = create(name, eps=eps).fit(x)(x)
    got = torch.linalg.eigvalsh(_cov(z_eps))
    assert torch.allclose(got, (lam / (lam + eps)).sort().values, atol=1e-9)


def test_whitening_keeps_image_shape_and_dtype():
    x = torch.randn(64, 1, 3, 3, generator=torch.Generator().manual_seed(5))
    for name in ("pca_whiten", "zca_whiten"):
        z = create(name, eps=1e-3).fit(x)(x)
        assert z.shape == x.shape and z.dtype == torch.float32


def test_zca_is_symmetric_and_the_whitening_closest_to_identity():
    x = _correlated(400, 5, seed=6)
    zca = create("zca_whiten", eps=0.0).fit(x)
    pca = create("pca_whiten", eps=0.0).fit(x)
    w_zca, w_pca = zca.matrix, pca.matrix
    assert torch.equal(w_zca, w_zca.T)
    sigma = _cov(x)
    # Both are whitening matrices: W Sigma W^T = I ...
    for w in (w_zca, w_pca):
        assert torch.allclose(w @ sigma @ w.T, torch.eye(5, dtype=torch.float64), atol=1e-8)
    # ... and ZCA is Sigma^(-1/2), checked against scipy's matrix square root.
    from scipy.linalg import sqrtm

    inv_sqrt = np.linalg.inv(np.real(sqrtm(sigma.numpy())))
    np.testing.assert_allclose(w_zca.numpy(), inv_sqrt, rtol=1e-6, atol=1e-10)
    # Every rotation Q W_zca whitens too; none is closer to I (Kessy et al. 2018).
    eye = torch.eye(5, dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen, dtype=torch.float64))
    d_zca = torch.linalg.norm(w_zca - eye)
    centred = x - x.mean(0)
    for other in (w_pca, q @ w_pca, q @ w_zca):
        assert d_zca < torch.linalg.norm(other - eye)
        # The same holds for the mean squared change of the data.
        change_zca = ((centred @ w_zca.T - centred) ** 2).sum(1).mean()
        assert change_zca < ((centred @ other.T - centred) ** 2).sum(1).mean()


def test_state_dict_round_trip_rebuilds_the_same_map():
    x = _correlated(100, 4, seed=8)
    new = _correlated(20, 4, seed=9)
    for name in available():
        t = create(name, eps=1e-2).fit(x.reshape(100, 2, 2))
        state = t.state_dict()
        again = from_state_dict(state)
        assert torch.equal(again(new.reshape(20, 2, 2)), t(new.reshape(20, 2, 2)))
        other = "standardize" if name == "none" else "none"
        with pytest.raises(OptimlabError, match="cannot be loaded"):
            create(other).load_state_dict(state)


def test_bad_input_names_the_argument():
    with pytest.raises(OptimlabError, match="valid preprocessings: channel_mean"):
        create("whiten")
    with pytest.raises(OptimlabError, match="eps"):
        create("zca_whiten", eps=-1.0)
    x = torch.zeros(10, 3, dtype=torch.float64)
    x[:, 0] = torch.arange(10.0)
    with pytest.raises(OptimlabError, match="singular"):
        create("pca_whiten", eps=0.0).fit(x)
    t = create("standardize").fit(torch.randn(10, 3))
    with pytest.raises(OptimlabError, match="shape"):
        t(torch.randn(4, 5))
    with pytest.raises(OptimlabError, match="not fitted"):
        create("zca_whiten")(torch.randn(4, 3))
