"""IDX and CIFAR-10 readers on small files written in the true formats, and MD5s."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import tarfile

import numpy as np
import pytest

from optimlab.data import formats
from optimlab.errors import OptimlabError


@pytest.mark.parametrize("gz", [False, True])
def test_idx_images_and_labels_round_trip(tmp_path, files, gz):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    p_img = files["write_idx"](tmp_path / f"img{suffix}", images, gz=gz)
    p_lab = files["write_idx"](tmp_path / f"lab{suffix}", labels, gz=gz)
    np.testing.assert_array_equal(formats.read_idx(p_img, formats.IDX_IMAGES_MAGIC), images)
    np.testing.assert_array_equal(formats.read_idx(p_lab, formats.IDX_LABELS_MAGIC), labels)


def test_idx_magic_numbers_are_the_documented_ones(files):
    # 2051 = 0x00000803 (uint8, 3 dims), 2049 = 0x00000801 (uint8, 1 dim).
    assert files["idx_bytes"](np.zeros((1, 2, 2), np.uint8))[:4] == (2051).to_bytes(4, "big")
    assert files["idx_bytes"](np.zeros(3, np.uint8))[:4] == (2049).to_bytes(4, "big")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32])
def test_idx_other_types_are_big_endian(tmp_path, files, dtype):
    array = (np.arange(12).reshape(3, 4) - 5).astype(dtype)
    path = files["write_idx"](tmp_path / "a.idx", array)
    out = formats.read_idx(path)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, array)


def test_gzip_detected_by_content_not_name(tmp_path, files):
    array = np.arange(6, dtype=np.uint8)
    path = files["write_idx"](tmp_path / "labels-without-suffix", array, gz=True)
    np.testing.assert_array_equal(formats.read_idx(path), array)


def test_wrong_magic_names_file_and_expected(tmp_path, files):
    path = files["write_idx"](tmp_path / "labels.idx", np.zeros(4, np.uint8))
    with pytest.raises(OptimlabError, match=r"labels\.idx.*2049.*expected 2051"):
        formats.read_idx(path, formats.IDX_IMAGES_MAGIC)


def test_garbage_is_not_idx(tmp_path):
    path = tmp_path / "junk.bin"
    path.write_bytes(b"PK\x03\x04 not an idx file at all")
    with pytest.raises(OptimlabError, match=r"junk\.bin: not an IDX file"):
        formats.read_idx(path)


def test_truncated_idx_names_file_and_sizes(tmp_path, files):
    data = files["idx_bytes"](np.zeros((3, 4, 4), np.uint8))
    path = tmp_path / "cut.idx"
    path.write_bytes(data[:-5])
    with pytest.raises(OptimlabError, match=r"cut\.idx: truncated: 43 data bytes, expected 48"):
        formats.read_idx(path)


def test_trailing_bytes_are_an_error(tmp_path, files):
    path = tmp_path / "long.idx"
    path.write_bytes(files["idx_bytes"](np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(OptimlabError, match=r"long\.idx: has trailing bytes"):
        formats.read_idx(path)


def test_truncated_gzip_names_file(tmp_path, files):
    data = gzip.compress(files["idx_bytes"](np.arange(100, dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OptimlabError, match=r"cut\.gz: corrupt or truncated gzip"):
        formats.read_idx(path)


def test_md5_helpers(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert formats.md5_file(empty) == "d41d8cd98f00b204e9800998ecf8427e"  # MD5 of nothing
    blob = np.random.default_rng(0).bytes(3_000_000)  # spans several read chunks
    path = tmp_path / "blob"
    path.write_bytes(blob)
    expected = hashlib.md5(blob).hexdigest()
    assert formats.md5_file(path, chunk_size=1 << 16) == expected
    assert formats.verify_md5(path, [expected.upper(), "0" * 32]) == expected
    with pytest.raises(OptimlabError, match=r"blob: MD5 .* does not match"):
        formats.verify_md5(path, "0" * 32)


def test_cifar_batch_layout_is_rgb_planes(files):
    # Row i: 1024 red values, then 1024 green, then 1024 blue, each row-major 32x32.
    data = np.zeros((2, 3072), np.uint8)
    data[1, 0] = 10  # red, (0, 0)
    data[1, 1024 + 33] = 20  # green, (1, 1)
    data[1, 2048 + 1023] = 30  # blue, (31, 31)
    x, y = formats.parse_cifar_batch(files["cifar_batch_bytes"](data, [3, 7]), "batch")
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.uint8
    assert (x[1, 0, 0, 0], x[1, 1, 1, 1], x[1, 2, 31, 31]) == (10, 20, 30)
    assert int(x.sum()) == 60
    assert y.tolist() == [3, 7] and y.dtype == np.int64


def test_cifar_folder_and_archive_read_the_same(tmp_path, files):
    written = files["write_cifar_folder"](tmp_path / "cifar-10-batches-py", per_batch=3)
    from_dir = formats.read_cifar10(tmp_path)  # the parent of the unpacked folder
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    from_tar = formats.read_cifar10(archive)
    expected_train = np.concatenate([written[f"data_batch_{k}"][0] for k in range(1, 6)])
    for got in (from_dir, from_tar):
        assert got["train_x"].shape == (15, 3, 32, 32)
        np.testing.assert_array_equal(got["train_x"].reshape(15, -1), expected_train)
        assert got["test_y"].tolist() == written["test_batch"][1]
        assert got["label_names"][:2] == ["airplane", "automobile"]


def test_cifar_member_md5_checked(tmp_path, files):
    files["write_cifar_folder"](tmp_path, per_batch=2)
    with pytest.raises(OptimlabError, match=r"data_batch_1 has MD5 .*expected 0+"):
        formats.read_cifar10(tmp_path, member_md5={"data_batch_1": "0" * 32})


def test_cifar_missing_batch_and_corrupt_archive(tmp_path, files):
    files["write_cifar_folder"](tmp_path / "cifar", per_batch=2)
    (tmp_path / "cifar" / "data_batch_3").unlink()
    with pytest.raises(OptimlabError, match="batches missing: data_batch_3"):
        formats.read_cifar10(tmp_path / "cifar")
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar", arcname="cifar-10-batches-py")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(OptimlabError, match=r"cifar\.tar\.gz: corrupt or truncated"):
        formats.read_cifar10(archive)


def test_cifar_wrong_shape_names_file(files):
    bad = files["cifar_batch_bytes"](np.zeros((2, 100), np.uint8), [0, 1])
    with pytest.raises(OptimlabError, match=r"data_batch_9: CIFAR 'data' is uint8 \(2, 100\)"):
        formats.parse_cifar_batch(bad, "data_batch_9")


class _Sneaky:
    def __reduce__(self):
        return (len, ([],))  # harmless, but a global no CIFAR batch holds


def test_cifar_unpickler_refuses_foreign_objects():
    data = pickle.dumps({"data": _Sneaky(), "labels": []}, protocol=2)
    with pytest.raises(
        OptimlabError, match=r"evil: not a CIFAR python pickle.*unexpected object .*len"
    ):
        formats.parse_cifar_batch(data, "evil")
