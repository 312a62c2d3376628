"""The augmentation benchmark: its table, its rows, and its wrapper script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from optimlab.bench.augment import run_augment_bench
from optimlab.errors import OptimlabError

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_augment.py"
HAS_KORNIA = importlib.util.find_spec("kornia") is not None


def test_rows_are_the_printed_medians(capsys):
    rows = run_augment_bench([4, 8], repeats=2, threads=1)
    assert [r["batch"] for r in rows] == [4, 8]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("device cpu") and "threads 1" in lines[0]
    for row, line in zip(rows, lines[2:], strict=True):
        assert row["optimlab_ms"] > 0
        assert line.split()[:2] == [str(row["batch"]), f"{row['optimlab_ms']:.2f}"]
        assert (row["kornia_ms"] is None) == (not HAS_KORNIA)


def test_bad_settings_name_the_argument():
    with pytest.raises(OptimlabError, match="invalid repeats: 0"):
        run_augment_bench([4], repeats=0)


def test_the_script_is_a_thin_wrapper():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--batch", "4", "--repeats", "1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[2].split()[0] == "4"
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--repeats", "0"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "invalid repeats: 0" in bad.stderr
    assert "Traceback" not in bad.stderr
