"""``optimlab train``: settings from flags and TOML, wiring checked against a direct fit,
errors, and kill-and-rerun through the command line."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from train_toys import without_time

from optimlab import optim, problems, schedules
from optimlab.cli import main
from optimlab.cli.train import parse_pairs, parse_value
from optimlab.errors import OptimlabError
from optimlab.run import load_toml
from optimlab.train import fit


def test_parse_values():
    assert parse_value("0.9") == 0.9
    assert parse_value("True") is True
    assert parse_value("0.9,0.999") == (0.9, 0.999)
    assert parse_value("[1, 2]") == (1, 2)
    assert parse_value("triangular2") == "triangular2"
    assert parse_pairs(["momentum=0.9", "nesterov=True"], "--hp") == {
        "momentum": 0.9,
        "nesterov": True,
    }
    with pytest.raises(OptimlabError, match="key=value"):
        parse_pairs(["momentum"], "--hp")
    with pytest.raises(OptimlabError, match="twice"):
        parse_pairs(["a=1", "a=2"], "--hp")


def test_config_file_checks_keys_and_types(tmp_path):
    good = tmp_path / "run.toml"
    good.write_text('problem = "digits_mlp"\nlr = 1\n[hp]\nbetas = [0.8, 0.9]\n')
    assert load_toml(good) == {"problem": "digits_mlp", "lr": 1, "hp": {"betas": [0.8, 0.9]}}
    bad = tmp_path / "bad.toml"
    bad.write_text('problem = "digits_mlp"\nepoch = 3\n')
    with pytest.raises(OptimlabError, match="unknown setting.*epoch.*valid settings: problem"):
        load_toml(bad)
    bad.write_text('epochs = "three"\n')
    with pytest.raises(OptimlabError, match="invalid epochs"):
        load_toml(bad)
    with pytest.raises(OptimlabError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")


def direct_run(seed, lr, momentum, epochs):
    """The same run as the CLI test below, assembled by hand from the libraries."""
    problem = problems.build("digits_mlp", seed=seed)
    opt = optim.create("momentum", problem.model.parameters(), lr=lr, momentum=momentum)
    steps = epochs * math.ceil(len(problem.splits.train.x) / problem.batch_size)
    sched = schedules.ScheduleAdapter(opt, schedules.create("cosine", lr=lr, T_max=steps))
    return fit(problem, opt, epochs=epochs, scheduler=sched, seed=seed)


def test_cli_run_equals_direct_fit_and_config_merges(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(
        'problem = "digits_mlp"\noptimizer = "momentum"\nlr = 0.5\nepochs = 2\nseed = 3\n'
        'schedule = "cosine"\n[hp]\nmomentum = 0.8\n'
    )
    out = tmp_path / "run"
    # The flag overrides the file's lr.
    rc = main(["train", "--config", str(config), "--lr", "0.05", "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    history = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    ref = direct_run(seed=3, lr=0.05, momentum=0.8, epochs=2)
    assert without_time(history) == without_time(ref.history)
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert "status     completed" in printed and "momentum (lr 0.05)" in printed


SGD = ["--problem", "digits_mlp", "--optimizer", "sgd"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizer", "adam"], "missing problem; valid problems: beale"),
        (["--problem", "digits_mlp"], "missing optimizer; valid optimizers: adadelta"),
        (["--problem", "nope", "--optimizer", "adam"], "unknown problem 'nope'; valid"),
        (["--problem", "digits_mlp", "--optimizer", "adamx"], "unknown optimizer 'adamx'"),
        (
            ["--problem", "digits_mlp", "--optimizer", "sgd", "--schedule", "cosin"],
            "unknown schedule 'cosin'",
        ),
        (
            ["--problem", "digits_mlp", "--optimizer", "sgd", "--schedule-arg", "a=1"],
            "need a schedule name (--schedule NAME)",
        ),
        (["--problem", "digits_mlp", "--optimizer", "sgd", "--resume"], "--resume needs --out"),
        (SGD + ["--batch-size", "0"], "invalid batch_size: 0; valid range is [1, inf]"),
        (SGD + ["--lr", "inf"], "invalid lr: inf; valid: a finite number >= 0"),
        (SGD + ["--lr", "nan"], "invalid lr: nan"),
        (SGD + ["--device", "tpu"], "invalid device 'tpu'; valid: auto, cpu, cuda"),
        (SGD + ["--grad-accumulation", "0"], "invalid grad_accumulation: 0"),
        (SGD + ["--seconds", "0"], "invalid seconds: 0.0; valid: a finite number > 0"),
        (SGD + ["--threads", "0"], "invalid threads: 0"),
        (SGD + ["--hp", "betas=0.9,0.99"], "unknown argument 'betas' of optimizer 'sgd'"),
        (SGD + ["--order", "sorted"], "invalid order 'sorted'; valid orders: random"),
        (SGD + ["--data-dir", "no/such/dir"], "invalid data_dir 'no/such/dir': no such directory"),
        (SGD + ["--resume", "--restart"], "contradict"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    """Each bad input ends in one line naming it and what is valid, before any work."""
    assert main(["train", *argv, "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optimlab: error: ") and message in err
    assert err.count("\n") == 1


def test_an_unwritable_out_is_an_error_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out in (blocker / "run", "/proc/optimlab-run"):
        assert main(["train", *SGD, "--epochs", "1", "--quiet", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"optimlab: error: invalid --out '{out}'") and err.count("\n") == 1
    assert blocker.read_text() == ""


def test_cli_refuses_a_different_run_in_the_same_directory(tmp_path, capsys):
    base = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--out", str(tmp_path)]
    assert main([*base, "--epochs", "1", "--quiet"]) == 0
    assert main([*base, "--epochs", "1", "--lr", "0.2", "--quiet"]) == 2
    assert "different settings (lr)" in capsys.readouterr().err
    assert main([*base, "--epochs", "1", "--lr", "0.2", "--quiet", "--restart"]) == 0


def test_cli_sigkill_then_rerun_same_command_is_bit_identical(tmp_path):
    args = ["--problem", "digits_mlp", "--optimizer", "adam", "--epochs", "6"]
    args += ["--checkpoint-every", "5", "--log-every", "7", "--quiet", "--hp", "eps=1e-7"]
    run_dir, ref_dir = tmp_path / "run", tmp_path / "ref"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = "import sys, torch; torch.set_num_threads(1); from optimlab.cli import main; "
    code += "sys.exit(main(sys.argv[1:]))"
    victim = subprocess.Popen(
        [sys.executable, "-c", code, "train", *args, "--out", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert main(["train", *args, "--out", str(ref_dir)]) == 0  # meanwhile, the reference
    last = run_dir / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    _, err = victim.communicate()
    assert victim.returncode == -signal.SIGKILL, err
    assert last.exists() and not (run_dir / "summary.json").exists()
    assert main(["train", *args, "--out", str(run_dir)]) == 0  # the same command again
    a = torch.load(ref_dir / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert without_time(a["history"]) == without_time(b["history"])
    assert a["step_log"] == b["step_log"]
    sa = json.loads((ref_dir / "summary.json").read_text())
    sb = json.loads((run_dir / "summary.json").read_text())
    assert without_time([sa["final"]]) == without_time([sb["final"]])


def test_fast_flag_trains_like_the_eager_path(tmp_path, capsys):
    """--fast selects the compiled path: same run to float32 rounding."""
    import json

    from optimlab.cli import main

    args = ["train", "--problem", "digits_mlp", "--optimizer", "adam", "--epochs", "2",
            "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "eager")]) == 0
    assert main([*args, "--fast", "--out", str(tmp_path / "fast")]) == 0
    eager = json.loads((tmp_path / "eager" / "summary.json").read_text())
    fast = json.loads((tmp_path / "fast" / "summary.json").read_text())
    assert eager["final"]["loss"] == pytest.approx(fast["final"]["loss"], rel=1e-4)


def test_preprocess_transform_is_stored_with_the_run(tmp_path):
    """--preprocess fits on train only and stores the transform in the run directory."""
    import torch

    from optimlab.cli import main
    from optimlab.data.preprocess import apply_fitted, apply_to_splits, from_state_dict
    from optimlab.problems import build

    out = tmp_path / "run"
    args = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--epochs", "1",
            "--preprocess", "zca_whiten", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    stored = from_state_dict(torch.load(out / "preprocess.pt", weights_only=True))
    splits = build("digits_mlp", seed=0).splits
    refit, fitted = apply_to_splits(splits, "zca_whiten")
    for key, value in fitted.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(stored.state_dict()[key], value), key
    assert torch.equal(apply_fitted(splits, stored).test.x, refit.test.x)
