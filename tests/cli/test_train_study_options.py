"""Every option a run offers is reachable from ``optimlab train`` and from study files
under the same name: the real command-line parser and the real study loader read each
one into the same run settings, and a bad value is one clear line from both."""

from __future__ import annotations

import pytest

from optimlab import optim, problems, schedules
from optimlab.cli import build_parser
from optimlab.cli.train import config_from_args
from optimlab.errors import OptimlabError
from optimlab.lab.runner import base_config
from optimlab.lab.spec import parse_study
from optimlab.lab.trial import run_config
from optimlab.nn import MODELS
from optimlab.run import RunConfig, build_run

PARSER = build_parser()


def from_cli(*argv: str) -> RunConfig:
    return config_from_args(PARSER.parse_args(["train", *argv]))


def from_study(text: str) -> RunConfig:
    """The run settings of the study's first trial, as the runner builds them."""
    spec = parse_study(text, source="study.toml")
    opt = spec.optimizers[0]
    return run_config(base_config(spec, spec.problems[0], opt, opt.params, seed=0))


def study(problem: str = "digits_mlp", contender: str = "", run: str = "") -> str:
    """A fixed-protocol study of one contender (``name = "sgd"`` unless ``contender``
    names one) with extra contender keys and a ``[run]`` table."""
    name = "" if contender.startswith("name =") else 'name = "sgd"\n'
    return (f'problems = ["{problem}"]\n[protocol]\nkind = "fixed"\n[budget]\nepochs = 1\n'
            f"[[optimizers]]\n{name}{contender}\n[run]\n{run}\n")  # fmt: skip


# (what, command-line arguments, study contender keys, study [run] table, fields)
CASES = [
    ("reduce_lr_on_plateau with Keras' settings",
     ["--reduce-lr-on-plateau", "factor=0.5", "--reduce-lr-on-plateau", "patience=3",
      "--reduce-lr-on-plateau", "min_delta=0.01", "--reduce-lr-on-plateau", "cooldown=1",
      "--reduce-lr-on-plateau", "min_lr=1e-5"],
     "", "reduce_lr_on_plateau = { factor = 0.5, patience = 3, min_delta = 0.01, "
     "cooldown = 1, min_lr = 1e-5 }",
     {"reduce_lr_on_plateau": {"factor": 0.5, "patience": 3, "min_delta": 0.01,
                               "cooldown": 1, "min_lr": 1e-5}}),
    ("reduce_lr_on_plateau on", ["--reduce-lr-on-plateau", "on"], "",
     "reduce_lr_on_plateau = {}", {"reduce_lr_on_plateau": {}}),
    ("order curriculum with pacing",
     ["--order", "curriculum", "--curriculum", "pacing='root'", "--curriculum", "start=0.3"],
     "", 'order = "curriculum"\ncurriculum = { pacing = "root", start = 0.3 }',
     {"order": "curriculum", "curriculum": {"pacing": "root", "start": 0.3}}),
    ("batch_schedule increase",
     ["--schedule", "multistep", "--schedule-arg", "milestones=100,200",
      "--batch-schedule", "increase", "--max-batch", "256"],
     'schedule = { name = "multistep", params = { milestones = [100, 200] } }',
     'batch_schedule = "increase"\nmax_batch = 256',
     {"schedule": "multistep", "schedule_args": {"milestones": [100, 200]},
      "batch_schedule": "increase", "max_batch": 256}),
    ("adversarial fgsm", ["--adversarial", "fgsm", "--adversarial-epsilon", "0.1",
                          "--adversarial-fraction", "0.5"],
     'regularize = { adversarial = "fgsm", adversarial_epsilon = 0.1, '
     "adversarial_fraction = 0.5 }", "",
     {"regularize": {"adversarial": "fgsm", "adversarial_epsilon": 0.1,
                     "adversarial_fraction": 0.5}}),
    ("adversarial pgd", ["--adversarial", "pgd", "--adversarial-epsilon", "0.2",
                         "--adversarial-steps", "5", "--adversarial-fraction", "1.0",
                         "--adversarial-norm", "l2", "--robust-epsilon", "0.2"],
     'regularize = { adversarial = "pgd", adversarial_epsilon = 0.2, adversarial_steps = 5, '
     'adversarial_fraction = 1.0, adversarial_norm = "l2", robust_epsilon = 0.2 }', "",
     {"regularize": {"adversarial": "pgd", "adversarial_epsilon": 0.2, "adversarial_steps": 5,
                     "adversarial_fraction": 1.0, "adversarial_norm": "l2",
                     "robust_epsilon": 0.2}}),
    ("kl_sparsity on sigmoid units",
     ["--kl-sparsity", "0.1", "--kl-target", "0.05", "--problem-arg", "activation='sigmoid'"],
     "regularize = { kl_sparsity = 0.1, kl_target = 0.05 }",
     'problem_args = { activation = "sigmoid" }',
     {"regularize": {"kl_sparsity": 0.1, "kl_target": 0.05},
      "problem_args": {"activation": "sigmoid"}}),
    ("a registered model", ["--model", "mlp", "--model-arg", "in_features=64",
                            "--model-arg", "hidden=16,", "--model-arg", "out_features=10"],
     "", 'model = "mlp"\nmodel_args = { in_features = 64, hidden = [16], out_features = 10 }',
     {"model": "mlp", "model_args": {"in_features": 64, "hidden": [16], "out_features": 10}}),
    ("adam_then_sgd by name",
     ["--optimizer", "adam_then_sgd"], 'name = "adam_then_sgd"', "",
     {"optimizer": "adam_then_sgd"}),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "contender", "run", "fields"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_the_same_settings_from_the_command_line_and_a_study(argv, contender, run, fields):
    optimizer = [] if "--optimizer" in argv else ["--optimizer", "sgd"]
    cli = from_cli("--problem", "digits_mlp", *optimizer, "--epochs", "1", "--threads", "1", *argv)
    lab = from_study(study(contender=contender, run=run))
    for name, value in fields.items():
        assert getattr(cli, name) == value, name
        assert getattr(lab, name) == value, name
    assert cli.identity() == lab.identity()


def test_every_registered_name_is_reachable_from_both():
    for name in optim.available():
        assert from_cli("--problem", "digits_mlp", "--optimizer", name).optimizer == name
        assert from_study(study(contender=f'name = "{name}"')).optimizer == name
    for name in schedules.SCHEDULES.names(aliases=False):
        assert from_cli("--problem", "digits_mlp", "--optimizer", "sgd",
                        "--schedule", name).schedule == name  # fmt: skip
        assert from_study(study(contender=f'schedule = {{ name = "{name}" }}')).schedule == name
    for name in problems.available():
        assert from_cli("--problem", name, "--optimizer", "sgd").problem == name
        assert from_study(study(problem=name)).problem == name
    for name in MODELS.names(aliases=False):
        assert from_cli("--problem", "digits_mlp", "--optimizer", "sgd",
                        "--model", name).model == name  # fmt: skip
        assert from_study(study(run=f'model = "{name}"')).model == name


# (command-line arguments, study contender keys, study [run] table, words of the error)
BAD = [
    (["--reduce-lr-on-plateau", "patiense=3"], "", "reduce_lr_on_plateau = { patiense = 3 }",
     "patiense"),
    (["--order", "curriculum", "--curriculum", "pacing='cubic'"], "",
     'order = "curriculum"\ncurriculum = { pacing = "cubic" }', "cubic"),
    (["--schedule", "step", "--batch-schedule", "decrease"], 'schedule = { name = "step" }',
     'batch_schedule = "decrease"', "decrease"),
    (["--adversarial", "cw", "--adversarial-epsilon", "0.1"],
     'regularize = { adversarial = "cw", adversarial_epsilon = 0.1 }', "", "fgsm"),
    (["--model", "resnet7"], "", 'model = "resnet7"', "resnet7"),
    (["--model", "mlp", "--model-arg", "widths=3,"], "",
     'model = "mlp"\nmodel_args = { widths = [3] }', "widths"),
    (["--problem-arg", "depth=3"], "", "problem_args = { depth = 3 }", "depth"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "contender", "run", "words"), BAD)
def test_a_bad_value_is_one_line_from_both(argv, contender, run, words):
    for read in (lambda: from_cli("--problem", "digits_mlp", "--optimizer", "sgd", *argv),
                 lambda: from_study(study(contender=contender, run=run))):  # fmt: skip
        with pytest.raises(OptimlabError) as err:
            read()
        assert words in str(err.value) and "\n" not in str(err.value)


def test_a_registered_model_is_trained_on_the_problems_data():
    config = from_cli("--problem", "digits_mlp", "--optimizer", "sgd", "--steps", "2",
                      "--model", "mlp", "--model-arg", "in_features=64",
                      "--model-arg", "hidden=16,", "--model-arg", "out_features=10")  # fmt: skip
    run = build_run(config)
    widths = [m.out_features for m in run.problem.model.modules() if hasattr(m, "out_features")]
    assert widths == [16, 10]
    assert run.fit().status == "completed"
    again = build_run(config).problem.model  # drawn from the run's seed
    first = build_run(config).problem.model
    assert all((a == b).all() for a, b in zip(again.parameters(), first.parameters()))


def test_a_model_that_does_not_fit_the_problem_is_one_line():
    config = from_cli("--problem", "digits_mlp", "--optimizer", "sgd", "--model", "lenet5")
    with pytest.raises(OptimlabError, match="'lenet5' does not fit problem 'digits_mlp'") as err:
        build_run(config)
    assert "\n" not in str(err.value)
