"""The registered test problems.

Budgets follow DeepOBS where the problem comes from there (batch 128, 100 epochs);
learning-rate hints are rough starting points for a first run, not tuned results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from optimlab.data.datasets import load
from optimlab.data.splits import Split, Splits, split_indices
from optimlab.errors import OptimlabError, check_range
from optimlab.nn import models
from optimlab.problems import functions2d, quadratic
from optimlab.problems.losses import LOSSES, get_loss, objective
from optimlab.problems.metrics import CLASSIFICATION, REGRESSION
from optimlab.problems.problem import (
    PROBLEMS,
    BuildContext,
    Problem,
    ProblemRecord,
    Recipe,
    l2_penalty,
    with_penalty,
)


def _splits(
    ctx: BuildContext, dataset: str, val_size: float | int | None, normalize: bool
) -> Splits:
    return load(
        dataset,
        data_dir=ctx.data_dir,
        download=ctx.download,
        val_size=val_size,
        seed=ctx.seed,
        normalize=normalize,
    )


def _check_loss(name: str, kinds: Sequence[str]) -> None:
    record = LOSSES.get(name)
    if record.kind not in kinds:
        valid = [r.name for r in LOSSES if r.kind in kinds]
        raise OptimlabError(f"invalid loss {name!r} here; valid losses: {', '.join(valid)}")


def _record(
    name: str,
    builder: Callable[..., Problem],
    description: str,
    task: str,
    dataset: str,
    model: str,
    loss: str,
    batch_size: int | None,
    epochs: int,
    reference: str = "",
    recipe: Recipe | None = None,
) -> None:
    PROBLEMS.add(
        ProblemRecord(
            name, builder, description, task, dataset, model, loss, batch_size, epochs, reference,
            recipe=recipe,
        )
    )  # fmt: skip


# --- the noisy quadratic -------------------------------------------------------------


def _quadratic_deep(ctx: BuildContext, *, instance_seed: int = 42) -> Problem:
    q = torch.tensor(quadratic.hessian(instance_seed), dtype=torch.float32)
    return Problem(
        name="quadratic_deep",
        model=quadratic.NoisyQuadratic(q),
        loss_fn=objective,
        metrics={},
        splits=quadratic.quadratic_splits(instance_seed, seed=ctx.seed),
        batch_size=128,
        epochs=100,
        task="objective",
        lr_hints={"sgd": 0.01, "adam": 0.01},
        seed=ctx.seed,
        description=quadratic.__doc__ or "",
    )


_record(
    "quadratic_deep",
    _quadratic_deep,
    "100-D noisy quadratic, 90 eigenvalues U(0,1) and 10 U(30,60), rotated",
    "objective",
    "-",
    "noisy quadratic",
    "objective",
    128,
    100,
    "DeepOBS (Schneider et al. 2019)",
)


# --- 2-D functions -------------------------------------------------------------------

# Chosen from a coarse scan of 200 steps from the start point: the largest rate on a
# half-decade grid that neither diverges nor stalls, rounded down.
_FUNCTION_HINTS = {
    "rosenbrock": {"sgd": 2e-3, "adam": 0.1},
    "beale": {"sgd": 0.01, "adam": 0.1},
    "saddle": {"sgd": 0.05, "adam": 0.05},
    "ravine": {"sgd": 0.15, "adam": 0.1},
    "himmelblau": {"sgd": 0.01, "adam": 0.1},
    "rastrigin": {"sgd": 2e-3, "adam": 0.05},
}


def _function_builder(fn_name: str) -> Callable[..., Problem]:
    def build(ctx: BuildContext, *, start: tuple[float, float] | None = None) -> Problem:
        function = functions2d.FUNCTIONS.get(fn_name)
        return Problem(
            name=fn_name,
            model=functions2d.PointModel(function, start),
            loss_fn=objective,
            metrics={},
            splits=None,
            batch_size=1,
            epochs=200,
            task="objective",
            lr_hints=dict(_FUNCTION_HINTS[fn_name]),
            seed=ctx.seed,
            description=function.description,
            function=function,
        )

    return build


for _fn in functions2d.FUNCTIONS:
    _record(
        _fn.name,
        _function_builder(_fn.name),
        f"2-D function: {_fn.description}",
        "objective",
        "-",
        "2-D point",
        "objective",
        1,
        200,
        _fn.reference,
    )


# --- regression ----------------------------------------------------------------------


def _linreg(ctx: BuildContext, *, val_size: float | int | None = None) -> Problem:
    splits = _splits(ctx, "linear_regression", val_size, normalize=True)
    return Problem(
        name="linreg",
        model=nn.Linear(splits.input_shape[0], 1),
        loss_fn=get_loss("mse"),
        metrics=dict(REGRESSION),
        splits=splits,
        batch_size=32,
        epochs=20,
        task="regression",
        lr_hints={"sgd": 0.05, "adam": 0.01},
        seed=ctx.seed,
        description="linear regression on 10 Gaussian features",
    )


_record(
    "linreg", _linreg, "linear model, MSE", "regression", "linear_regression", "linear",
    "mse", 32, 20,
)  # fmt: skip


def _polyfit(
    ctx: BuildContext, *, degree: int = 14, val_size: float | int | None = None
) -> Problem:
    splits = _splits(ctx, "polynomial_regression", val_size, normalize=False)
    return Problem(
        name="polyfit",
        model=models.polynomial(degree),
        loss_fn=get_loss("mse"),
        metrics=dict(REGRESSION),
        splits=splits,
        batch_size=len(splits.train),  # full batch: the classic overfitting demo
        epochs=2000,
        task="regression",
        lr_hints={"sgd": 0.1, "adam": 0.01},
        seed=ctx.seed,
        description=f"degree-{degree} polynomial fit to {len(splits.train)} noisy points",
    )


_record(
    "polyfit", _polyfit, "degree-14 polynomial on 21 noisy points (overfits)", "regression",
    "polynomial_regression", "polynomial", "mse", None, 2000,
)  # fmt: skip


# --- classification ------------------------------------------------------------------


def _classifier(
    ctx: BuildContext,
    name: str,
    splits: Splits,
    model: nn.Module,
    loss: str,
    batch_size: int,
    epochs: int,
    lr_hints: dict[str, float],
    description: str,
    penalty_factor: float = 0.0,
    recipe: Recipe | None = None,
) -> Problem:
    loss_fn = get_loss(loss)
    penalty = l2_penalty(model, penalty_factor) if penalty_factor else None
    return Problem(
        name=name,
        model=model,
        loss_fn=with_penalty(model, loss_fn, penalty) if penalty else loss_fn,
        metrics=dict(CLASSIFICATION),
        splits=splits,
        batch_size=batch_size,
        epochs=epochs,
        task="classification",
        lr_hints=lr_hints,
        penalty=penalty,
        seed=ctx.seed,
        description=description,
        recipe=recipe,
    )


def _logreg(dataset: str, name: str, batch_size: int, epochs: int) -> Callable[..., Problem]:
    def build(
        ctx: BuildContext, *, loss: str = "cross_entropy", val_size: float | int | None = None
    ) -> Problem:
        _check_loss(loss, ["multiclass"])
        splits = _splits(ctx, dataset, val_size, normalize=True)
        n_in = int(np.prod(splits.input_shape))
        model = models.logistic_regression(n_in, splits.num_classes or 2)
        return _classifier(
            ctx, name, splits, model, loss, batch_size, epochs, {"sgd": 0.1, "adam": 1e-3},
            f"multinomial logistic regression on {dataset}",
        )  # fmt: skip

    return build


_record(
    "logreg_digits", _logreg("digits", "logreg_digits", 64, 30),
    "linear softmax classifier on 8x8 digits", "classification", "digits", "logistic_regression",
    "cross_entropy", 64, 30,
)  # fmt: skip
_record(
    "logreg_fmnist", _logreg("fashion_mnist", "logreg_fmnist", 128, 20),
    "linear softmax classifier on Fashion-MNIST", "classification", "fashion_mnist",
    "logistic_regression", "cross_entropy", 128, 20,
)  # fmt: skip


def _digits_mlp(
    ctx: BuildContext,
    *,
    hidden: Sequence[int] = (128, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    val_size: float | int | None = None,
) -> Problem:
    splits = _splits(ctx, "digits", val_size, normalize=True)
    model = models.mlp(64, list(hidden), 10, activation, dropout, batch_norm)
    return _classifier(
        ctx, "digits_mlp", splits, model, "cross_entropy", 32, 20, {"sgd": 0.05, "adam": 1e-3},
        f"MLP 64-{'-'.join(map(str, hidden))}-10 on 8x8 digits (fast default)",
    )  # fmt: skip


_record(
    "digits_mlp", _digits_mlp, "MLP 64-128-64-10 on digits: the fast default", "classification",
    "digits", "mlp", "cross_entropy", 32, 20,
)  # fmt: skip


def _deepobs_mlp(dataset: str, name: str) -> Callable[..., Problem]:
    def build(ctx: BuildContext, *, val_size: float | int | None = None) -> Problem:
        # DeepOBS feeds [0, 1] pixels; its initialization assumes that scale.
        splits = _splits(ctx, dataset, val_size, normalize=False)
        return _classifier(
            ctx, name, splits, models.fmnist_mlp(), "cross_entropy", 128, 100,
            {"sgd": 0.05, "adam": 1e-3}, f"DeepOBS MLP 784-1000-500-100-10 on {dataset}",
        )  # fmt: skip

    return build


for _name, _dataset in (("fmnist_mlp", "fashion_mnist"), ("mnist_mlp", "mnist")):
    _record(
        _name, _deepobs_mlp(_dataset, _name), "784-1000-500-100-10 ReLU MLP", "classification",
        _dataset, "fmnist_mlp", "cross_entropy", 128, 100, "DeepOBS (Schneider et al. 2019)",
    )  # fmt: skip


def _fmnist_overfit(
    ctx: BuildContext, *, train_size: int = 10_000, val_size: float | int | None = 5_000
) -> Problem:
    """The lectures' dropout practical: an over-parameterized MLP (784-1024-1024-10,
    1.9M weights) on a reduced training set of ``train_size`` images, so that it
    overfits and regularization has something to fix. Validation and test as usual."""
    check_range("train_size", train_size, 1)
    splits = _splits(ctx, "fashion_mnist", val_size, normalize=True)
    gen = torch.Generator().manual_seed(ctx.seed)
    keep = torch.randperm(len(splits.train.x), generator=gen)[:train_size]
    splits = dataclasses.replace(splits, train=Split(splits.train.x[keep], splits.train.y[keep]))
    return _classifier(
        ctx, "fmnist_overfit", splits, models.mlp(784, [1024, 1024], 10), "cross_entropy", 128,
        20, {"sgd": 0.05, "adam": 1e-3}, "784-1024-1024-10 MLP on 10,000 Fashion-MNIST images",
    )  # fmt: skip


_record(
    "fmnist_overfit", _fmnist_overfit, "784-1024-1024-10 MLP, 10k training images",
    "classification", "fashion_mnist", "mlp", "cross_entropy", 128, 20,
    "Srivastava et al. 2014 (the setting of the dropout practical)",
)  # fmt: skip


def _fmnist_2c2d(ctx: BuildContext, *, val_size: float | int | None = None) -> Problem:
    splits = _splits(ctx, "fashion_mnist", val_size, normalize=False)
    return _classifier(
        ctx, "fmnist_2c2d", splits, models.fmnist_2c2d(), "cross_entropy", 128, 100,
        {"sgd": 0.02, "adam": 1e-4}, "DeepOBS 2c2d convnet on Fashion-MNIST",
    )  # fmt: skip


_record(
    "fmnist_2c2d", _fmnist_2c2d, "conv5(32)-pool-conv5(64)-pool-FC1024-FC10", "classification",
    "fashion_mnist", "fmnist_2c2d", "cross_entropy", 128, 100, "DeepOBS (Schneider et al. 2019)",
)  # fmt: skip


def _cifar10_3c3d(
    ctx: BuildContext, *, l2: float = 0.002, val_size: float | int | None = None
) -> Problem:
    check_range("l2", l2, 0.0)
    # DeepOBS standardizes each image and augments; here the whole set is standardized
    # per channel and augmentation is left to optimlab's augmentation module.
    splits = _splits(ctx, "cifar10", val_size, normalize=True)
    model = models.cifar10_3c3d()
    return _classifier(
        ctx, "cifar10_3c3d", splits, model, "cross_entropy", 128, 100,
        {"sgd": 0.01, "adam": 1e-3}, f"DeepOBS 3c3d convnet on CIFAR-10, L2 {l2} on weights",
        penalty_factor=l2,
    )  # fmt: skip


_record(
    "cifar10_3c3d", _cifar10_3c3d, "3 conv + 3 dense layers, L2 0.002 on weights",
    "classification", "cifar10", "cifar10_3c3d", "cross_entropy", 128, 100,
    "DeepOBS (Schneider et al. 2019)",
)  # fmt: skip


# --- He et al. 2016: CIFAR-10 ResNets and plain nets ---------------------------------

# He et al. 2016, section 4.2: SGD with momentum 0.9 and weight decay 1e-4 on batches
# of 128, lr 0.1 divided by 10 at 32k and 48k iterations, stop at 64k; 4-pixel padding,
# random 32x32 crops and horizontal flips.
HE_CIFAR_STEPS, HE_CIFAR_BATCH = 64_000, 128
HE_CIFAR_RECIPE = Recipe(
    optimizer="sgd",
    lr=0.1,
    hp={"momentum": 0.9, "weight_decay": 1e-4},
    schedule="multistep",
    schedule_args={"milestones": [32_000, 48_000], "gamma": 0.1},
    steps=HE_CIFAR_STEPS,
    batch_size=HE_CIFAR_BATCH,
    augment="flip,crop:4",
    reference="He et al. 2016, section 4.2",
)
HE_CIFAR_TRAIN_SIZE = 45_000  # the paper fixed the 64k iterations on a 45k/5k split


def _epochs_for(steps: int, train_size: int, batch_size: int) -> int:
    """Whole epochs that cover ``steps`` optimizer steps."""
    return -(-steps // -(-train_size // batch_size))


def _cifar10_resnet(name: str, model_name: str) -> Callable[..., Problem]:
    def build(ctx: BuildContext, *, val_size: float | int | None = None) -> Problem:
        # He et al. subtract the per-pixel mean; the whole set is standardized per
        # channel here (the loader's normalization), a close stand-in.
        splits = _splits(ctx, "cifar10", val_size, normalize=True)
        epochs = _epochs_for(HE_CIFAR_STEPS, len(splits.train), HE_CIFAR_BATCH)
        return _classifier(
            ctx, name, splits, models.build_model(model_name), "cross_entropy", HE_CIFAR_BATCH,
            epochs, {"sgd": HE_CIFAR_RECIPE.lr, "adam": 1e-3},
            f"{models.MODELS.get(model_name).description} on CIFAR-10, He et al.'s recipe",
            recipe=HE_CIFAR_RECIPE,
        )  # fmt: skip

    return build


for _depth in (20, 56):
    for _kind in ("resnet", "plain"):
        _name = f"cifar10_{_kind}{_depth}"
        _record(
            _name, _cifar10_resnet(_name, f"{_kind}{_depth}"),
            f"CIFAR {'ResNet' if _kind == 'resnet' else 'plain net'}-{_depth}, He et al.'s "
            "recipe (problem.recipe)",
            "classification", "cifar10", f"{_kind}{_depth}", "cross_entropy", HE_CIFAR_BATCH,
            _epochs_for(HE_CIFAR_STEPS, HE_CIFAR_TRAIN_SIZE, HE_CIFAR_BATCH), "He et al. 2016",
            recipe=HE_CIFAR_RECIPE,
        )  # fmt: skip


# --- the deep linear toy -------------------------------------------------------------

DEEP_LINEAR_SLOPE = 2.0


def _deep_linear_splits(seed: int, n_pool: int = 256, n_test: int = 256) -> Splits:
    """y = 2 x + N(0, 0.1^2) with x ~ N(0, 1); the data are the same for every seed."""
    rng = np.random.default_rng([0xDEE9, 0])
    x = rng.standard_normal((n_pool + n_test, 1))
    y = DEEP_LINEAR_SLOPE * x + 0.1 * rng.standard_normal((n_pool + n_test, 1))
    train_idx, val_idx = split_indices(n_pool, 0.1, seed)

    def split(idx: np.ndarray) -> Split:
        return Split(
            torch.tensor(x[idx], dtype=torch.float32), torch.tensor(y[idx], dtype=torch.float32)
        )

    return Splits(
        name="deep_linear",
        train=split(train_idx),
        val=split(val_idx),
        test=split(np.arange(n_pool, n_pool + n_test)),
        task="regression",
        input_shape=(1,),
    )


def _deep_linear(
    ctx: BuildContext, *, depth: int = 4, init: Sequence[float] | None = None
) -> Problem:
    if init is None:
        # Weights near 1 (U(0.5, 1.5)): a product of standard normals would often start
        # near the saddle at 0, which is a different lesson.
        init = (0.5 + torch.rand(depth)).tolist()
    return Problem(
        name="deep_linear",
        model=models.deep_linear(depth=depth, init=init),
        loss_fn=get_loss("mse"),
        metrics=dict(REGRESSION),
        splits=_deep_linear_splits(ctx.seed),
        batch_size=32,
        epochs=20,
        task="regression",
        lr_hints={"sgd": 0.01, "adam": 0.01},
        seed=ctx.seed,
        description=f"z = w{depth}...w1 x fitted to y = {DEEP_LINEAR_SLOPE} x + noise",
    )


_record(
    "deep_linear", _deep_linear, "z = w4 w3 w2 w1 x fitted to y = 2x + noise (gauge freedom)",
    "regression", "-", "deep_linear", "mse", 32, 20, "lecture toy",
)  # fmt: skip


# --- Wilson et al. 2017 --------------------------------------------------------------


def _wilson(
    ctx: BuildContext, *, loss: str = "logistic", val_size: float | int | None = None
) -> Problem:
    _check_loss(loss, ["binary"])
    splits = _splits(ctx, "wilson_separable", val_size, normalize=False)
    model = nn.Linear(splits.input_shape[0], 1, bias=False)
    nn.init.zeros_(model.weight)  # the paper's argument starts every method at w = 0
    return _classifier(
        ctx, "wilson_separable", splits, model, loss, len(splits.train), 300,
        {"sgd": 0.1, "adam": 0.01},
        "Wilson et al. 2017 toy: full-batch GD reaches 0 test error, adaptive methods ~1-p",
    )  # fmt: skip


_record(
    "wilson_separable", _wilson, "linear model on the Wilson et al. separable toy, w0 = 0",
    "classification", "wilson_separable", "linear (no bias)", "logistic", None, 300,
    "Wilson et al. 2017, sec. 3.3",
)  # fmt: skip
