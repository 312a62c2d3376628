"""Atomic writes and small file helpers that every layer may use.

A write goes to a temporary file beside the target, which is then renamed over it: a
reader (or a rerun after a kill) sees either the old file or the new one, never a
half-written one, because ``os.replace`` is atomic within one file system.

``check_output_dir`` and ``check_output_file`` vet an output location before any work
starts, so that a bad ``--out`` fails in a second with one line, not after an hour of
training with a traceback.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import OptimlabError

# Linux pseudo file systems: they hold kernel and device entries, never results. Root
# may even create files in /dev, and an atomic rename over /dev/null would replace it.
SYSTEM_DIRS = ("/proc", "/sys", "/dev")
# ...except the memory-backed scratch folder under /dev, a fine place for results.
SCRATCH_DIRS = ("/dev/shm",)


def file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask).

    ``mkstemp`` makes its file private (0o600); a report or a plot the user asked for
    should be as readable as any file they create.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders; return the path.

    ``durable=False`` skips the fsync: the file is still never seen half-written after a
    killed process, only a machine crash may lose it (fine for files rebuilt on resume).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                # Without fsync a crash of the machine (not just the process) could
                # leave the renamed file empty on some file systems.
                os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def _nearest_existing(path: Path, option: str) -> Path:
    """The closest of ``path`` and its parents that exists; it must be a directory."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise OptimlabError(
                    f"invalid {option} {str(path)!r}: {str(candidate)!r} is a file, not a "
                    "folder; give a path in a writable folder"
                )
            return candidate
    # Only a relative path from a working directory that was deleted gets here.
    raise OptimlabError(
        f"invalid {option} {str(path)!r}: none of its folders exists; give a path in a "
        "writable folder"
    )


def _check_writable_folder(base: Path, path: Path, option: str) -> None:
    """Raise unless files can be created in the existing directory ``base``."""
    resolved = base.resolve()

    def under(folder: str) -> bool:
        return resolved == Path(folder) or Path(folder) in resolved.parents

    for system in SYSTEM_DIRS:
        if under(system) and not any(under(scratch) for scratch in SCRATCH_DIRS):
            raise OptimlabError(
                f"invalid {option} {str(path)!r}: {str(base)!r} is in {system}, a system "
                "folder of kernel or device entries; give a path in a writable folder"
            )
    # Permission bits do not tell the whole story (root ignores them, a read-only mount
    # refuses anyway), so create an unnamed scratch file there and let the system answer.
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OptimlabError(
            f"invalid {option} {str(path)!r}: cannot create files in {str(base)!r} "
            f"({reason}); give a path in a writable folder"
        ) from None


def check_output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a Path if it is, or can be made, a folder to write into.

    Missing folders are fine (they are created on the first write); an existing file at
    ``path`` or above it, a read-only or system location, or a folder where this process
    cannot create files raise ``OptimlabError`` naming ``option``. Nothing is left behind.
    """
    target = Path(path)
    base = _nearest_existing(target, option)
    _check_writable_folder(base, target, option)
    return target


def check_output_file(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a Path if a file can be written (atomically) there.

    An existing regular file is fine (it is replaced); a folder or another kind of file
    at ``path``, and the cases of ``check_output_dir`` for its folder, raise
    ``OptimlabError`` naming ``option``. Nothing is left behind.
    """
    target = Path(path)
    if target.is_dir():
        raise OptimlabError(f"invalid {option} {str(target)!r}: it is a folder; give a file name")
    if target.exists() and not target.is_file():
        raise OptimlabError(
            f"invalid {option} {str(target)!r}: it is not a regular file; give a file path "
            "in a writable folder"
        )
    base = _nearest_existing(target.parent, option)
    _check_writable_folder(base, target, option)
    return target
