"""``optimlab schedule`` and ``optimlab list schedules``."""

from __future__ import annotations

import pytest

from optimlab.cli import main
from optimlab.cli.schedule import parse_spec
from optimlab.schedules import available, record

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_schedule_writes_a_png(tmp_path, capsys):
    out = tmp_path / "sub" / "s.png"
    argv = ["schedule", "cosine", "T_max=100", "--and", "step", "step_size=30"]
    argv += ["--and", "one_cycle", "--steps", "120", "--out", str(out)]
    assert main(argv) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in out.parent.iterdir()] == ["s.png"]  # no temp file left behind
    assert "wrote" in capsys.readouterr().out


def test_schedule_without_out_prints_values(capsys):
    assert main(["schedule", "step", "step_size=3", "gamma=0.5", "lr=1", "--steps", "11"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "step step_size=3 gamma=0.5 lr=1"
    values = {int(line.split()[0]): float(line.split()[1]) for line in lines[1:]}
    assert values == {t: 0.5 ** (t // 3) for t in range(11)}


def test_list_schedules_shows_every_name(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per row (narrow ones wrap: tests/cli)
    assert main(["list", "schedules"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines()[2:]}
    assert rows == set(available())
    for name in available():
        assert record(name).description in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["schedule", "cosinus"], "unknown schedule 'cosinus'; valid schedules: 1cycle"),
        (["schedule", "step", "gamma=-1", "step_size=3"], "invalid gamma"),
        (["schedule", "step", "stepsize=3"], "invalid parameter 'stepsize'"),
        (["schedule", "step"], "needs parameter 'step_size'"),
        (["schedule", "cosine", "T_max"], "expected key=value"),
        (["schedule", "cosine", "--steps", "0"], "--steps"),
        (["schedule", "cosine", "--out", "x.jpeg"], "--out"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    if "unknown" in message:
        for name in available():
            assert name in err


def test_parse_spec_values():
    name, params = parse_spec(["multistep", "milestones=30,60", "gamma=1e-1", "mode=exp_range"])
    assert name == "multistep"
    assert params == {"milestones": (30, 60), "gamma": 0.1, "mode": "exp_range"}
