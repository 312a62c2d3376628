"""A study's run tables carry the training loop's settings (plateau, curriculum, growing
batch, recipe) into its trials, and refuse bad ones with the key and line."""

from __future__ import annotations

import pytest

from optimlab.errors import OptimlabError
from optimlab.lab import parse_study
from optimlab.lab.runner import base_config
from optimlab.lab.trial import run_config

STUDY = """
name = "t"
problems = ["digits_mlp"]

[run]
{run}

[[optimizers]]
name = "sgd"
schedule = {{ name = "step", params = {{ step_size = 41 }} }}
run = {{ batch_schedule = "increase", max_batch = 128 }}

[[optimizers]]
name = "momentum"
run = {{ {momentum} }}
"""


def configs(run: str, momentum: str = "") -> dict[str, object]:
    spec = parse_study(STUDY.format(run=run, momentum=momentum))
    return {o.label: run_config(base_config(spec, "digits_mlp", o, {"lr": 0.1}, 0))
            for o in spec.optimizers}  # fmt: skip


def test_the_loop_settings_reach_the_trials():
    runs = configs('order = "curriculum"\ncurriculum = { start = 0.5, pacing = "root" }')
    assert runs["sgd"].batch_schedule == "increase" and runs["sgd"].max_batch == 128
    assert runs["momentum"].batch_schedule is None
    for config in runs.values():
        assert config.order == "curriculum"
        assert config.curriculum == {"start": 0.5, "pacing": "root"}
    plateau = configs("", momentum="reduce_lr_on_plateau = {}")["momentum"]
    assert plateau.reduce_lr_on_plateau == {} and "reduce_lr_on_plateau" in plateau.identity()


def test_settings_are_checked_with_each_contenders_schedule():
    """sgd has a schedule, which a plateau rule would fight; momentum has none, which a
    growing batch needs."""
    with pytest.raises(OptimlabError, match=r"line 5: run: reduce_lr_on_plateau is not "
                       "available with a schedule"):  # fmt: skip
        configs("reduce_lr_on_plateau = {}")
    with pytest.raises(OptimlabError, match=r"optimizers\[1\]\.run: batch_schedule increase "
                       "needs an LR schedule"):  # fmt: skip
        configs("", momentum='batch_schedule = "increase"')


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ('curriculum = { pacing = "cubic" }',
         r"line 5: run: curriculum settings need order curriculum"),
        ('order = "curriculum"\ncurriculum = { pacing = "cubic" }',
         r"run: invalid curriculum: unknown pacing 'cubic'"),
        ("reduce_lr_on_plateau = { factor = 1.5 }",
         r"run: invalid reduce_lr_on_plateau: invalid factor: 1.5"),
        ("recipe = true", r"run: invalid recipe: problem 'digits_mlp' has none"),
    ],
)  # fmt: skip
def test_bad_loop_settings_name_the_table_and_line(run, message):
    with pytest.raises(OptimlabError, match=message):
        configs(run)
