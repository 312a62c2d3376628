"""Every command that writes results vets its output path first: a path under a regular
file is a one-line error (exit status 2) before any data is read or any step is taken.

The other arguments are chosen so that, were the path checked late, another error (a
missing study, recipe or checkpoint file, an unknown schedule) or real work would come
first: the message naming the output option shows the check ran before them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from optimlab.cli import main

# (name, argv with {bad} for the output path and {tmp} for the test's folder, option)
COMMANDS = [
    ("study run", ["study", "run", "{tmp}/missing.toml", "--out", "{bad}/study"], "--out"),
    (
        "compare",
        ["compare", "--problem", "digits_mlp", "--optimizers", "sgd", "--epochs", "1"]
        + ["--seeds", "1", "--out", "{bad}/cmp"],
        "--out",
    ),
    ("schedule", ["schedule", "no_such_schedule", "--steps", "5", "--out", "{bad}/s.png"], "--out"),
    (
        "lr-find",
        ["lr-find", "--problem", "digits_mlp", "--optimizer", "sgd", "--steps", "5"]
        + ["--out", "{bad}/lr.png"],
        "--out",
    ),
    (
        "lr-find data",
        ["lr-find", "--problem", "digits_mlp", "--optimizer", "sgd", "--steps", "5"]
        + ["--out", "{tmp}/lr.png", "--data", "{bad}/lr.json"],
        "--data",
    ),
    (
        "trajectories",
        ["trajectories", "--function", "no_such_function", "--optimizers", "sgd"]
        + ["--out", "{bad}/t.png"],
        "--out",
    ),
    ("trajectories gallery", ["trajectories", "--gallery", "{bad}/gallery"], "--gallery"),
    (
        "landscape",
        ["landscape", "--checkpoint", "{tmp}/missing.pt", "--out", "{bad}/land.png"],
        "--out",
    ),
    ("speedrun", ["speedrun", "{tmp}/missing.toml", "--out", "{bad}/speed.json"], "--out"),
]


def _argv(template: list[str], tmp_path) -> list[str]:
    bad = tmp_path / "notes.txt"
    return [a.format(bad=bad, tmp=tmp_path) for a in template]


@pytest.mark.parametrize(
    ("argv", "option"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS]
)
def test_output_under_a_regular_file_fails_first_with_one_line(tmp_path, capsys, argv, option):
    (tmp_path / "notes.txt").write_text("not a folder")
    assert main(_argv(argv, tmp_path)) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"optimlab: error: invalid {option} ")
    assert f"{str(tmp_path / 'notes.txt')!r} is a file, not a folder" in lines[0]
    assert captured.out == ""  # no progress line: nothing started
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_the_command_exits_with_status_2_and_no_traceback(tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    proc = subprocess.run(
        [sys.executable, "-m", "optimlab.cli", "schedule", "cosine", "--steps", "5"]
        + ["--out", str(tmp_path / "notes.txt" / "s.png")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("optimlab: error: invalid --out ")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""
