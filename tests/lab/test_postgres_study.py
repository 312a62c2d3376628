"""Studies shared through a real PostgreSQL server (tests/postgres_server.py) by real
``optimlab study run`` processes: runners started together train every run once; a
runner on another host (its own UTS namespace, so its host name differs and only the
heartbeat can tell whether it lives) keeps its run while it beats, and when it is
killed with SIGKILL its run goes back in the queue after the grace period and the
study ends with the numbers of an uninterrupted SQLite run; bad URLs are one-line
errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
import study_procs as sp

from optimlab.lab.store import Store

CLI = [sys.executable, "-m", "optimlab.cli"]
HEARTBEAT = ["--heartbeat", "1", "--grace-period", "2"]
ELSEWHERE = "elsewhere-host"

# 6 runs of under a second each (an epoch of digits_mlp takes about 0.1 s)
SHARED = """
name = "pg-shared"
problems = ["digits_mlp"]
optimizers = ["sgd", "adam"]
seeds = 3
[budget]
epochs = 4
[protocol]
kind = "fixed"
"""

# 2 runs: one for a runner that is killed, one for the runner that survives it
TWO_RUNS = """
name = "pg-two-runs"
problems = ["digits_mlp"]
optimizers = ["sgd"]
seeds = 2
threads = 1
[budget]
epochs = 8
[protocol]
kind = "fixed"
"""

# A runner whose runs never end: the real ``optimlab study run`` (planning, claims, the
# heartbeat thread) with each training replaced by a sleep, as in an epoch longer than the
# grace period. It prints "training <run key>" when it holds a run.
STUCK_HARNESS = """
import sys, time
import optimlab.lab.runner as runner

def _stuck(config, run_dir, **kwargs):
    print("training", run_dir.name, flush=True)
    time.sleep(3600)

runner.run_trial = _stuck
from optimlab.cli import main
sys.exit(main())
"""


def _start(study: Path, out: Path, log: Path, *args: str, prefix=()) -> subprocess.Popen:
    cmd = [*prefix, *CLI, "study", "run", str(study), "--out", str(out), *args]
    stdout, stderr = open(f"{log}.stdout", "w"), open(f"{log}.stderr", "w")  # noqa: SIM115
    return subprocess.Popen(cmd, env=sp.ENV, stdout=stdout, stderr=stderr)


def _elsewhere_prefix() -> list[str]:
    """A command prefix that runs a program under the host name ``ELSEWHERE`` (a UTS
    namespace of its own); skips the test where no namespace can be made."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux's unshare to run a worker under another host name")
    prefix = [unshare, "--uts"] if os.geteuid() == 0 else [unshare, "-r", "--uts"]
    prefix += ["--", "sh", "-c", 'hostname "$0" && exec "$@"', ELSEWHERE]
    probe = subprocess.run([*prefix, "hostname"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != ELSEWHERE:
        pytest.skip(f"cannot make a UTS namespace here: {probe.stderr.strip()}")
    return prefix


def _running(url: str) -> list[tuple[int, dict]]:
    """The RUNNING trials (id, worker attribute); none before the schema exists."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as db:
            rows = db.execute(
                sqlalchemy.text(
                    "select t.trial_id, a.value_json from trials t "
                    "join trial_user_attributes a on a.trial_id = t.trial_id "
                    "where t.state = 'RUNNING' and a.key = 'worker'"
                )
            ).fetchall()
    except sqlalchemy.exc.ProgrammingError:  # no tables yet
        return []
    finally:
        engine.dispose()
    return [(trial_id, json.loads(value)) for trial_id, value in rows]


def _results(records) -> dict[str, tuple]:
    """Each run's outcome without its timings: status, final metrics, history."""

    def timeless(row: dict) -> dict:
        return {k: v for k, v in row.items() if "time" not in k}

    return {
        r["run_key"]: (
            r["status"],
            timeless(r["final"]),
            [timeless(row) for row in r["history"]],
        )
        for r in records
    }


def test_two_runners_on_one_database_train_every_run_once(tmp_path, postgres_url, procs):
    study = tmp_path / "shared.toml"
    study.write_text(SHARED)
    outs = [tmp_path / "a", tmp_path / "b"]  # two machines: two directories
    procs += [
        _start(study, outs[0], outs[0], "--storage", postgres_url),
        _start(study, outs[1], outs[1], "--storage", postgres_url),
    ]
    for proc, out in zip(procs, outs):
        assert proc.wait(timeout=600) == 0, sp.output(out)
        assert "Traceback" not in sp.output(out)[1]
    store = Store(postgres_url)
    counts = store.counts()
    assert counts["done"] == counts["total"] == 6  # no duplicate, nothing interrupted
    keys = [r["run_key"] for r in store.records()]
    assert len(set(keys)) == 6
    # each run trained in exactly one of the two directories, and both runners trained
    trained = [{p.name for p in (out / "runs").iterdir()} for out in outs]
    assert trained[0].isdisjoint(trained[1]) and trained[0] | trained[1] == set(keys)
    assert trained[0] and trained[1]
    password = sqlalchemy.engine.make_url(postgres_url).password
    assert "***" in sp.output(outs[0])[0] and password not in sp.output(outs[0])[0]


@pytest.fixture
def procs():
    """Processes a test starts; any still running at its end are killed."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_remote_runner_gives_its_run_back_after_the_grace_period(
    tmp_path, postgres_url, procs
):
    prefix = _elsewhere_prefix()
    study = tmp_path / "two.toml"
    study.write_text(TWO_RUNS)
    # the uninterrupted reference, on SQLite, while the shared study runs
    code = (
        "import sys; from optimlab.lab import load_study; "
        "from optimlab.lab.runner import run_study; "
        "run_study(load_study(sys.argv[1]), sys.argv[2], report=False, quiet=True)"
    )
    ref = tmp_path / "ref"
    procs.append(subprocess.Popen([sys.executable, "-c", code, str(study), str(ref)], env=sp.ENV))
    harness = tmp_path / "stuck.py"
    harness.write_text(STUCK_HARNESS)
    there, here = tmp_path / "there", tmp_path / "here"
    stuck = subprocess.Popen(
        [*prefix, sys.executable, str(harness), "study", "run", str(study), "--out", str(there),
         "--storage", postgres_url, *HEARTBEAT],
        env=sp.ENV, stdout=open(f"{there}.stdout", "w"), stderr=open(f"{there}.stderr", "w"),
    )  # fmt: skip
    procs.append(stuck)
    sp.wait_until(lambda: "training" in sp.output(there)[0], 300, "the remote runner holds a run")
    ((trial_id, worker),) = _running(postgres_url)
    assert worker["host"] == ELSEWHERE and worker["pid"] == stuck.pid

    procs.append(_start(study, here, here, "--storage", postgres_url, *HEARTBEAT))
    sp.wait_until(
        lambda: "seed=1: completed" in sp.output(here)[0], 300, "the other run is done here"
    )
    # this runner now waits, looking every second for dead workers: the remote one
    # beats, so it keeps its run past the grace period
    time.sleep(2 + 2)
    assert stuck.poll() is None
    assert _running(postgres_url) == [(trial_id, worker)]
    assert "go back in the queue" not in sp.output(here)[0]

    os.kill(stuck.pid, signal.SIGKILL)  # mid-run
    stuck.wait()
    assert procs[-1].wait(timeout=600) == 0, sp.output(here)
    stdout, stderr = sp.output(here)
    assert "Traceback" not in stderr
    assert "1 run(s) whose worker stopped go back in the queue" in stdout
    store = Store(postgres_url)
    counts = store.counts()
    assert counts["running"] == counts["waiting"] == 0
    assert counts["interrupted"] == 1 and counts["done"] == counts["total"] - 1 == 2

    assert procs[0].wait(timeout=600) == 0
    expected = _results(Store(f"sqlite:///{ref / 'study.db'}").records())
    assert len(expected) == 2 and _results(store.records()) == expected


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_bad_postgres_urls_are_one_line_errors(tmp_path, postgres_url):
    study = tmp_path / "shared.toml"
    study.write_text(SHARED)
    url = sqlalchemy.engine.make_url(postgres_url)
    cases = {
        "wrong password": (url.set(password="not-the-password"), "password authentication"),
        "nothing listening": (url.set(port=_closed_port()), "Connection refused"),
    }
    procs = {
        case: subprocess.Popen(
            [
                *CLI,
                "study",
                "run",
                str(study),
                "--out",
                str(tmp_path / "out"),
                "--storage",
                bad.render_as_string(hide_password=False),
            ],
            env=sp.ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for case, (bad, _) in cases.items()
    }
    for case, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, (case, stdout, stderr)
        assert stdout == "" and len(stderr.splitlines()) == 1, (case, stderr)
        assert stderr.startswith("optimlab: error: cannot open storage 'postgresql+psycopg://")
        assert cases[case][1] in stderr, (case, stderr)
        assert "not-the-password" not in stderr and url.password not in stderr
