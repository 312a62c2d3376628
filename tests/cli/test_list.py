"""``optimlab list``: tables that fit the terminal and still hold every name."""

from __future__ import annotations

import pytest

from optimlab.cli import main
from optimlab.cli.list_cmd import format_table


@pytest.mark.parametrize("kind", ["optimizers", "schedules", "problems", "datasets"])
def test_listings_fit_the_terminal(kind, capsys, monkeypatch):
    from optimlab.cli.list_cmd import _listing

    monkeypatch.setenv("COLUMNS", "100")
    assert main(["list", kind]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    first_column = {line.split("  ")[0] for line in lines}
    _, rows = _listing(kind)()
    assert {row[0] for row in rows} <= first_column  # every name, unbroken


def test_wrapped_cells_keep_their_words():
    text = format_table(["name", "about"], [["a", "one two three four five six"]], width=18)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 18
    words = " ".join(line[6:].strip() for line in lines[2:]).split()
    assert words == "one two three four five six".split()


def test_a_closed_pipe_ends_the_listing_quietly():
    """``optimlab list optimizers | head -1``: no traceback when the reader goes away."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    )
    command = [sys.executable, "-m", "optimlab.cli", "list", "optimizers"]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, bufsize=0
    )
    child.stdout.read(10)
    child.stdout.close()  # before the listing is written out: the next write hits a closed pipe
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) in (0, 141)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
