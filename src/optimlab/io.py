"""Atomic file writes: write a temporary file beside the target, then rename it.

A reader (or a rerun after a kill) sees either the old file or the new one, never a
half-written one, because ``os.replace`` is atomic within one file system.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


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
