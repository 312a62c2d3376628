"""``RunConfig``: one record of a run's settings, its conversions and its identity."""

from __future__ import annotations

import json

import pytest

from optimlab.errors import OptimlabError
from optimlab.run import RunConfig, load_toml

BASE = {"problem": "digits_mlp", "optimizer": "momentum"}


def test_json_round_trip_and_unknown_keys():
    config = RunConfig(
        **BASE, lr=0.05, hp={"momentum": 0.8}, schedule="cosine", epochs=3, threads=2,
        regularize={"dropout": 0.3}, out="runs/x",
    )  # fmt: skip
    text = json.dumps(config.to_json())
    assert RunConfig.from_json(json.loads(text)) == config
    with pytest.raises(OptimlabError, match="unknown setting.*epoch in run.json.*valid settings"):
        RunConfig.from_json({**BASE, "epoch": 3}, "run.json")


def test_identity_holds_what_changes_numbers_only():
    a = RunConfig(**BASE, epochs=2)
    where = a.replace(out="elsewhere", device="cpu", data_dir=".", checkpoint_every=5,
                      keep_epochs=True, download=True)  # fmt: skip
    assert where.key() == a.key() and where.identity() == a.identity()
    for change in ({"threads": 2}, {"seed": 1}, {"lr": 0.1}, {"hp": {"momentum": 0.5}},
                   {"batch_size": 64}, {"regularize": {"l2": 1e-4}}, {"fast": True}):  # fmt: skip
        assert a.replace(**change).key() != a.key(), change
    # tuples from Python and lists from TOML/JSON are one value
    assert (
        RunConfig(**BASE, hp={"momentum": 0.9}).key()
        == RunConfig(**BASE, hp={"momentum": 0.9}).key()
    )
    adam = {"problem": "digits_mlp", "optimizer": "adam"}
    assert RunConfig(**adam, hp={"betas": (0.8, 0.9)}) == RunConfig(
        **adam, hp={"betas": [0.8, 0.9]}
    )


def test_command_line_over_file_over_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('problem = "digits_mlp"\noptimizer = "momentum"\nlr = 1\nepochs = 4\n'
                    "[hp]\nmomentum = 0.5\ndampening = 0.1\n")  # fmt: skip
    given = {"lr": 0.05, "hp": {"momentum": 0.9}, "epochs": None}
    config = RunConfig.from_cli(given, load_toml(path))
    assert config.lr == 0.05 and config.epochs == 4
    assert config.hp == {"momentum": 0.9, "dampening": 0.1}
    assert config.grad_accumulation == 1 and config.order == "random"  # the defaults
    assert RunConfig.from_cli({**BASE, "hp": {"lr": 0.2}}).lr == 0.2
    with pytest.raises(OptimlabError, match="lr given both"):
        RunConfig.from_cli({**BASE, "lr": 0.1, "hp": {"lr": 0.2}})


def test_a_study_entry_is_the_same_record():
    entry = RunConfig.from_study_entry(
        problem="digits_mlp", optimizer="momentum", params={"lr": 0.1, "momentum": 0.8},
        schedule={"name": "cosine", "params": {"eta_min": 0.001}}, budget={"epochs": 2},
        seed=1, threads=1,
    )  # fmt: skip
    direct = RunConfig(
        **BASE, lr=0.1, hp={"momentum": 0.8}, schedule="cosine",
        schedule_args={"eta_min": 0.001}, epochs=2, seed=1, threads=1,
    )  # fmt: skip
    assert entry == direct and entry.params == {"momentum": 0.8, "lr": 0.1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 0}, r"invalid batch_size: 0; valid range is \[1, inf\]"),
        ({"epochs": 0}, "invalid epochs: 0"),
        ({"steps": -1}, "invalid steps: -1"),
        ({"lr": float("inf")}, "invalid lr: inf; valid: a finite number >= 0"),
        ({"lr": -0.5}, "invalid lr: -0.5"),
        ({"seconds": float("nan")}, "invalid seconds: nan"),
        ({"grad_accumulation": 0}, "invalid grad_accumulation: 0"),
        ({"device": "tpu"}, "invalid device 'tpu'; valid: auto, cpu, cuda, cuda:N, mps"),
        ({"epochs": 2.5}, "invalid epochs: 2.5; expected a whole number"),
        ({"epochs": True}, "invalid epochs: True; expected a whole number"),
        ({"hp": {"betas": (0.9, 0.99)}}, "unknown argument 'betas' of optimizer 'momentum'"),
        ({"hp": {"lr": 0.1}}, "give the learning rate as lr"),
        ({"schedule": "cosin"}, "unknown schedule 'cosin'; valid schedules"),
        ({"schedule": "cosine", "schedule_args": {"T": 3}}, "invalid parameter 'T'"),
        ({"schedule_args": {"T_max": 3}}, "need a schedule name"),
        ({"regularize": {"dropout": 1.0}}, "invalid dropout: 1.0"),
        ({"order": "sorted"}, "invalid order 'sorted'"),
        ({"preprocess": "pca"}, "unknown preprocessing .pca.; valid preprocessings: "),
        ({"problem": "nope"}, "unknown problem 'nope'; valid problems"),
        ({"optimizer": ""}, "missing optimizer; valid optimizers: "),
    ],
)
def test_bad_settings_name_the_field_and_what_is_valid(change, message):
    with pytest.raises(OptimlabError, match=message):
        RunConfig(**{**BASE, **change})


def test_a_bad_type_in_a_run_file_names_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('epochs = "three"\n')
    with pytest.raises(OptimlabError, match="invalid epochs in .*run.toml.*a whole number"):
        load_toml(path)


@pytest.mark.parametrize(
    "optimizer, hp",
    [
        ("lookahead", {"base": "sgd", "momentum": 0.9, "nesterov": True}),
        ("sam", {"base": "adam", "betas": [0.8, 0.99], "rho": 0.1}),
        ("asam", {"base": "lion", "betas": [0.9, 0.99]}),
    ],
)
def test_a_wrapper_takes_its_chosen_base_arguments(optimizer, hp):
    assert RunConfig(problem="digits_mlp", optimizer=optimizer, hp=hp).hp == hp


@pytest.mark.parametrize(
    "optimizer, hp, message",
    [
        # lookahead's default base is adam, which has no momentum
        ("lookahead", {"momentum": 0.9}, r"'momentum' of optimizer 'lookahead' over base 'adam'"),
        ("lookahead", {"base": "sgd", "betas": (0.9, 0.99)}, r"'betas' .* over base 'sgd'"),
        ("sam", {"base": "adam", "momentum": 0.9}, r"'momentum' .* over base 'adam'"),
    ],
)
def test_a_wrapper_refuses_arguments_its_chosen_base_lacks(optimizer, hp, message):
    with pytest.raises(OptimlabError, match=message + r"; valid: .*base") as err:
        RunConfig(problem="digits_mlp", optimizer=optimizer, hp=hp)
    assert "\n" not in str(err.value)
