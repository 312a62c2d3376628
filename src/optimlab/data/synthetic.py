"""Generated datasets: regression, two moons, spirals, the Wilson et al. toy and a sparse
bag-of-features classification set.

Each generator is deterministic: its data come from ``data_seed`` (fixed by default),
not from the training seed, so every run of a study sees the same dataset and the seed
only changes the train/validation split, the initialization and the batch order.
"""

from __future__ import annotations

import functools

import numpy as np

from optimlab.data.raw import RawData
from optimlab.errors import OptimlabError, check_range

# Stream tags keep the generators' random streams apart for equal data seeds.
_LINEAR, _POLY, _MOONS, _SPIRALS, _WILSON, _SPARSE = 0x11, 0x22, 0x33, 0x44, 0x55, 0x66


def _rng(tag: int, data_seed: int) -> np.random.Generator:
    if isinstance(data_seed, bool) or not isinstance(data_seed, int) or data_seed < 0:
        raise OptimlabError(f"invalid data_seed: {data_seed!r}; valid seeds are integers >= 0")
    return np.random.default_rng([tag, data_seed])


@functools.lru_cache(maxsize=8)
def linear_regression(
    n_train: int = 1000,
    n_test: int = 1000,
    features: int = 10,
    noise: float = 0.5,
    data_seed: int = 0,
) -> RawData:
    """y = x . w* + b* + e with x ~ N(0, I), w*, b* ~ N(0, 1) and e ~ N(0, noise^2)."""
    check_range("noise", noise, 0.0)
    rng = _rng(_LINEAR, data_seed)
    w = rng.standard_normal((features, 1))
    b = rng.standard_normal()
    x = rng.standard_normal((n_train + n_test, features))
    y = x @ w + b + noise * rng.standard_normal((n_train + n_test, 1))
    x, y = x.astype(np.float32), y.astype(np.float32)
    return RawData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], origin="generated")


def poly_truth(x: np.ndarray) -> np.ndarray:
    """The noiseless curve behind ``polynomial_regression``: 0.5 + x - 2 x^2."""
    return 0.5 + x - 2.0 * x**2


@functools.lru_cache(maxsize=8)
def polynomial_regression(
    n_train: int = 30, n_test: int = 200, noise: float = 0.3, data_seed: int = 0
) -> RawData:
    """Few noisy samples of a quadratic on [-1, 1], the classic overfitting demo.

    Training inputs are uniform on [-1, 1]; test inputs an even grid over the same
    interval (handy for plotting the fitted curve). A high-degree polynomial model
    (the ``polyfit`` problem uses degree 14) interpolates the noise unless regularized.
    Inputs are kept in [-1, 1] and not standardized, so powers stay bounded.
    """
    check_range("noise", noise, 0.0)
    rng = _rng(_POLY, data_seed)
    x_train = rng.uniform(-1.0, 1.0, (n_train, 1))
    x_test = np.linspace(-1.0, 1.0, n_test)[:, None]
    y_train = poly_truth(x_train) + noise * rng.standard_normal((n_train, 1))
    y_test = poly_truth(x_test) + noise * rng.standard_normal((n_test, 1))
    f32 = np.float32
    return RawData(
        x_train.astype(f32), y_train.astype(f32), x_test.astype(f32), y_test.astype(f32),
        origin="generated",
    )  # fmt: skip


@functools.lru_cache(maxsize=8)
def two_moons(
    n_train: int = 1000, n_test: int = 1000, noise: float = 0.2, data_seed: int = 0
) -> RawData:
    """scikit-learn's two interleaving half circles with Gaussian noise (2 classes)."""
    from sklearn.datasets import make_moons

    check_range("noise", noise, 0.0)
    seeds = _rng(_MOONS, data_seed).integers(0, 2**31 - 1, size=2)
    x_tr, y_tr = make_moons(n_train, noise=noise, random_state=int(seeds[0]))
    x_te, y_te = make_moons(n_test, noise=noise, random_state=int(seeds[1]))
    return RawData(
        x_tr.astype(np.float32),
        y_tr.astype(np.int64),
        x_te.astype(np.float32),
        y_te.astype(np.int64),
        class_names=("upper", "lower"),
        origin="generated",
    )


def _spiral_points(
    rng: np.random.Generator, n: int, arms: int, turns: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, arms, n)
    t = rng.uniform(0.0, 1.0, n)
    radius = 0.1 + 0.9 * t  # start off-centre: every arm meets at the origin otherwise
    angle = 2.0 * np.pi * (turns * t + labels / arms)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    points += noise * rng.standard_normal(points.shape)
    return points.astype(np.float32), labels.astype(np.int64)


@functools.lru_cache(maxsize=8)
def spirals(
    n_train: int = 1000,
    n_test: int = 1000,
    arms: int = 2,
    turns: float = 1.5,
    noise: float = 0.05,
    data_seed: int = 0,
) -> RawData:
    """Interleaved spiral arms in the plane, one class per arm (the two-spirals task).

    A point of arm k at position t ~ U(0, 1) along it lies at radius 0.1 + 0.9 t and
    angle 2 pi (turns t + k / arms), plus N(0, noise^2) on each coordinate.
    """
    if arms < 2:
        raise OptimlabError(f"invalid arms: {arms}; valid range is [2, inf)")
    check_range("noise", noise, 0.0)
    rng = _rng(_SPIRALS, data_seed)
    x_tr, y_tr = _spiral_points(rng, n_train, arms, turns, noise)
    x_te, y_te = _spiral_points(rng, n_test, arms, turns, noise)
    names = tuple(f"arm {k}" for k in range(arms))
    return RawData(x_tr, y_tr, x_te, y_te, class_names=names, origin="generated")


def wilson_features(y_pm: np.ndarray, first_block: int, width: int) -> np.ndarray:
    """Feature rows of the Wilson et al. toy for labels ``y_pm`` in {-1, +1}.

    Row i: feature 0 is the label, features 1 and 2 are 1, and a block of five features
    private to the example (starting at 3 + 5 (first_block + i)) holds one 1 for a
    positive example and five 1s for a negative one. ``width`` is the total number of
    features.
    """
    n = len(y_pm)
    x = np.zeros((n, width), np.float32)
    x[:, 0] = y_pm
    x[:, 1:3] = 1.0
    ones = np.where(y_pm > 0, 1, 5)
    rows, offs = np.nonzero(np.arange(5)[None, :] < ones[:, None])
    starts = 3 + 5 * (first_block + np.arange(n))
    x[rows, starts[rows] + offs] = 1.0
    return x


@functools.lru_cache(maxsize=8)
def wilson_separable(
    n_train: int = 200, n_test: int = 400, p: float = 0.55, data_seed: int = 0
) -> RawData:
    """The linearly separable toy of Wilson et al. (2017), section 3.3.

    Labels are +1 with probability ``p`` > 1/2, else -1 (stored as classes 1 and 0).
    Each example gets the label itself as feature 0, two constant features, and five
    features of its own (see ``wilson_features``); the paper's 6n features are trimmed
    to the 3 + 5 (n_train + n_test) that are ever non-zero. Because test examples use
    private features no training example touches, a linear model w classifies a new
    point by sign(w0 y + w1 + w2) alone. Started from zero, gradient descent finds the
    minimum-norm solution, which weights feature 0 heavily and has zero test error;
    AdaGrad, RMSprop and Adam move every coordinate at the same rate, ending near
    w ~ sign(X^T y), for which w0 = w1 = w2, so every new point is labelled with the
    majority class and the test error is about 1 - p. The argument is exact for
    full-batch steps; mini-batches blur it.
    """
    check_range("p", p, 0.5, 1.0, low_open=True, high_open=True)
    rng = _rng(_WILSON, data_seed)
    n = n_train + n_test
    y_pm = np.where(rng.uniform(size=n) < p, 1.0, -1.0)
    x = wilson_features(y_pm, 0, 3 + 5 * n)
    y = (y_pm > 0).astype(np.int64)
    return RawData(
        x[:n_train],
        y[:n_train],
        x[n_train:],
        y[n_train:],
        class_names=("-1", "+1"),
        origin="generated",
    )


@functools.lru_cache(maxsize=8)
def sparse_binary(
    n_train: int = 10_000,
    n_test: int = 2_000,
    features: int = 1_000,
    active: int = 10,
    noise: float = 0.5,
    data_seed: int = 0,
) -> RawData:
    """Sparse binary classification: each example is a bag of ``active`` feature ids
    drawn uniformly from ``features`` (with replacement, so a feature may count twice,
    as words do in a document), stored as an int64 row of ids, not as a dense vector.

    The label is 1 where ``sum_j w*[x_j] + e > 0``, with ``w* ~ N(0, I)`` and
    ``e ~ N(0, noise^2)``: a linear model on feature counts can fit it, and the noise
    keeps the classes overlapping. Each example touches ``active / features`` of the
    weights (1% by default), the setting where Hogwild!'s lock-free updates rarely
    collide.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("features", features),
                        ("active", active)):  # fmt: skip
        check_range(name, value, 1)
    check_range("noise", noise, 0.0)
    rng = _rng(_SPARSE, data_seed)
    truth = rng.standard_normal(features)
    n = n_train + n_test
    ids = rng.integers(0, features, size=(n, active), dtype=np.int64)
    margin = truth[ids].sum(axis=1) + noise * rng.standard_normal(n)
    y = (margin > 0).astype(np.int64)
    return RawData(
        ids[:n_train], y[:n_train], ids[n_train:], y[n_train:],
        class_names=("0", "1"), origin="generated",
    )  # fmt: skip
