"""Atomic writes (a reader sees the old file or the new one, never a partial one) and the
checks of output locations."""

from __future__ import annotations

import os

import pytest
import torch

from optimlab import io as optimlab_io
from optimlab.errors import OptimlabError
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


# --- output locations, vetted before any work -------------------------------------------

CHECKS = [optimlab_io.check_output_dir, optimlab_io.check_output_file]


def one_line_error(check, path, option="--out") -> str:
    with pytest.raises(OptimlabError) as info:
        check(path, option)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"invalid {option} ")
    assert "give a" in message  # says what would be valid
    return message


@pytest.mark.parametrize("check", CHECKS)
def test_a_path_under_a_regular_file_is_refused(tmp_path, check):
    (tmp_path / "notes.txt").write_text("x")
    message = one_line_error(check, tmp_path / "notes.txt" / "sub" / "out.png", "--gallery")
    assert f"{str(tmp_path / 'notes.txt')!r} is a file, not a folder" in message
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("system", ["/proc", "/sys"])
def test_system_folders_are_refused(check, system):
    if not os.path.isdir(system):
        pytest.skip(f"no {system} on this system")
    message = one_line_error(check, f"{system}/optimlab-out/result.json")
    assert f"is in {system}, a system folder" in message


def test_device_files_and_folders_are_not_output_files(tmp_path):
    assert "not a regular file" in one_line_error(optimlab_io.check_output_file, os.devnull)
    assert "is a folder" in one_line_error(optimlab_io.check_output_file, tmp_path)
    (tmp_path / "f").write_text("x")
    assert "is a file" in one_line_error(optimlab_io.check_output_dir, tmp_path / "f")


@pytest.mark.parametrize("check", CHECKS)
def test_a_folder_without_write_permission_is_refused(tmp_path, check):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        try:
            (locked / "probe").touch()
        except PermissionError:
            pass
        else:
            pytest.skip(
                "this process writes through permission bits (root); "
                "the regular-file and /proc cases cover it"
            )
        message = one_line_error(check, locked / "new" / "out.png")
    finally:
        locked.chmod(0o700)
    assert "cannot create files in" in message and "Permission denied" in message


def test_writable_locations_pass_and_nothing_is_left_behind(tmp_path):
    (tmp_path / "old.png").write_bytes(b"old")
    assert optimlab_io.check_output_file(tmp_path / "a" / "b" / "new.png") == (
        tmp_path / "a" / "b" / "new.png"
    )
    assert optimlab_io.check_output_file(tmp_path / "old.png") == tmp_path / "old.png"
    assert optimlab_io.check_output_dir(tmp_path / "runs" / "study") == tmp_path / "runs" / "study"
    assert optimlab_io.check_output_dir(tmp_path) == tmp_path
    assert sorted(os.listdir(tmp_path)) == ["old.png"]
    assert (tmp_path / "old.png").read_bytes() == b"old"
