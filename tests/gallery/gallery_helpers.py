"""Helpers of the gallery's tests: the command line in a child process, file stamps."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

from optimlab.gallery.entry import NOT_REPRODUCED

ROOT = Path(__file__).resolve().parents[2]
ONLY = ("cyclical", "whitening")


def gallery_command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "optimlab.cli", "gallery", "--out", str(out), *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def stamp(path: Path) -> tuple[int, int]:
    """What a rewrite (atomic: a new file renamed over the old) changes."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def changed(numbers: dict, path: str, value) -> dict:
    """A deep copy of ``numbers`` with the value at dotted ``path`` replaced."""
    out = copy.deepcopy(numbers)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[last] = value
    return out


def assert_verdict(rule, numbers: dict, status: str, *words: str):
    """Judge ``numbers`` with an entry's ``rule``; check the verdict's status and that
    each of ``words`` stands in its reason (the reason is shown when either fails)."""
    verdict = rule(numbers)
    assert verdict.status == status, verdict.reason
    for text in words:
        assert text in verdict.reason, verdict.reason
    return verdict


def assert_contradicted(rule, numbers: dict, path: str, value, *words: str):
    """Check that ``rule`` says "not reproduced", naming each of ``words``, once the value
    at dotted ``path`` of ``numbers`` is replaced by ``value``."""
    return assert_verdict(rule, changed(numbers, path, value), NOT_REPRODUCED, *words)
