"""`optimlab list optimizers` and `optimlab bench optimizers` from the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

import optimlab.optim as oo
from optimlab.bench.optimizers import benched
from optimlab.cli import main


def test_list_optimizers_prints_every_registry_name(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per row (narrow ones wrap: tests/cli)
    assert main(["list", "optimizers"]) == 0
    out = capsys.readouterr().out
    # a row whose cells wrap continues on lines that start blank (the name column)
    names = {line.split()[0] for line in out.splitlines()[2:] if not line.startswith(" ")}
    assert names == set(oo.available())
    assert "Kingma & Ba 2015" in out


def test_unknown_listing_is_a_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "optimlab.cli", "list", "optimisers"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "unknown listing 'optimisers'" in proc.stderr and "optimizers" in proc.stderr
    assert "Traceback" not in proc.stderr


def compared() -> list[str]:
    """The optimizers the benchmark times: every elementwise rule fed one gradient per
    step, side by side with torch.optim's implementation where torch has one."""
    names = [name for name in oo.available() if benched(oo.get(name))]
    assert {"adam", "sgd", "radam", "lion", "schedule_free_adamw"} <= set(names)
    assert not {"lamb", "adafactor", "muon", "lookahead", "sam", "lbfgs"} & set(names)
    return names


def test_bench_optimizers_prints_ratios(capsys):
    # --no-fast: compiling the fast path for every optimizer would take minutes
    args = ["bench", "optimizers", "--model", "small", "--repeats", "2", "--builds", "1"]
    assert main([*args, "--no-fast"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in compared():
        line = next(line for line in lines if line.startswith(name + " "))
        assert "eager/floor (x" in line, line
        if oo.get(name).torch_class:
            assert "/torch-loop (x" in line, line
        else:
            assert "torch.optim has no such rule" in line, line


@pytest.mark.slow
def test_bench_optimizers_with_fast_path_prints_ratios_and_compile_time(capsys):
    assert main(["bench", "optimizers", "--model", "small", "--repeats", "2", "--builds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in compared():
        line = next(line for line in lines if line.startswith(name + " "))
        assert "fast/floor (x" in line and "compile -" not in line, line
