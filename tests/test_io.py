"""Atomic writes: a reader sees the old file or the new one, never a partial one."""

from __future__ import annotations

import os

import pytest
import torch

from optimlab import io as optimlab_io
from optimlab.io import atomic_torch_save, atomic_write_bytes, atomic_write_text


def test_replaces_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two", durable=False)
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["f.txt"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(optimlab_io.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_torch_save_round_trip(tmp_path):
    state = {"w": torch.arange(5.0), "n": 3}
    atomic_torch_save(state, tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)
    assert torch.equal(loaded["w"], state["w"]) and loaded["n"] == 3


def test_atomic_files_get_the_usual_permissions(tmp_path):
    """mkstemp makes private files; written results get 0o666 less the umask."""
    import os

    from optimlab.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "report.md", "x")
        assert path.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(mask)
