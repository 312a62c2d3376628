"""Flushing subnormals: the mode is per thread and process-wide, so each case runs in
a fresh interpreter; the check must see every intra-op thread."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from optimlab.speedrun import DEFAULT_TOML, loads_recipe

# The CPU has a flush-to-zero mode (x86 with SSE3); elsewhere torch says it has none.
PROBE = "import sys, torch; sys.exit(0 if torch.set_flush_denormal(True) else 1)"
HAS_FTZ = subprocess.run([sys.executable, "-c", PROBE], check=False).returncode == 0
needs_ftz = pytest.mark.skipif(not HAS_FTZ, reason="this CPU has no flush-to-zero mode")

# zeros(): how many of 2**20 subnormals come out as 0 when halved (2**-128 where the
# thread does not flush), computed by all threads together.
PRELUDE = """
import torch
torch.set_num_threads(2)
from optimlab.train.denormals import flush_denormals, flushing_here, threads_flushing
def zeros():
    x = torch.full((2**20,), 0x00400000, dtype=torch.int32).view(torch.float32)
    return int(((x * 0.5) == 0).sum())
"""


def run(code: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@needs_ftz
def test_flushing_before_any_parallel_op_reaches_every_thread():
    # without flushing, no result is zero and the check says so
    assert run("print(threads_flushing(), zeros())") == ["False", "0"]
    assert run("print(flush_denormals(), threads_flushing(), zeros())") == [
        "True",
        "True",
        str(2**20),
    ]


@needs_ftz
def test_the_calling_threads_mode_is_read_without_workers():
    assert run("print(flushing_here())") == ["False"]
    # a late call still sets the calling thread's mode: what study workers are handed
    assert run("torch.randn(2**22).exp_()\nflush_denormals()\nprint(flushing_here())") == ["True"]


def test_study_workers_are_handed_the_mode(tmp_path, monkeypatch):
    import optimlab.lab.runner as runner
    from optimlab.lab.spec import parse_study

    started = []

    class Ctx:  # records the workers' arguments instead of starting processes
        def Process(self, target, args):  # noqa: N802 (multiprocessing's name)
            started.append(args)
            return types.SimpleNamespace(
                start=lambda: None, join=lambda: None, is_alive=lambda: False, exitcode=0
            )

    monkeypatch.setattr(runner.mp, "get_context", lambda method: Ctx())
    spec = parse_study('problems = ["digits_mlp"]\n[[optimizers]]\nname = "sgd"\n')
    for mode in (True, False):
        started.clear()
        monkeypatch.setattr(runner, "flushing_here", lambda mode=mode: mode)
        runner.run_study(spec, tmp_path / str(mode), workers=2, report=False, quiet=True)
        assert [args[-1] for args in started] == [mode, mode]  # work(..., flush_denormal)


@needs_ftz
def test_a_late_call_is_detected():
    # a parallel op first starts torch's worker thread, which keeps its own mode: the
    # main thread then flushes its half of a large op and the worker does not
    out = run("torch.randn(2**22).exp_()\nprint(flush_denormals(), zeros())")
    assert out[0] == "False"
    assert 0 < int(out[1]) < 2**20


@needs_ftz
def test_cli_switch_flushes_for_the_command():
    code = (
        "import sys\nfrom optimlab.cli import main\n"
        "assert main(['--flush-denormal', 'list', 'optimizers']) == 0\n"
        "print(threads_flushing())"
    )
    assert run(code)[-1] == "True"


def test_recipe_key_is_checked():
    assert loads_recipe(DEFAULT_TOML).flush_denormal is False  # measured no gain there
    text = DEFAULT_TOML.replace('device = "cpu"', 'device = "cpu"\nflush_denormal = true', 1)
    assert loads_recipe(text).flush_denormal is True
    bad = DEFAULT_TOML.replace('device = "cpu"', 'device = "cpu"\nflush_denormal = "yes"', 1)
    with pytest.raises(ValueError, match="flush_denormal"):
        loads_recipe(bad)
