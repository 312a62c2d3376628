"""load(): splits, normalization, verification, caching, and the real Fashion-MNIST."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch

from optimlab.cli import main as cli_main
from optimlab.data import DATASETS, available, load, read_raw, sources
from optimlab.data.locate import FileSpec
from optimlab.data.splits import split_indices
from optimlab.errors import OptimlabError

# From the Fashion-MNIST README (and the project's REFERENCE.md): MD5 of the .gz files.
FMNIST_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def test_fake_mnist_loads_with_shapes_and_types(isolated, files):
    arrays = files["write_mnist_like"](isolated / "d", n_train=20, n_test=6)
    splits = load("mnist", data_dir=isolated / "d", val_size=5, verify=False, normalize=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (15, 5, 6)
    assert splits.train.x.shape == (15, 1, 28, 28) and splits.train.x.dtype == torch.float32
    assert splits.train.y.dtype == torch.int64
    assert splits.input_shape == (1, 28, 28) and splits.num_classes == 10
    # Unnormalized images are the bytes divided by 255, in the file's order.
    expected = arrays["t10k-images-idx3-ubyte.gz"].astype(np.float32) / 255
    np.testing.assert_allclose(splits.test.x[:, 0].numpy(), expected, rtol=1e-6)


def test_verification_rejects_unofficial_files(isolated, files):
    files["write_mnist_like"](isolated / "d")
    with pytest.raises(OptimlabError, match=r"train-images-idx3-ubyte\.gz: MD5 does not match"):
        load("mnist", data_dir=isolated / "d")


def test_recompressed_copy_passes_on_content_md5(isolated, files, monkeypatch):
    # Same content, different gzip header: the archive MD5 differs, the content MD5 not.
    folder = isolated / "d"
    arrays = files["write_mnist_like"](folder)
    specs = []
    for spec in sources.FILES["mnist"]:
        content = gzip.decompress((folder / spec.name).read_bytes())
        official = gzip.compress(content, mtime=123456)  # "the published file"
        assert official != (folder / spec.name).read_bytes()
        md5 = hashlib.md5
        specs.append(FileSpec(spec.name, md5(official).hexdigest(), md5(content).hexdigest()))
    monkeypatch.setitem(sources.FILES, "mnist", tuple(specs))
    splits = load("mnist", data_dir=folder, val_size=0)
    np.testing.assert_array_equal(splits.train.y.numpy(), arrays["train-labels-idx1-ubyte.gz"])


def test_split_is_a_pure_function_of_seed_and_stratified():
    a_train, a_val = split_indices(100, 0.2, seed=3)
    b_train, b_val = split_indices(100, 0.2, seed=3)
    c_train, c_val = split_indices(100, 0.2, seed=4)
    np.testing.assert_array_equal(a_val, b_val)
    assert not np.array_equal(a_val, c_val)
    assert len(a_val) == 20
    assert sorted(np.concatenate([a_train, a_val]).tolist()) == list(range(100))
    labels = np.repeat([0, 1, 2], [70, 20, 10])
    for n_val in (1, 7, 33):
        train, val = split_indices(100, n_val, seed=1, labels=labels)
        assert len(val) == n_val and sorted([*train, *val]) == list(range(100))
        share = np.bincount(labels[val], minlength=3) - n_val * np.array([0.7, 0.2, 0.1])
        assert np.abs(share).max() <= 1  # every class keeps its share, to one example
    s1, s2 = load("digits", seed=5), load("digits", seed=5)
    assert torch.equal(s1.val.x, s2.val.x) and torch.equal(s1.train.y, s2.train.y)
    assert not torch.equal(load("digits", seed=6).val.y, s1.val.y)


def test_normalization_statistics_come_from_train_only(isolated, files):
    folder = isolated / "d"
    arrays = files["write_mnist_like"](folder, n_train=30, n_test=5)
    labels = arrays["train-labels-idx1-ubyte.gz"].astype(np.int64)
    train_idx, val_idx = split_indices(30, 10, seed=2, labels=labels)
    pool = arrays["train-images-idx3-ubyte.gz"].astype(np.float64) / 255
    mean, std = pool[train_idx].mean(), pool[train_idx].std()
    splits = load("mnist", data_dir=folder, val_size=10, seed=2, verify=False)
    assert splits.mean.item() == pytest.approx(mean, rel=1e-6)
    assert splits.std.item() == pytest.approx(std, rel=1e-6)
    expected_test = (arrays["t10k-images-idx3-ubyte.gz"] / 255 - mean) / std
    np.testing.assert_allclose(splits.test.x[:, 0].numpy(), expected_test, atol=1e-5)
    # Changing the validation and test images leaves the statistics unchanged.
    images = arrays["train-images-idx3-ubyte.gz"].copy()
    images[val_idx] = 255
    files["write_idx"](folder / "train-images-idx3-ubyte.gz", images)
    files["write_idx"](folder / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    again = load("mnist", data_dir=folder, val_size=10, seed=2, verify=False)
    assert again.mean.item() == pytest.approx(mean, rel=1e-6)
    assert torch.equal(again.train.x, splits.train.x)


def test_channel_statistics_of_cifar_like_data(isolated, files, monkeypatch):
    written = files["write_cifar_folder"](isolated / "c" / "cifar-10-batches-py", per_batch=4)
    splits = load("cifar10", data_dir=isolated / "c", val_size=0, verify=False)
    pool = np.concatenate([written[f"data_batch_{k}"][0] for k in range(1, 6)])
    pool = pool.reshape(-1, 3, 1024) / 255.0
    np.testing.assert_allclose(splits.mean.flatten().numpy(), pool.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(splits.std.flatten().numpy(), pool.std(axis=(0, 2)), rtol=1e-5)
    per_channel = splits.train.x.transpose(0, 1).reshape(3, -1)
    np.testing.assert_allclose(per_channel.mean(1).numpy(), 0, atol=1e-5)
    assert splits.class_names[0] == "airplane"


def test_val_size_validation():
    for bad in (-1, 1.0, 1.5, 10_000, True, "0.1"):
        with pytest.raises(OptimlabError, match="invalid val_size"):
            load("digits", val_size=bad)
    assert len(load("digits", val_size=0).val) == 0
    assert len(load("digits", val_size=100).val) == 100


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(OptimlabError, match="unknown dataset 'imagenet'.*fashion_mnist"):
        load("imagenet")
    assert DATASETS.get("FMNIST").name == "fashion_mnist"  # aliases, any case


def test_decoded_arrays_are_cached_and_read_only():
    first, second = read_raw("digits"), read_raw("digits")
    assert first is second
    assert not first.train_x.flags.writeable
    splits = load("digits")
    before = splits.train.x.clone()
    splits.train.x.add_(1.0)  # tensors are copies: the cache is untouched
    assert torch.equal(load("digits").train.x, before)


def test_dtype_and_digits_facts():
    splits = load("digits", dtype=torch.float64, normalize=False)
    assert splits.train.x.dtype == torch.float64
    total = len(splits.train) + len(splits.val) + len(splits.test)
    assert total == 1797  # scikit-learn's digits
    assert float(splits.train.x.max()) == 1.0 and float(splits.train.x.min()) == 0.0
    with pytest.raises(OptimlabError, match="invalid dtype"):
        load("digits", dtype=torch.int32)


@pytest.mark.parametrize("name", [n for n in available() if DATASETS.get(n).kind == "synthetic"])
def test_synthetic_sets_load_deterministically(name):
    a, b = load(name, seed=0), load(name, seed=0)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.train.y, b.train.y)
    assert a.train.x.shape[1:] == DATASETS.get(name).input_shape
    assert a.task == DATASETS.get(name).task
    if a.task == "classification":
        assert set(a.train.y.unique().tolist()) == set(range(a.num_classes))
    else:
        assert a.train.y.ndim == 2 and a.train.y.dtype == torch.float32


def test_wilson_toy_construction_and_claims():
    raw = read_raw("wilson_separable")
    x, y = raw.train_x.astype(np.float64), raw.train_y
    signs = 2.0 * y - 1.0
    np.testing.assert_array_equal(x[:, 0], signs)
    assert (x[:, 1:3] == 1).all()
    private = x[:, 3:]
    np.testing.assert_array_equal(private.sum(1), np.where(signs > 0, 1, 5))
    assert (private.sum(0) <= 1).all()  # no private feature is shared
    assert (raw.test_x[:, 3 : 3 + 5 * len(y)] == 0).all()  # test points use other features
    # The minimum-norm interpolant of X w = y generalizes perfectly ...
    w_min_norm = np.linalg.pinv(x) @ signs
    test_signs = 2.0 * raw.test_y - 1.0
    assert (np.sign(raw.test_x @ w_min_norm) == test_signs).all()
    # ... while w = sign(X^T y), where adaptive methods go, labels all with the majority.
    w_sign = np.sign(x.T @ signs)
    predictions = np.sign(raw.test_x @ w_sign)
    assert (predictions == np.sign(signs.sum())).all()


def test_fashion_mnist_from_the_system_location():
    found = sources.find("fashion_mnist")
    if found is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    for spec in sources.FILES["fashion_mnist"]:
        path = found.paths[spec.name]
        raw = path.read_bytes()
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        # Either the published archive, or a copy whose content is the published one.
        same_archive = hashlib.md5(raw).hexdigest() == FMNIST_GZ_MD5[spec.name]
        same_content = hashlib.md5(content).hexdigest() == spec.content_md5
        assert same_archive or same_content, path
    splits = load("fashion_mnist", val_size=0, normalize=False)
    assert (len(splits.train), len(splits.test)) == (60000, 10000)
    # Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    assert splits.train.y.bincount().tolist() == [6000] * 10
    assert splits.test.y.bincount().tolist() == [1000] * 10
    assert splits.class_names[0] == "T-shirt/top" and splits.class_names[9] == "Ankle boot"


def test_cli_lists_datasets(capsys):
    assert cli_main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    for name in available():
        assert name in out
