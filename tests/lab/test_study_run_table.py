"""A study's ``run`` tables: any run-file setting the study does not own, for every trial
(``[run]``) or one contender (``run = {...}``), checked when the file is read and carried
unchanged into each trial's run configuration."""

from __future__ import annotations

import json

import pytest

from optimlab.errors import OptimlabError
from optimlab.lab import parse_study
from optimlab.lab.runner import base_config
from optimlab.lab.spec import StudySpec
from optimlab.lab.trial import run_config

STUDY = """
name = "t"
problems = ["digits_mlp"]
optimizers = [{{ name = "sgd" }}, {{ name = "adam", run = {{ order = "shuffle_once" }} }}]

[run]
{run}
"""


def configs(run: str) -> dict[str, object]:
    spec = parse_study(STUDY.format(run=run))
    return {o.label: run_config(base_config(spec, "digits_mlp", o, {"lr": 0.1}, 0))
            for o in spec.optimizers}  # fmt: skip


def test_the_studys_table_reaches_every_trial_and_a_contenders_overrides_it():
    runs = configs('dtype = "float64"\norder = "cyclic"')
    assert runs["sgd"].dtype == runs["adam"].dtype == "float64"
    assert runs["sgd"].order == "cyclic" and runs["adam"].order == "shuffle_once"
    assert runs["sgd"].lr == 0.1  # the study's own keys still decide the rest


def test_without_run_tables_a_trial_keeps_its_identity():
    spec = parse_study(STUDY.format(run="").replace(', run = { order = "shuffle_once" }', ""))
    config = base_config(spec, "digits_mlp", spec.optimizers[0], {"lr": 0.1}, 0)
    assert "run" not in config  # so studies written before the run tables resume


def test_the_run_tables_round_trip_through_the_stored_form():
    spec = parse_study(STUDY.format(run='dtype = "float64"'))
    data = json.loads(json.dumps(spec.to_dict()))
    assert StudySpec.from_dict(data) == spec and data["run"] == {"dtype": "float64"}


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("lr = 0.5", r"line 7: run\.lr: set by the study's own keys, not in a run table"),
        ("epochs = 3", r"run\.epochs: set by the study's own keys"),
        ("colour = 1", r"run\.colour: unknown run setting; valid: .*\border\b"),
        ('order = "sideways"', r"line 6: run: invalid order 'sideways'; valid orders: random"),
        ('dtype = "float16"', r"run: invalid dtype 'float16'; valid: float32, float64"),
        ('parallel = "sync"\nnnodes = 2', r"run\.nnodes: a trial runs on one machine; got 2"),
    ],
)
def test_a_bad_run_table_names_the_key_and_what_is_valid(run, message):
    with pytest.raises(OptimlabError, match=message) as err:
        parse_study(STUDY.format(run=run), source="s.toml")
    assert "\n" not in str(err.value)


def test_a_bad_contender_run_table_names_the_contender():
    text = STUDY.format(run="").replace('order = "shuffle_once"', 'order = "nope"')
    with pytest.raises(OptimlabError, match=r"optimizers\[1\]\.run: invalid order 'nope'"):
        parse_study(text)
