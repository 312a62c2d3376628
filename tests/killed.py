"""Real `optimlab` processes stopped for real: start one, SIGKILL it, and never leave it
running whatever the test does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def optimlab_process(*args: str, **popen: Any) -> Iterator[subprocess.Popen]:
    """``python -m optimlab.cli ARGS`` with one OpenMP thread; killed and reaped on the
    way out if it is still alive (a failed assertion, or a test that is done with it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "optimlab.cli", *args], env=env, **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def sigkill(proc: subprocess.Popen) -> None:
    """Kill ``proc`` with SIGKILL (no handler runs, nothing is flushed) and reap it."""
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
