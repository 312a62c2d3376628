"""``problem_args``: a problem's builder options given from a run (``--problem-arg``, a
run file's or a study's ``problem_args`` table), checked against the builder's keyword
arguments; and KL sparsity trained through it on sigmoid units from the command line."""

from __future__ import annotations

import pytest
import torch

from optimlab import problems
from optimlab.errors import OptimlabError
from optimlab.lab.spec import parse_study
from optimlab.run import RunConfig, build_run

SIGMOID = {"activation": "sigmoid", "hidden": [32]}


def test_unknown_key_is_one_line_naming_it_and_the_valid_ones():
    with pytest.raises(OptimlabError) as err:
        RunConfig(problem="digits_mlp", optimizer="sgd", problem_args={"activaton": "sigmoid"})
    text = str(err.value)
    assert "'activaton'" in text and "digits_mlp" in text and "\n" not in text
    for valid in problems.PROBLEMS.get("digits_mlp").options():
        assert valid in text
    with pytest.raises(OptimlabError, match="valid: start"):
        RunConfig(problem="rosenbrock", optimizer="sgd", problem_args={"activation": "relu"})


def test_in_the_identity_only_when_given():
    plain = RunConfig(problem="digits_mlp", optimizer="sgd")
    given = plain.replace(problem_args=SIGMOID)
    assert "problem_args" not in plain.identity()
    assert given.identity()["problem_args"] == SIGMOID
    assert given.key() != plain.key()


def test_the_built_run_has_the_builders_model():
    run = build_run(RunConfig(problem="digits_mlp", optimizer="sgd", problem_args=SIGMOID))
    layers = [m for m in run.problem.model.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in layers] == [32, 10]
    assert any(isinstance(m, torch.nn.Sigmoid) for m in run.problem.model.modules())


def test_command_line_and_run_file(tmp_path):
    from optimlab.cli import build_parser
    from optimlab.cli.train import config_from_args

    parser = build_parser()
    argv = ["train", "--problem", "digits_mlp", "--optimizer", "sgd",
            "--problem-arg", "activation=sigmoid", "--problem-arg", "hidden=32,"]  # fmt: skip
    assert config_from_args(parser.parse_args(argv)).problem_args == SIGMOID
    toml = tmp_path / "run.toml"
    toml.write_text('problem = "digits_mlp"\noptimizer = "sgd"\n'
                    '[problem_args]\nactivation = "sigmoid"\nhidden = [32]\n')  # fmt: skip
    args = parser.parse_args(["train", "--config", str(toml), "--problem-arg", "dropout=0.1"])
    assert config_from_args(args).problem_args == {**SIGMOID, "dropout": 0.1}


STUDY = """
name = "s"
problems = {problems}
optimizers = ["sgd"]
[protocol]
kind = "fixed"
[run]
problem_args = {{ activation = "sigmoid" }}
"""


def test_study_run_table_checked_against_every_problem():
    spec = parse_study(STUDY.format(problems='["digits_mlp"]'))
    assert spec.run["problem_args"] == {"activation": "sigmoid"}
    # logreg_digits has no activation: the study is refused when read, not in a run
    with pytest.raises(OptimlabError, match="'activation'.*logreg_digits"):
        parse_study(STUDY.format(problems='["digits_mlp", "logreg_digits"]'))


def _mean_hidden_activation(out_dir) -> float:
    """The sigmoid units' mean activation over the training set, final weights."""
    checkpoint = torch.load(out_dir / "checkpoints" / "last.pt", weights_only=False)
    problem = problems.build("digits_mlp", **SIGMOID)
    problem.model.load_state_dict(checkpoint["model"])
    problem.model.eval()
    outputs: list[torch.Tensor] = []
    (unit,) = [m for m in problem.model.modules() if isinstance(m, torch.nn.Sigmoid)]
    unit.register_forward_hook(lambda m, i, o: outputs.append(o))
    with torch.no_grad():
        problem.model(problem.splits.train.x)
    return outputs[0].mean().item()


def test_kl_sparsity_from_the_command_line_moves_activations_to_the_target(tmp_path):
    from optimlab.cli import main

    argv = ["train", "--problem", "digits_mlp", "--problem-arg", "activation=sigmoid",
            "--problem-arg", "hidden=32,", "--optimizer", "adam", "--lr", "0.01",
            "--epochs", "2", "--quiet"]  # fmt: skip
    target = 0.05
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert main([*argv, "--out", str(tmp_path / "kl"), "--kl-sparsity", "0.1",
                 "--kl-target", str(target)]) == 0  # fmt: skip
    plain = _mean_hidden_activation(tmp_path / "plain")
    sparse = _mean_hidden_activation(tmp_path / "kl")
    # sigmoid units start near 0.5 and stay there without the penalty
    assert abs(plain - 0.5) < 0.1
    assert abs(sparse - target) < abs(plain - target) - 0.1


def test_tables_added_later_stay_out_of_the_identity_while_empty():
    # a run recorded before these tables existed keeps its key
    identity = RunConfig(problem="digits_mlp", optimizer="sgd").identity()
    assert "curriculum" not in identity and "problem_args" not in identity
