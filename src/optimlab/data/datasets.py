"""The dataset registry and ``load``, which turns any registered dataset into tensors.

``load`` reads (or generates) the arrays once per process (the readers are cached),
carves a validation split out of the training pool by seed, scales and normalizes
with training statistics, and places everything on the requested device.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from optimlab.data import sources, synthetic
from optimlab.data.locate import FileSpec
from optimlab.data.raw import RawData
from optimlab.data.splits import Split, Splits, fit_normalization, split_indices
from optimlab.errors import OptimlabError
from optimlab.registry import Registry

# (data_dir, download, verify) -> RawData
Reader = Callable[[str | os.PathLike[str] | None, bool, bool], RawData]


@dataclass(frozen=True)
class DatasetRecord:
    """What the registry knows about a dataset.

    ``kind`` is "file" (read from disk, optionally downloaded), "embedded" (shipped
    with a dependency) or "synthetic" (generated). ``normalization`` is "channel"
    (images), "feature" (tabular) or "none" (left as generated, where scaling would
    change the problem). ``val_size`` is the default validation size: a fraction of
    the training pool or a count.
    """

    name: str
    reader: Reader
    description: str
    task: str
    input_shape: tuple[int, ...]
    num_classes: int | None
    reference: str
    kind: str
    val_size: float | int = 0.1
    normalization: str = "channel"
    aliases: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[FileSpec, ...]:
        """The published files and their MD5s (empty for non-file datasets)."""
        return sources.FILES.get(self.name, ())

    @property
    def mirrors(self) -> tuple[str, ...]:
        return sources.MIRRORS.get(self.name, ())


DATASETS: Registry[DatasetRecord] = Registry("dataset")


def _generated(make: Callable[[], RawData]) -> Reader:
    def read(data_dir: object, download: bool, verify: bool) -> RawData:
        del data_dir, download, verify  # nothing on disk
        return make()

    return read


def _idx(name: str) -> Reader:
    def read(data_dir: str | os.PathLike[str] | None, download: bool, verify: bool) -> RawData:
        return sources.read_idx_dataset(name, data_dir, download, verify)

    return read


DATASETS.add(
    DatasetRecord(
        name="fashion_mnist",
        reader=_idx("fashion_mnist"),
        description="Zalando article images, 28x28 grey, 10 classes, 60000 train / 10000 test",
        task="classification",
        input_shape=(1, 28, 28),
        num_classes=10,
        reference="Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747",
        kind="file",
        val_size=5000,
        aliases=("fmnist", "fashion-mnist", "fashionmnist"),
    )
)
DATASETS.add(
    DatasetRecord(
        name="mnist",
        reader=_idx("mnist"),
        description="handwritten digits, 28x28 grey, 10 classes, 60000 train / 10000 test",
        task="classification",
        input_shape=(1, 28, 28),
        num_classes=10,
        reference="LeCun, Bottou, Bengio & Haffner 1998",
        kind="file",
        val_size=5000,
    )
)
DATASETS.add(
    DatasetRecord(
        name="cifar10",
        reader=lambda d, dl, v: sources.read_cifar10_dataset(d, dl, v),
        description="small colour images, 3x32x32, 10 classes, 50000 train / 10000 test",
        task="classification",
        input_shape=(3, 32, 32),
        num_classes=10,
        reference="Krizhevsky 2009, Learning Multiple Layers of Features from Tiny Images",
        kind="file",
        val_size=5000,
        aliases=("cifar-10",),
    )
)
DATASETS.add(
    DatasetRecord(
        name="digits",
        reader=_generated(sources.read_digits),
        description="8x8 grey digits, 10 classes, 1438 train / 359 test (fixed hold-out)",
        task="classification",
        input_shape=(1, 8, 8),
        num_classes=10,
        reference="UCI optical digits (Alpaydin & Kaynak 1998) via sklearn load_digits",
        kind="embedded",
        # Per-pixel standardization: with 64 inputs and many always-blank border pixels
        # it serves MLPs and linear models better than one statistic per channel.
        normalization="feature",
    )
)
DATASETS.add(
    DatasetRecord(
        name="linear_regression",
        reader=_generated(synthetic.linear_regression),
        description="y = x.w* + b* + N(0, 0.5^2) with 10 Gaussian features; 1000/1000",
        task="regression",
        input_shape=(10,),
        num_classes=None,
        reference="generated",
        kind="synthetic",
        normalization="feature",
        aliases=("linreg",),
    )
)
DATASETS.add(
    DatasetRecord(
        name="polynomial_regression",
        reader=_generated(synthetic.polynomial_regression),
        description="30 noisy samples of 0.5 + x - 2x^2 on [-1, 1]; test on a 200-point grid",
        task="regression",
        input_shape=(1,),
        num_classes=None,
        reference="generated (the overfitting demo of Murphy, PML 2022, fig. 4.5)",
        kind="synthetic",
        val_size=0.3,
        normalization="none",
        aliases=("poly",),
    )
)
DATASETS.add(
    DatasetRecord(
        name="two_moons",
        reader=_generated(synthetic.two_moons),
        description="two interleaving half circles, noise 0.2, 2 classes; 1000/1000",
        task="classification",
        input_shape=(2,),
        num_classes=2,
        reference="sklearn.datasets.make_moons",
        kind="synthetic",
        normalization="feature",
        aliases=("moons",),
    )
)
DATASETS.add(
    DatasetRecord(
        name="spirals",
        reader=_generated(synthetic.spirals),
        description="two interleaved spirals of 1.5 turns, noise 0.05, 2 classes; 1000/1000",
        task="classification",
        input_shape=(2,),
        num_classes=2,
        reference="Lang & Witbrock 1988, the two-spirals problem",
        kind="synthetic",
        normalization="feature",
    )
)
DATASETS.add(
    DatasetRecord(
        name="wilson_separable",
        reader=_generated(synthetic.wilson_separable),
        description="separable toy where adaptive methods generalize badly; 200/400, 3003 feats",
        task="classification",
        input_shape=(3 + 5 * 600,),
        num_classes=2,
        reference="Wilson et al. 2017, The Marginal Value of Adaptive Gradient Methods, sec. 3.3",
        kind="synthetic",
        normalization="none",
        aliases=("wilson",),
    )
)


def available() -> list[str]:
    """Registered dataset names (without aliases)."""
    return DATASETS.names(aliases=False)


def read_raw(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    verify: bool = True,
) -> RawData:
    """The decoded arrays of a dataset (cached per process)."""
    return DATASETS.get(name).reader(data_dir, download, verify)


def _to_tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    # torch.tensor copies, which the read-only cached arrays need anyway.
    return torch.tensor(array, dtype=dtype)


def load(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    val_size: float | int | None = None,
    seed: int = 0,
    normalize: bool = True,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    verify: bool = True,
) -> Splits:
    """Load a registered dataset as train/validation/test tensors.

    Args:
        name: a dataset name or alias (``available()`` lists them).
        data_dir: a folder searched first for the files (see ``optimlab.data.locate``).
        download: fetch missing files from the official mirrors (MD5-checked).
        val_size: validation examples taken from the training pool, as a fraction in
            [0, 1) or a count; None uses the dataset's default.
        seed: picks the validation examples; the same seed gives the same split.
            Classification sets are split stratified by class.
        normalize: standardize inputs with statistics of the training split only.
            Images are first scaled to [0, 1] either way.
        device, dtype: where the tensors live and the float type of the inputs.
        verify: check file MD5s (turn off only for files you built yourself).
    """
    record = DATASETS.get(name)
    if not dtype.is_floating_point:
        raise OptimlabError(f"invalid dtype: {dtype}; inputs need a floating-point dtype")
    raw = record.reader(data_dir, download, verify)
    stratify = raw.train_y if record.task == "classification" else None
    train_idx, val_idx = split_indices(
        len(raw.train_y), record.val_size if val_size is None else val_size, seed, stratify
    )

    def inputs(array: np.ndarray) -> torch.Tensor:
        x = _to_tensor(array, dtype)
        return x.div_(raw.scale) if raw.scale != 1.0 else x  # in place: x is a fresh copy

    def targets(array: np.ndarray) -> torch.Tensor:
        return _to_tensor(array, torch.int64 if record.task == "classification" else dtype)

    train_x = inputs(raw.train_x[train_idx])
    val_x = inputs(raw.train_x[val_idx])
    test_x = inputs(raw.test_x)
    mean, std = fit_normalization(train_x, record.normalization if normalize else "none")
    if mean is not None and std is not None:
        for x in (train_x, val_x, test_x):
            x.sub_(mean).div_(std)
    splits = Splits(
        name=record.name,
        train=Split(train_x, targets(raw.train_y[train_idx])),
        val=Split(val_x, targets(raw.train_y[val_idx])),
        test=Split(test_x, targets(raw.test_y)),
        task=record.task,
        input_shape=tuple(raw.train_x.shape[1:]),
        num_classes=record.num_classes,
        class_names=raw.class_names,
        mean=mean,
        std=std,
    )
    return splits if torch.device(device).type == "cpu" else splits.to(device)


def table() -> tuple[list[str], list[list[str]]]:
    """Rows for ``optimlab list datasets``; file datasets show where they were found."""
    headers = ["name", "task", "classes", "input", "status", "description"]
    rows = []
    for record in DATASETS:
        if record.kind == "file":
            found = sources.find(record.name)
            status = f"found ({found.origin})" if found else "missing (--download)"
        else:
            status = record.kind
        rows.append(
            [
                record.name,
                record.task,
                str(record.num_classes or "-"),
                "x".join(map(str, record.input_shape)),
                status,
                record.description,
            ]
        )
    return headers, rows
