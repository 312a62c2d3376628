"""``adam_then_sgd`` switched at an epoch (``switch_epoch``): the run turns the epoch into
the updates of the epochs before it, as the trainer takes them, so the run is the one
switched at that step, bit for bit; a growing batch changes the count; the setting is
read alike from the command line and a study, a bad one is one line, and an
interrupted run resumes exactly."""

from __future__ import annotations

import math

import pytest
import torch
from loop_resume import assert_same_run, crashed_and_resumed, fit

from optimlab.cli import build_parser, main
from optimlab.cli.train import config_from_args
from optimlab.errors import OptimlabError
from optimlab.lab.runner import base_config
from optimlab.lab.spec import parse_study
from optimlab.lab.trial import run_config
from optimlab.run import RunConfig, build_run

N, B = 1294, 32  # digits_mlp's training examples and batch size
PER_EPOCH = math.ceil(N / B)  # 41
HP = {"sgd_lr": 0.05, "sgd_momentum": 0.9}
BASE = RunConfig(problem="digits_mlp", optimizer="adam_then_sgd", lr=1e-3, epochs=3, threads=1)


def weights(config: RunConfig) -> dict[str, torch.Tensor]:
    return fit(config)[1]


def test_switching_at_epoch_two_is_switching_after_its_updates():
    by_epoch = weights(BASE.replace(hp={**HP, "switch_epoch": 2}))
    by_step = weights(BASE.replace(hp={**HP, "switch_step": 2 * PER_EPOCH}))
    one_later = weights(BASE.replace(hp={**HP, "switch_step": 2 * PER_EPOCH + 1}))
    assert all(torch.equal(by_epoch[k], by_step[k]) for k in by_step)
    assert not all(torch.equal(by_epoch[k], one_later[k]) for k in by_step)


def test_a_growing_batch_shortens_the_epochs_before_the_switch():
    """Epochs 0 and 1 at batch 32, epoch 2 at 320 (the LR's tenfold drop at step 82)."""
    config = BASE.replace(
        optimizer="adam_then_sgd", lr=0.05, epochs=4, hp={**HP, "switch_epoch": 3},
        schedule="multistep", schedule_args={"milestones": [2 * PER_EPOCH]},
        batch_schedule="increase", max_batch=640,
    )  # fmt: skip
    group = build_run(config).optimizer.param_groups[0]
    assert group["switch_step"] == 2 * PER_EPOCH + math.ceil(N / 320) == 87
    assert group["switch_epoch"] is None


def test_an_interrupted_run_before_the_switch_resumes_exactly(tmp_path):
    config = BASE.replace(hp={**HP, "switch_epoch": 2})
    whole = fit(config.replace(out=str(tmp_path / "whole")))
    resumed = crashed_and_resumed(config.replace(out=str(tmp_path / "cut")), epoch=0)
    assert_same_run(whole, resumed)


def study(params: str) -> str:
    return (
        'problems = ["digits_mlp"]\n[protocol]\nkind = "fixed"\n[budget]\nepochs = 1\n'
        f'[[optimizers]]\nname = "adam_then_sgd"\nparams = {{ {params} }}\n'
    )


def from_study(text: str) -> RunConfig:
    spec = parse_study(text, source="study.toml")
    opt = spec.optimizers[0]
    return run_config(base_config(spec, spec.problems[0], opt, opt.params, seed=0))


def test_the_same_setting_from_the_command_line_and_a_study():
    args = ["train", "--problem", "digits_mlp", "--optimizer", "adam_then_sgd",
            "--hp", "switch_epoch=2", "--epochs", "1"]  # fmt: skip
    cli = config_from_args(build_parser().parse_args(args))
    lab = from_study(study("switch_epoch = 2"))
    assert cli.hp == lab.hp == {"switch_epoch": 2}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ("switch_epoch = -1", "invalid switch_epoch: -1; expected an integer >= 0"),
        ("switch_epoch = 1.5", "invalid switch_epoch: 1.5; expected an integer >= 0"),
        ("switch_epoch = 2, switch_step = 10", "give one of switch_step (10) and switch_epoch"),
    ],
)
def test_bad_settings_are_one_line_from_both(params, words, capsys):
    with pytest.raises(OptimlabError) as err:
        from_study(study(params))
    assert words in str(err.value) and "\n" not in str(err.value)
    hp = [x for p in params.split(", ") for x in ("--hp", p.replace(" ", ""))]
    argv = ["train", "--problem", "digits_mlp", "--optimizer", "adam_then_sgd", "--epochs", "1"]
    assert main([*argv, *hp, "--quiet"]) == 2
    message = capsys.readouterr().err.strip()
    assert words in message and "\n" not in message
