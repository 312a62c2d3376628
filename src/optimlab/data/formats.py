"""Readers for the on-disk formats of the image datasets: IDX (MNIST family) and the
CIFAR-10 python pickles, plus MD5 helpers.

Readers return numpy arrays and raise ``OptimlabError`` naming the file and what was
expected whenever a file is not what it claims to be.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from optimlab.errors import OptimlabError

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension (N,)

GZIP_MAGIC = b"\x1f\x8b"

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_META = "batches.meta"
CIFAR10_ROW = 3 * 32 * 32  # 1024 red, then 1024 green, then 1024 blue values per row


def md5_bytes(data: bytes) -> str:
    """The hex MD5 digest of ``data``."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """The hex MD5 digest of a file, read in chunks so large archives need little memory."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: str | os.PathLike[str], expected: str | Iterable[str]) -> str:
    """Return the file's MD5 if it is one of ``expected``; otherwise raise naming the file."""
    wanted = {expected} if isinstance(expected, str) else set(expected)
    actual = md5_file(path)
    if actual not in {w.lower() for w in wanted}:
        raise OptimlabError(
            f"{path}: MD5 {actual} does not match the expected {' or '.join(sorted(wanted))}; "
            "the file is corrupt or not the official one: delete it and fetch it again "
            "(download=True / --download)"
        )
    return actual


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The content of a file, gunzipped when it starts with the gzip magic bytes."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise OptimlabError(f"{path}: cannot read: {err.strerror or err}") from None
    return gunzip_if_needed(raw, str(path))


def gunzip_if_needed(raw: bytes, source: str) -> bytes:
    """``raw`` decompressed if it is gzip data, else unchanged; ``source`` names the file.

    Detection goes by content, not by the ``.gz`` suffix, so a decompressed file that
    kept its old name still reads.
    """
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise OptimlabError(
            f"{source}: corrupt or truncated gzip data ({err}); delete it and fetch it again"
        ) from None


def parse_idx(data: bytes, source: str, expected_magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes into an array; ``source`` names the file in error messages.

    The header is a big-endian int32 magic (two zero bytes, a type code, the number of
    dimensions), then one big-endian int32 size per dimension, then the data.
    """
    if len(data) < 4:
        raise OptimlabError(f"{source}: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    if data[:2] != b"\x00\x00" or type_code not in IDX_DTYPES or ndim == 0:
        want = f"{expected_magic} (0x{expected_magic:08x})" if expected_magic else "an IDX magic"
        raise OptimlabError(
            f"{source}: not an IDX file: magic number {magic} (0x{magic:08x}), expected {want}"
        )
    if expected_magic is not None and magic != expected_magic:
        raise OptimlabError(
            f"{source}: IDX magic number {magic} (0x{magic:08x}), expected {expected_magic} "
            f"(0x{expected_magic:08x})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise OptimlabError(f"{source}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise OptimlabError(
            f"{source}: {what}: {got} data bytes, expected {expected} for shape {shape} "
            f"of {dtype.name}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike[str], expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped or not (see ``parse_idx``)."""
    return parse_idx(read_bytes(path), str(path), expected_magic)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds (dicts, lists, numpy arrays).

    A pickle can run arbitrary code; refusing every other global keeps a tampered
    download from doing so.
    """

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")


def _unpickle(data: bytes, source: str) -> dict[str, object]:
    try:
        obj = _CifarUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as err:  # pickle raises many types for garbage input
        raise OptimlabError(f"{source}: not a CIFAR python pickle ({err})") from None
    if not isinstance(obj, dict):
        raise OptimlabError(f"{source}: expected a pickled dict, found {type(obj).__name__}")
    # The original files were written by Python 2; keys may come back as bytes.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def parse_cifar_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 batch into ``(x uint8 (N, 3, 32, 32), y int64 (N,))``."""
    batch = _unpickle(data, source)
    if "data" not in batch or "labels" not in batch:
        raise OptimlabError(
            f"{source}: CIFAR batch lacks 'data' or 'labels' (keys: {sorted(batch)})"
        )
    x = np.asarray(batch["data"])
    y = np.asarray(batch["labels"], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != CIFAR10_ROW:
        raise OptimlabError(
            f"{source}: CIFAR 'data' is {x.dtype} {x.shape}, expected uint8 (N, {CIFAR10_ROW})"
        )
    if y.shape != (x.shape[0],):
        raise OptimlabError(f"{source}: {y.shape[0]} labels for {x.shape[0]} images")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise OptimlabError(f"{source}: labels outside 0..9")
    return x.reshape(-1, 3, 32, 32), y


def parse_cifar_meta(data: bytes, source: str) -> list[str]:
    """The class names listed in ``batches.meta``."""
    meta = _unpickle(data, source)
    names = meta.get("label_names")
    if not isinstance(names, list):
        raise OptimlabError(f"{source}: batches.meta lacks 'label_names'")
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


def _cifar_members(path: Path) -> dict[str, bytes]:
    """The batch files of a CIFAR-10 folder or ``.tar.gz`` archive, by base name."""
    wanted = {*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH, CIFAR10_META}
    found: dict[str, bytes] = {}
    if path.is_dir():
        folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
        for name in wanted:
            if (folder / name).is_file():
                found[name] = (folder / name).read_bytes()
        return found
    try:
        # Read members straight from the archive: nothing is extracted to disk.
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        found[base] = handle.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise OptimlabError(
            f"{path}: corrupt or truncated CIFAR-10 archive ({err}); delete it and fetch it again"
        ) from None
    return found


def read_cifar10(
    path: str | os.PathLike[str],
    *,
    archive_md5: str | None = None,
    member_md5: dict[str, str] | None = None,
) -> dict[str, object]:
    """Read CIFAR-10 from the python-version archive or its extracted folder.

    Returns a dict with ``train_x`` (50000, 3, 32, 32) uint8, ``train_y`` int64,
    ``test_x``, ``test_y`` and ``label_names`` (batch counts follow the files found, so
    small files written in the same format read too). When given, ``archive_md5`` is
    checked against a ``.tar.gz`` and ``member_md5`` (base name -> MD5) against the
    files of an extracted folder.
    """
    path = Path(path)
    if archive_md5 is not None and path.is_file():
        verify_md5(path, archive_md5)
    members = _cifar_members(path)
    if member_md5 is not None and path.is_dir():
        for name, want in member_md5.items():
            if name in members and md5_bytes(members[name]) != want:
                raise OptimlabError(
                    f"{path}: {name} has MD5 {md5_bytes(members[name])}, expected {want}; "
                    "the file is corrupt or not the official one: delete it and fetch it again "
                    "(download=True / --download)"
                )
    needed = [*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH]
    missing = [name for name in needed if name not in members]
    if missing:
        raise OptimlabError(f"{path}: CIFAR-10 batches missing: {', '.join(missing)}")
    train = [parse_cifar_batch(members[n], f"{path}:{n}") for n in CIFAR10_TRAIN_BATCHES]
    test_x, test_y = parse_cifar_batch(members[CIFAR10_TEST_BATCH], f"{path}:test_batch")
    names = (
        parse_cifar_meta(members[CIFAR10_META], f"{path}:{CIFAR10_META}")
        if CIFAR10_META in members
        else []
    )
    return {
        "train_x": np.concatenate([x for x, _ in train]),
        "train_y": np.concatenate([y for _, y in train]),
        "test_x": test_x,
        "test_y": test_y,
        "label_names": names,
    }
