"""The Trainer and the command line drive the natural-gradient optimizers, and a run
killed between checkpoints resumes to the same weights and history."""

from __future__ import annotations

import json

import pytest
import torch

import optimlab.optim as oo
from optimlab import problems
from optimlab.cli import main
from optimlab.train import Callback, fit

# each on a problem it can take: the full Fisher needs a small model
CASES = [
    ("natural_gradient", "logreg_digits", {}),
    ("natural_gradient_diag", "digits_mlp", {"decay": 0.9}),
    ("kfac", "digits_mlp", {"cov_interval": 2, "inv_interval": 3}),
]


class Killed(Exception):
    pass


class KillAtStep(Callback):
    order = 200  # after the step's checkpoint is written

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def on_batch_end(self, step, logs):
        if step == self.step:
            raise Killed


def run(name, problem, hp, **kw):
    built = problems.build(problem, seed=0)
    opt = oo.create(name, built.model.parameters(), **hp)
    return built, fit(built, opt, steps=9, seed=0, checkpoint_every=4, **kw)


def no_time(rows):
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


@pytest.mark.parametrize("name, problem, hp", CASES)
def test_a_run_killed_between_checkpoints_resumes_identically(name, problem, hp, tmp_path):
    """Killed at step 6, resumed from the checkpoint of step 4 (the factors stale by
    two steps, the inverses by one, K-FAC's generator mid-stream)."""
    straight_problem, straight = run(name, problem, hp, out_dir=tmp_path / "straight")
    with pytest.raises(Killed):
        run(name, problem, hp, out_dir=tmp_path / "cut", callbacks=[KillAtStep(6)])
    resumed_problem, resumed = run(name, problem, hp, out_dir=tmp_path / "cut")
    assert resumed.status == straight.status == "completed"
    assert no_time(resumed.step_log) == no_time(straight.step_log)
    assert no_time(resumed.history) == no_time(straight.history)
    for k, v in resumed_problem.model.state_dict().items():
        assert torch.equal(v, straight_problem.model.state_dict()[k]), k
    final = straight.history[-1]
    assert final["step"] == 9 and final["evaluations"] == 9  # one closure call per step


@pytest.mark.parametrize("name, problem, hp", CASES)
def test_the_command_line_trains_with_each(name, problem, hp, tmp_path, capsys):
    argv = ["train", "--problem", problem, "--optimizer", name, "--steps", "30", "--quiet",
            "--out", str(tmp_path)]  # fmt: skip
    for key, value in hp.items():
        argv += ["--hp", f"{key}={value}"]
    assert main(argv) == 0
    assert "completed" in capsys.readouterr().out
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first = problems.build(problem, seed=0)
    x, y = first.splits.train.x, first.splits.train.y
    with torch.no_grad():
        start = float(first.loss_fn(first.model(x), y))
    assert rows[-1]["loss"] < start  # it learned something in 30 steps


def test_a_study_file_takes_them_with_their_options(tmp_path):
    from optimlab.errors import OptimlabError
    from optimlab.lab import load_study

    entries = ""
    for name, _, hp in CASES:
        params = ", ".join(f"{k} = {v}" for k, v in hp.items())
        entries += f'[[optimizers]]\nname = "{name}"\nparams = {{ {params} }}\n'

    spec = tmp_path / "fisher.toml"
    head = 'name = "fisher"\nproblems = ["digits_mlp"]\n[budget]\nsteps = 5\n'
    head += '[protocol]\nkind = "fixed"\n'
    spec.write_text(head + entries)
    study = load_study(spec)
    assert [o.name for o in study.optimizers] == [name for name, _, _ in CASES]
    assert study.optimizers[2].params == {"cov_interval": 2, "inv_interval": 3}
    spec.write_text(head + '[[optimizers]]\nname = "kfac"\nparams = { fisher = "exact" }\n')
    with pytest.raises(OptimlabError, match="invalid fisher: 'exact'"):
        load_study(spec)
