"""The heartbeat: its settings (defaults, one-line errors for bad values), and a trial
that lives while it beats."""

from __future__ import annotations

import time

import pytest

from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.lab.heartbeat import OFF, Heartbeat, beating, heartbeat_settings
from optimlab.lab.store import Store

PG = "postgresql+psycopg://u:secret@127.0.0.1:1/study"  # nothing listens there


def test_defaults():
    assert heartbeat_settings(None, None) == Heartbeat(10, 60)
    assert heartbeat_settings(0, None) == OFF
    assert heartbeat_settings(3, None) == Heartbeat(3, 18)  # six heartbeats
    assert heartbeat_settings(None, 30) == Heartbeat(10, 30)
    assert heartbeat_settings(1, 2) == Heartbeat(1, 2)


@pytest.mark.parametrize(
    ("interval", "grace", "message"),
    [
        (-1, None, "invalid heartbeat interval: -1; valid: whole seconds >= 1, or 0"),
        (0, 30, "invalid grace period: 30; it needs a heartbeat"),
        (10, 15, "invalid grace period: 15 s; valid: at least two heartbeats (20 s"),
        (1.5, None, "invalid heartbeat interval: 1.5; valid: whole seconds"),
        (None, True, "invalid grace period: True; valid: whole seconds"),
    ],
)
def test_bad_settings_are_named(interval, grace, message):
    with pytest.raises(OptimlabError, match=f"^{message}".replace("(", r"\(")):
        heartbeat_settings(interval, grace)


def test_the_command_rejects_bad_settings_in_one_line(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text('name = "s"\nproblems = ["logreg_digits"]\noptimizers = ["sgd"]\n')
    argv = ["study", "run", str(study), "--out", str(tmp_path / "out"), "--storage", PG]
    assert main([*argv, "--heartbeat", "5", "--grace-period", "6"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "optimlab: error: invalid grace period: 6 s; valid: at least two heartbeats "
        "(10 s for a heartbeat every 5 s), so that one late heartbeat does not give a "
        "live worker's run away\n"
    )


def test_a_trial_is_alive_while_it_beats_and_dead_after_the_grace_period(tmp_path):
    # SQLite, the default storage, with the heartbeat on: a trial claimed on another host
    store = Store(f"sqlite:///{tmp_path / 'study.db'}", Heartbeat(1, 2))
    store.enqueue("final:p:o", {}, "key", "maximize")
    _, trial = store.claim(["final:p:o"])
    trial.set_user_attr("worker", {"host": "elsewhere", "pid": 1, "time": 0.0})
    with beating(store.storage, trial._trial_id):
        time.sleep(3.5)  # past the grace period, and past STALE_AFTER's test (time 0)
        assert store.recover_stale(["final:p:o"]) == 0
    time.sleep(3.5)
    assert store.recover_stale(["final:p:o"]) == 1
    assert store.counts()["interrupted"] == 1 and store.counts()["waiting"] == 1
