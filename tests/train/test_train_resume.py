"""Exact resume: a run interrupted at any point and rerun ends bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_toys import make_problem, without_time

from optimlab.errors import OptimlabError
from optimlab.train import Callback, EarlyStopping, ReduceLROnPlateau, fit
from optimlab.train import trainer as trainer_module
from resume_checks import Crash, CrashAt, assert_same_result

HERE = Path(__file__).parent


class Steps(Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def on_batch_end(self, step, logs):
        self.count += 1


def run(out_dir, extra=(), **kw):
    """A run using every stateful piece: dropout, Adam, a per-step scheduler,
    early stopping with best weights, plateau LR cuts, step checkpoints."""
    problem = make_problem(seed=0, n=300, dropout=0.3)
    opt = torch.optim.Adam(problem.model.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)
    callbacks = [
        EarlyStopping(patience=50, restore_best_weights=True),
        ReduceLROnPlateau(patience=1, factor=0.5),
        *extra,
    ]
    result = fit(
        problem,
        opt,
        epochs=5,
        batch_size=16,
        scheduler=sched,
        callbacks=callbacks,
        out_dir=out_dir,
        checkpoint_every=5,
        log_every=2,
        **kw,
    )
    return result, problem.model.state_dict()


def assert_same_run(a, b):
    assert_same_result(*a, *b)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    torch.set_num_threads(1)
    return run(tmp_path_factory.mktemp("ref"))


@pytest.mark.parametrize(
    "crash",
    [
        {"step": 13},  # mid-epoch (12 steps per epoch), after the step-10 checkpoint
        {"step": 15},  # right after a step checkpoint
        {"epoch": 1},  # right after an epoch-end checkpoint
        {"epoch": 4},  # after the last epoch, before the final write
    ],
)
def test_resume_after_interruption_is_bit_identical(tmp_path, reference, crash):
    with pytest.raises(Crash):
        run(tmp_path, extra=[CrashAt(**crash)])
    resumed = run(tmp_path)
    assert_same_run(resumed, reference)
    assert resumed[0].summary["restored_epoch"] == reference[0].summary["restored_epoch"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert without_time([json.loads(line) for line in lines]) == without_time(reference[0].history)


def test_resume_with_metric_chunks_folded_mid_epoch(tmp_path, monkeypatch):
    # Train metrics are folded every 5 batches here, so the checkpoints at steps 10 and
    # 15 of each 12-step epoch hold partly folded sums and a pending buffer.
    monkeypatch.setattr(trainer_module, "CHUNK_BATCHES", 5)
    reference = run(tmp_path / "ref")
    with pytest.raises(Crash):
        run(tmp_path / "run", extra=[CrashAt(step=23)])
    assert_same_run(run(tmp_path / "run"), reference)


def test_rerunning_a_finished_run_returns_its_result(tmp_path, reference):
    first = run(tmp_path)
    steps = Steps()
    again = run(tmp_path, extra=[steps])
    assert steps.count == 0
    assert_same_run(again, first)
    assert again[0].history == first[0].history  # times included: nothing was rerun


def test_finished_run_with_another_budget_warns(tmp_path):
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    first = fit(problem, opt, epochs=2, out_dir=tmp_path)
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="holds a finished run"):
        again = fit(problem, opt, epochs=3, out_dir=tmp_path)
    assert again.history == first.history


def test_schedule_as_lr_survives_checkpoints(tmp_path):
    from optimlab import optim, schedules

    def run(gamma, **kw):
        problem = make_problem()
        lr = schedules.create("exponential", lr=0.5, gamma=gamma)
        opt = optim.create("sgd", problem.model.parameters(), lr=lr)
        return fit(problem, opt, epochs=3, out_dir=tmp_path / "run", **kw), opt

    with pytest.raises(Crash):
        run(0.9, callbacks=[CrashAt(epoch=0)])
    with pytest.raises(OptimlabError, match="gamma=0.8"):
        run(0.8)  # a different schedule is refused
    resumed, opt = run(0.9)
    assert callable(opt.param_groups[0]["lr"])  # the live schedule, not a placeholder
    problem = make_problem()
    lr = schedules.create("exponential", lr=0.5, gamma=0.9)
    straight = fit(problem, optim.create("sgd", problem.model.parameters(), lr=lr), epochs=3)
    assert without_time(resumed.history) == without_time(straight.history)


def test_resume_refuses_other_settings(tmp_path):
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    fit(problem, opt, epochs=1, out_dir=tmp_path, config={"lr": 0.1, "seed": 0})
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.2)
    with pytest.raises(OptimlabError, match=r"different settings \(lr\)"):
        fit(problem, opt, epochs=1, out_dir=tmp_path, config={"lr": 0.2, "seed": 0})


def test_resume_true_needs_a_checkpoint(tmp_path, problem):
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    with pytest.raises(OptimlabError, match="no checkpoint"):
        fit(problem, opt, epochs=1, out_dir=tmp_path, resume=True)


def test_resume_false_starts_over(tmp_path):
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    fit(problem, opt, epochs=2, out_dir=tmp_path)
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    steps = Steps()
    result = fit(problem, opt, epochs=2, out_dir=tmp_path, resume=False, callbacks=[steps])
    assert steps.count == 18 and len(result.history) == 2


def _script(out: Path, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(HERE / "resume_script.py"), str(out), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sigkill_mid_run_then_rerun_is_bit_identical(tmp_path):
    import resume_script

    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    victim = _script(run_dir, "--slow")
    # The uninterrupted reference runs here while the victim starts up.
    ref_line = resume_script.main(ref_dir)
    last = run_dir / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert last.exists(), victim.communicate()[1]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (run_dir / "summary.json").exists()  # it really was cut short
    killed_at = torch.load(last, weights_only=True)["step"]
    assert 0 < killed_at < 6 * 23

    rerun = _script(run_dir)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert out.strip() == ref_line

    a = torch.load(ref_dir / "final.pt", weights_only=True)
    b = torch.load(run_dir / "final.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ha = [json.loads(x) for x in (ref_dir / "metrics.jsonl").read_text().splitlines()]
    hb = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert without_time(ha) == without_time(hb)
    assert (ref_dir / "steps.jsonl").read_text() == (run_dir / "steps.jsonl").read_text()
