"""Helpers that write small files in the true on-disk formats of the datasets."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding written from the format description: a big-endian int32 magic
    (0, 0, type code, number of dimensions), big-endian int32 sizes, big-endian data."""
    code = IDX_CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool | None = None, mtime: int = 0) -> Path:
    data = idx_bytes(array)
    if gz if gz is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=mtime)
    path.write_bytes(data)
    return path


def write_mnist_like(folder: Path, n_train: int = 20, n_test: int = 6, seed: int = 0) -> dict:
    """Four gzipped IDX files named like the originals, with random content."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / name, array)
    return arrays


def cifar_batch_bytes(data: np.ndarray, labels: list[int], bytes_keys: bool = False) -> bytes:
    """A CIFAR-10 python batch: a pickled dict with 'data' uint8 (N, 3072) rows of 1024
    red, 1024 green, 1024 blue values, and 'labels'."""
    batch = {"batch_label": "test batch", "labels": labels, "data": data, "filenames": []}
    if bytes_keys:  # how Python 2 str keys come back when read as bytes
        batch = {k.encode(): v for k, v in batch.items()}
    return pickle.dumps(batch, protocol=2)


def write_cifar_folder(folder: Path, per_batch: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        (folder / name).write_bytes(cifar_batch_bytes(data, labels, bytes_keys=i % 2 == 1))
        out[name] = (data, labels)
    names = ["airplane", "automobile", "bird", "cat", "deer"] + list("56789")
    meta = {"label_names": names, "num_cases_per_batch": per_batch}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return out


@pytest.fixture
def files() -> dict[str, Callable]:
    return {
        "idx_bytes": idx_bytes,
        "write_idx": write_idx,
        "write_mnist_like": write_mnist_like,
        "cifar_batch_bytes": cifar_batch_bytes,
        "write_cifar_folder": write_cifar_folder,
    }


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $OPTIMLAB_DATA, a private cache folder, and no system folders."""
    from optimlab.data import sources

    monkeypatch.delenv("OPTIMLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {})
    return tmp_path


@pytest.fixture
def cifar_archive(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder holding cifar-10-python.tar.gz in the true format (5 training
    batches and a test batch of 4 images each), registered under its own MD5."""
    from optimlab.data import sources
    from optimlab.data.locate import FileSpec

    write_cifar_folder(isolated / "unpacked" / "cifar-10-batches-py", per_batch=4)
    archive = isolated / "data" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(isolated / "unpacked" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    spec = sources.FILES["cifar10"][0]
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(sources.FILES, "cifar10", (FileSpec(spec.name, md5, spec.alternatives),))
    return archive.parent
