"""``recipe = true``: a problem's published recipe fills the settings a run leaves unset,
and what the run gives wins. On a small problem registered here with a recipe, and on
the He et al. CIFAR-10 problems' recipe (read without their data)."""

from __future__ import annotations

import dataclasses

import pytest

from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.problems import PROBLEMS
from optimlab.problems.catalog import HE_CIFAR_RECIPE
from optimlab.problems.problem import Recipe
from optimlab.run import RunConfig, build_run

RECIPE = Recipe(optimizer="momentum", lr=0.07, hp={"momentum": 0.8},
                schedule="multistep", schedule_args={"milestones": [5], "gamma": 0.5},
                steps=8, batch_size=50, augment="flip", reference="a test recipe")  # fmt: skip


@pytest.fixture
def toy(monkeypatch):
    """``toy_recipe``: logreg_digits with RECIPE, registered for the test only."""
    base = PROBLEMS.get("logreg_digits")

    def build(ctx):
        return dataclasses.replace(base.builder(ctx), name="toy_recipe", recipe=RECIPE)

    record = dataclasses.replace(base, name="toy_recipe", builder=build, recipe=RECIPE)
    monkeypatch.setitem(PROBLEMS._records, "toy_recipe", record)
    return "toy_recipe"


def test_the_recipe_fills_what_is_unset(toy):
    config = RunConfig(problem=toy, recipe=True).with_recipe()
    assert (config.optimizer, config.lr, config.hp) == ("momentum", 0.07, {"momentum": 0.8})
    assert config.schedule == "multistep"
    assert config.schedule_args == {"milestones": [5], "gamma": 0.5}
    assert (config.steps, config.batch_size, config.regularize) == (8, 50, {"augment": "flip"})
    assert config.with_recipe() == config  # filling is idempotent
    assert RunConfig(problem=toy, optimizer="sgd").with_recipe().lr is None  # recipe off


def test_given_settings_win_group_by_group(toy):
    given = RunConfig(problem=toy, recipe=True, lr=0.01, hp={"dampening": 0.1}, epochs=2,
                      batch_size=20, regularize={"augment": "crop:1"}).with_recipe()  # fmt: skip
    assert (given.optimizer, given.lr) == ("momentum", 0.01)
    assert given.hp == {"momentum": 0.8, "dampening": 0.1}
    assert (given.epochs, given.steps, given.batch_size) == (2, None, 20)
    assert given.regularize == {"augment": "crop:1"}
    other = RunConfig(problem=toy, recipe=True, optimizer="adam",
                      schedule="cosine").with_recipe()  # fmt: skip
    assert (other.optimizer, other.lr, other.hp) == ("adam", None, {})  # adam's own defaults
    assert (other.schedule, other.schedule_args) == ("cosine", {})


def test_a_built_run_trains_with_the_recipe(toy):
    run = build_run(RunConfig(problem=toy, recipe=True, threads=1))
    group = run.optimizer.param_groups[0]
    assert (run.config.optimizer, group["momentum"]) == ("momentum", 0.8)
    assert run.trainer.batch_size == 50 and run.trainer.batch_transform is not None
    result = run.fit()
    assert result.history[-1]["step"] == 8
    assert [s(t) for s in run.trainer.scheduler.schedules for t in (4, 5)] == [0.07, 0.035]
    identity = run.config.identity()
    assert identity["recipe"] is True and identity["optimizer"] == "momentum"
    assert "recipe" not in RunConfig(problem=toy, optimizer="sgd").identity()


def test_the_command_line_reports_the_recipe_optimizer(toy, capsys):
    assert main(["train", "--problem", toy, "--recipe", "--steps", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "run        toy_recipe with momentum (lr 0.07), seed 0" in out


def test_he_et_als_recipe_is_read_without_the_data():
    config = RunConfig(problem="cifar10_resnet20", recipe=True).with_recipe()
    assert PROBLEMS.get("cifar10_plain56").recipe is HE_CIFAR_RECIPE
    assert (config.optimizer, config.lr) == ("sgd", 0.1)
    assert (config.steps, config.batch_size) == (64_000, 128)
    assert config.hp == {"momentum": 0.9, "weight_decay": 1e-4}
    assert config.schedule_args == {"milestones": [32_000, 48_000], "gamma": 0.1}
    assert config.regularize == {"augment": "flip,crop:4"}


def test_errors_name_the_setting():
    with pytest.raises(OptimlabError, match=(
        "invalid recipe: problem 'digits_mlp' has none; valid: a problem with a published "
        "recipe [(]cifar10_resnet20, cifar10_plain20, cifar10_resnet56, cifar10_plain56[)]"
    )):  # fmt: skip
        RunConfig(problem="digits_mlp", recipe=True)
    with pytest.raises(OptimlabError, match="missing optimizer; valid optimizers"):
        RunConfig(problem="cifar10_resnet20")
    with pytest.raises(OptimlabError, match="unknown argument 'dampening' of optimizer 'adam'"):
        RunConfig(problem="cifar10_resnet20", recipe=True, optimizer="adam",
                  hp={"dampening": 0.1})  # fmt: skip
