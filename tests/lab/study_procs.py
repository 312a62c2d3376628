"""Real `optimlab study run` processes for the lab tests: start them, read their study's
database while they run, and find their worker processes (Linux /proc)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# A script that runs a study (``python SCRIPT STUDY OUT WORKERS``) with the runner's
# run_trial wrapped in every process that imports the script: the runner (as __main__)
# and each spawned worker (as __mp_main__). Each call, that is each training, appends
# "<run key> <pid>" to $TRAIN_LOG, then trains for real.
COUNTING_HARNESS = """
import os, sys
import optimlab.lab.runner as runner

_train = runner.run_trial

def _counted(config, run_dir, **kwargs):
    fd = os.open(os.environ["TRAIN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{run_dir.name} {os.getpid()}\\n".encode())
    os.close(fd)
    return _train(config, run_dir, **kwargs)

runner.run_trial = _counted

if __name__ == "__main__":  # run_study STUDY OUT WORKERS, without the report
    from optimlab.lab import load_study
    result = runner.run_study(
        load_study(sys.argv[1]), sys.argv[2], workers=int(sys.argv[3]), report=False
    )
    sys.exit(1 if result.get("errors") else 0)
"""


def start(
    study: Path,
    out: Path,
    *args: str,
    script: Path | None = None,
    env: dict | None = None,
    log: Path | None = None,
) -> subprocess.Popen:
    """``optimlab study run STUDY --out OUT ARGS`` (through ``script`` when given); its
    output goes to LOG.stdout and LOG.stderr (LOG: ``out`` unless given)."""
    program = [str(script)] if script else ["-m", "optimlab.cli"]
    cmd = [sys.executable, *program, "study", "run", str(study), "--out", str(out), *args]
    log = log or out
    stdout = open(f"{log}.stdout", "w")  # noqa: SIM115 - the process owns it
    stderr = open(f"{log}.stderr", "w")  # noqa: SIM115
    return subprocess.Popen(cmd, env={**ENV, **(env or {})}, stdout=stdout, stderr=stderr)


def output(log: Path) -> tuple[str, str]:
    return Path(f"{log}.stdout").read_text(), Path(f"{log}.stderr").read_text()


def query(out: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the study's database; none while it does not exist yet."""
    if not (out / "study.db").exists():
        return []
    try:
        with sqlite3.connect(out / "study.db", timeout=5) as db:
            return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the schema is being created
        return []


def states(out: Path) -> Counter:
    return Counter(dict(query(out, "select state, count(*) from trials group by state")))


def worker_pids(out: Path) -> set[int]:
    """The pids the workers wrote in their trials' heartbeats."""
    rows = query(out, "select value_json from trial_user_attributes where key = 'worker'")
    return {json.loads(value)["pid"] for (value,) in rows}


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (Linux: /proc/<pid>/task/*/children)."""
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux /proc to find child processes")
    found: set[int] = set()
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                children = {int(c) for c in task.read_text().split()}
            except OSError:  # the process ended meanwhile
                continue
            todo.extend(children - found)
            found |= children
    return found


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.05)
