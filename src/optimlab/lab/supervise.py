"""Worker processes that live and die with their runner; stopping a study on a signal.

A worker is a spawned process. First thing, it asks the kernel to send it SIGTERM when
its parent dies (Linux: ``prctl(PR_SET_PDEATHSIG)``) and starts a daemon thread that
checks once a second that its parent is still the process that started it (the portable
fallback, which also covers a parent that died before the prctl call). SIGTERM keeps its
default action in a worker, so the worker ends at once; its trial stays RUNNING under
the worker's pid, and the next start of the study (or the runner's wrap-up) re-enqueues
it. Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the runner
decides for all.

In the runner, ``signals_interrupt`` turns SIGTERM and SIGINT into ``StudyInterrupted``
(a ``KeyboardInterrupt``); the runner then stops its workers (SIGTERM, SIGKILL after
``GRACE_SECONDS``), writes the report of what finished, and the command exits with
128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StudyInterrupted(KeyboardInterrupt):
    """A signal stopped the study; ``result`` says what had finished by then."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.result: dict[str, Any] = {}


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise ``StudyInterrupted`` (main thread only:
    elsewhere Python cannot set handlers, and the block runs with the ones it has)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise StudyInterrupted(signum)

    previous = {s: signal.signal(s, interrupt) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def worker_main(parent_pid: int, target: Callable[..., None], *args: Any) -> None:
    """The body of a worker process: tie it to ``parent_pid``, then run ``target(*args)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    target(*args)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the thread below still notices
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        _end_self()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:  # an orphan gets a new parent (init or a subreaper)
        time.sleep(1.0)
    _end_self()


def _end_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_SECONDS)
    os._exit(128 + signal.SIGTERM)  # only if something caught SIGTERM


def watch(
    procs: list[mp.process.BaseProcess], on_death: Callable[[mp.process.BaseProcess], None]
) -> list[str]:
    """Wait for every process to end; ``on_death`` is called, as soon as it happens, for
    each that ended abnormally. Returns one line per such process."""
    problems: list[str] = []
    running = list(procs)
    while running:
        ended = [p for p in running if not p.is_alive()]
        if not ended:
            multiprocessing.connection.wait([p.sentinel for p in running])
            continue
        for p in ended:
            running.remove(p)
            p.join()
            if p.exitcode != 0:
                problems.append(f"worker process {p.pid} {describe_exit(p.exitcode)}")
                on_death(p)
    return problems


def stop(procs: list[mp.process.BaseProcess]) -> None:
    """End the processes still running: SIGTERM, then SIGKILL after ``GRACE_SECONDS``."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for p in procs:
        if p.is_alive():
            p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def describe_exit(exitcode: int | None) -> str:
    """``exited with status 1`` or ``was killed by SIGKILL``, from a multiprocessing exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"
