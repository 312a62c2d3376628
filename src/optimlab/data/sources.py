"""The real datasets: Fashion-MNIST, MNIST and CIFAR-10 from their files, and
scikit-learn's digits (embedded, nothing to download).

File names, MD5s, mirrors and system folders live in the module-level tables below,
the one place that lists them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from optimlab.data.formats import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    gunzip_if_needed,
    md5_bytes,
    parse_idx,
    read_bytes,
    read_cifar10,
)
from optimlab.data.locate import (
    ENV_VAR,
    FileSpec,
    Location,
    download_target,
    fetch,
    find_in,
    locate,
    search_dirs,
)
from optimlab.data.raw import RawData
from optimlab.errors import OptimlabError


class DatasetNotFound(OptimlabError):
    """The files of a dataset are in none of the searched folders."""


def _idx_files(gz_md5: Sequence[str], raw_md5: Sequence[str]) -> tuple[FileSpec, ...]:
    stems = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    return tuple(
        FileSpec(f"{stem}.gz", gz, raw, (stem,))
        for stem, gz, raw in zip(stems, gz_md5, raw_md5, strict=True)
    )


# MD5s of the files as published (.gz) and of their decompressed content; the content
# digests let a recompressed copy (Debian's package ships one) or an unpacked file pass.
FILES: dict[str, tuple[FileSpec, ...]] = {
    "fashion_mnist": _idx_files(
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        (
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "9018921c3c673c538a1fc5bad174d6f9",
            "8181f5470baa50b63fa0f6fddb340f0a",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ),
    ),
    "mnist": _idx_files(
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        (
            "6bbc9ace898e44ae57da46a324031adb",
            "a25bea736e30d166cdddb491f175f624",
            "2646ac647ad5339dbf082846283269ea",
            "27ae3e4e09519cfbb04c329615203637",
        ),
    ),
    # The archive, or the folder it unpacks to.
    "cifar10": (
        FileSpec(
            "cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
            alternatives=("cifar-10-batches-py", "data_batch_1"),
        ),
    ),
}

CIFAR10_MEMBER_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

MIRRORS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}

SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
}

# Folder names other tools use, tried under each base folder after <base>/<name>.
SUBFOLDERS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("fashion-mnist", "FashionMNIST/raw"),
    "mnist": ("MNIST/raw",),
    "cifar10": ("cifar-10",),
}

# How to get a dataset besides downloading it, for the missing-dataset message.
INSTALL_HINTS: dict[str, str] = {
    "fashion_mnist": (
        "on Debian/Ubuntu, `apt-get install dataset-fashion-mnist` installs the files "
        "in /usr/share/datasets/fashion-mnist/"
    ),
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def find(name: str, data_dir: str | os.PathLike[str] | None = None) -> Location | None:
    """Where the files of ``name`` are, in search order; None when nowhere."""
    return locate(name, FILES[name], data_dir, SYSTEM_DIRS.get(name, ()), SUBFOLDERS.get(name, ()))


def missing_error(name: str, data_dir: str | os.PathLike[str] | None = None) -> DatasetNotFound:
    """One message naming every way to get the dataset."""
    files = ", ".join(spec.name for spec in FILES[name])
    looked = "; ".join(
        f"{origin}: {path}" for origin, path in search_dirs(data_dir, SYSTEM_DIRS.get(name, ()))
    )
    ways = [
        f"pass download=True (CLI: --download) to fetch it from {MIRRORS[name][0]} "
        f"into {download_target(name, data_dir)}",
        f"put the files in a folder and pass data_dir=FOLDER (CLI: --data-dir FOLDER) "
        f"or set {ENV_VAR}=FOLDER",
    ]
    if name in INSTALL_HINTS:
        ways.append(INSTALL_HINTS[name])
    return DatasetNotFound(
        f"dataset {name!r} not found (needs {files}; looked in {looked}). To get it: "
        + "; or ".join(ways)
    )


def resolve(
    name: str, data_dir: str | os.PathLike[str] | None = None, download: bool = False
) -> Location:
    """Find the files of ``name``, downloading them when allowed; raise when absent."""
    found = find(name, data_dir)
    if found is not None:
        return found
    if not download:
        raise missing_error(name, data_dir)
    folder = download_target(name, data_dir)
    fetch(FILES[name], MIRRORS[name], folder)
    paths = find_in(folder, FILES[name])
    assert paths is not None  # fetch either stored every file or raised
    return Location(folder, paths, "download")


def _stamp(paths: Sequence[Path]) -> tuple[tuple[int, int], ...]:
    """Size and modification time of each path, so a replaced file is read afresh."""
    stats = [p.stat() for p in paths]
    return tuple((s.st_size, s.st_mtime_ns) for s in stats)


def read_verified(path: Path, spec: FileSpec, verify: bool = True) -> bytes:
    """The (decompressed) content of one published file, checked against its MD5s."""
    if not verify:
        return read_bytes(path)
    raw = path.read_bytes()
    if md5_bytes(raw) == spec.md5:
        return gunzip_if_needed(raw, str(path))
    content = gunzip_if_needed(raw, str(path))
    if spec.content_md5 is not None and md5_bytes(content) == spec.content_md5:
        return content
    raise OptimlabError(
        f"{path}: MD5 does not match the official {spec.name} (expected {spec.md5} for the "
        f"published file or {spec.content_md5} for its content); the file is corrupt or "
        "not the official one: delete it and fetch it again (download=True / --download), "
        "or pass verify=False for files you built yourself"
    )


@functools.lru_cache(maxsize=8)
def _decode_idx_set(name: str, paths: tuple[Path, ...], verify: bool, stamp: object) -> RawData:
    del stamp  # part of the cache key only
    specs = FILES[name]
    arrays = []
    for path, spec in zip(paths, specs, strict=True):
        magic = IDX_LABELS_MAGIC if "labels" in spec.name else IDX_IMAGES_MAGIC
        arrays.append(parse_idx(read_verified(path, spec, verify), str(path), magic))
    train_x, train_y, test_x, test_y = arrays
    for x, y, px, py in (
        (train_x, train_y, paths[0], paths[1]),
        (test_x, test_y, paths[2], paths[3]),
    ):
        if x.shape[0] != y.shape[0]:
            raise OptimlabError(f"{px} has {x.shape[0]} images but {py} has {y.shape[0]} labels")
    classes = FASHION_MNIST_CLASSES if name == "fashion_mnist" else tuple(map(str, range(10)))
    return RawData(
        train_x=train_x[:, None],
        train_y=train_y.astype(np.int64),
        test_x=test_x[:, None],
        test_y=test_y.astype(np.int64),
        scale=255.0,
        class_names=classes,
        origin=str(paths[0].parent),
    )


def read_idx_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    verify: bool = True,
) -> RawData:
    """Fashion-MNIST or MNIST: four IDX files, 60000 training and 10000 test images."""
    location = resolve(name, data_dir, download)
    paths = tuple(location.paths[spec.name] for spec in FILES[name])
    return _decode_idx_set(name, paths, verify, _stamp(paths))


@functools.lru_cache(maxsize=2)
def _decode_cifar10(path: Path, verify: bool, stamp: object) -> RawData:
    del stamp
    archive_md5 = FILES["cifar10"][0].md5 if verify else None
    member_md5 = CIFAR10_MEMBER_MD5 if verify else None
    data = read_cifar10(path, archive_md5=archive_md5, member_md5=member_md5)
    names = tuple(data["label_names"]) or tuple(map(str, range(10)))  # type: ignore[arg-type]
    return RawData(
        train_x=data["train_x"],  # type: ignore[arg-type]
        train_y=data["train_y"],  # type: ignore[arg-type]
        test_x=data["test_x"],  # type: ignore[arg-type]
        test_y=data["test_y"],  # type: ignore[arg-type]
        scale=255.0,
        class_names=names,
        origin=str(path),
    )


def read_cifar10_dataset(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    verify: bool = True,
) -> RawData:
    """CIFAR-10 from the python-version archive or its unpacked folder."""
    location = resolve("cifar10", data_dir, download)
    path = location.paths["cifar-10-python.tar.gz"]
    if path.name == "data_batch_1":  # data_dir named the unpacked folder itself
        path = path.parent
    return _decode_cifar10(path, verify, _stamp([path]))


# The digits have no official test split: a fixed 20% is held out, the same for every
# seed, so that test numbers are comparable across runs.
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_STREAM = 0xD161


@functools.lru_cache(maxsize=1)
def read_digits() -> RawData:
    """scikit-learn's 1797 8x8 digit images (values 0..16), embedded in the package."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32)[:, None]  # (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    perm = np.random.default_rng(DIGITS_TEST_STREAM).permutation(len(labels))
    n_test = int(round(DIGITS_TEST_FRACTION * len(labels)))
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return RawData(
        train_x=images[train],
        train_y=labels[train],
        test_x=images[test],
        test_y=labels[test],
        scale=16.0,
        class_names=tuple(map(str, range(10))),
        origin="scikit-learn",
    )
