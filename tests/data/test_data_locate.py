"""Where dataset files are looked for, the missing-dataset message, and downloads."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from optimlab.data import DatasetNotFound, load, locate, sources
from optimlab.errors import OptimlabError

FMNIST_FILES = [spec.name for spec in sources.FILES["fashion_mnist"]]


def _touch_all(folder: Path, names=FMNIST_FILES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


def test_search_order_data_dir_env_cache_system(isolated, monkeypatch):
    given = _touch_all(isolated / "given")
    env = _touch_all(isolated / "env")
    cache = _touch_all(isolated / "xdg" / "optimlab" / "fashion_mnist")
    system = _touch_all(isolated / "system")
    monkeypatch.setenv("OPTIMLAB_DATA", str(env))
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion_mnist": (str(system),)})

    expected = [(given, "data_dir"), (env, "$OPTIMLAB_DATA"), (cache, "cache"), (system, "system")]
    for folder, origin in expected:
        found = sources.find("fashion_mnist", data_dir=given)
        assert (found.folder, found.origin) == (folder, origin)
        (folder / FMNIST_FILES[0]).unlink()  # the next location must take over
    assert sources.find("fashion_mnist", data_dir=given) is None


def test_cache_defaults_to_home_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert locate.cache_dir() == tmp_path / ".cache" / "optimlab"


def test_dataset_subfolder_and_uncompressed_names(isolated):
    # <data_dir>/<name>/ is tried before <data_dir>/, and unpacked files count.
    _touch_all(isolated / "d" / "fashion_mnist", [n.removesuffix(".gz") for n in FMNIST_FILES])
    found = sources.find("fashion_mnist", data_dir=isolated / "d")
    assert found.folder == isolated / "d" / "fashion_mnist"
    assert found.paths[FMNIST_FILES[0]].name == "train-images-idx3-ubyte"


def test_partial_folder_is_not_a_match(isolated):
    _touch_all(isolated / "d", FMNIST_FILES[:3])
    assert sources.find("fashion_mnist", data_dir=isolated / "d") is None


def test_missing_dataset_message_names_every_way(isolated):
    with pytest.raises(DatasetNotFound) as info:
        load("fashion_mnist", data_dir=isolated / "nowhere")
    message = str(info.value)
    for needle in (
        "'fashion_mnist' not found",
        "download=True",
        "--download",
        "--data-dir",
        "OPTIMLAB_DATA",
        "apt-get install dataset-fashion-mnist",
        str(isolated / "nowhere"),
    ):
        assert needle in message
    assert isinstance(info.value, OptimlabError)
    with pytest.raises(DatasetNotFound) as info:
        load("mnist")
    assert "dataset-fashion-mnist" not in str(info.value)


def test_download_is_atomic_and_verified(tmp_path):
    payload = np.random.default_rng(0).bytes(300_000)
    source = tmp_path / "src.bin"
    source.write_bytes(payload)
    dest = tmp_path / "out" / "file.bin"
    good = hashlib.md5(payload).hexdigest()

    with pytest.raises(OptimlabError, match="expected 0+; nothing was saved"):
        locate.download(source.as_uri(), dest, "0" * 32)
    assert list((tmp_path / "out").iterdir()) == []  # no file, no leftover temp file

    assert locate.download(source.as_uri(), dest, good) == dest
    assert dest.read_bytes() == payload
    assert list((tmp_path / "out").iterdir()) == [dest]


def test_interrupted_download_leaves_nothing(tmp_path):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection lost")
            return super().read(10)

    def opener(request, timeout):
        return Broken(b"y" * 100)

    dest = tmp_path / "file.bin"
    with pytest.raises(ConnectionResetError):
        locate.download("https://example.invalid/file.bin", dest, None, opener=opener)
    assert list(tmp_path.iterdir()) == []


def test_fetch_falls_back_to_next_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.bin").write_bytes(b"hello")
    spec = locate.FileSpec("a.bin", hashlib.md5(b"hello").hexdigest())
    dead = (tmp_path / "dead").as_uri()
    paths = locate.fetch([spec], [dead, mirror.as_uri()], tmp_path / "dest")
    assert paths["a.bin"].read_bytes() == b"hello"
    with pytest.raises(OptimlabError, match=r"could not download b\.bin; tried:"):
        locate.fetch([locate.FileSpec("b.bin", "0" * 32)], [dead], tmp_path / "dest")


def test_load_download_end_to_end(isolated, monkeypatch, files):
    mirror = isolated / "mirror"
    arrays = files["write_mnist_like"](mirror, n_train=12, n_test=4)
    specs = tuple(
        locate.FileSpec(s.name, hashlib.md5((mirror / s.name).read_bytes()).hexdigest())
        for s in sources.FILES["mnist"]
    )
    monkeypatch.setitem(sources.FILES, "mnist", specs)
    monkeypatch.setitem(sources.MIRRORS, "mnist", (mirror.as_uri(),))

    splits = load("mnist", download=True, val_size=2)
    cached = isolated / "xdg" / "optimlab" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(s.name for s in specs)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 2, 4)
    np.testing.assert_array_equal(splits.test.y.numpy(), arrays["t10k-labels-idx1-ubyte.gz"])
    # Found in the cache the second time, with no download asked for.
    assert sources.find("mnist").origin == "cache"
    assert len(load("mnist", val_size=2).train) == 10
