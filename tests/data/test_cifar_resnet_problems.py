"""The He et al. (2016) CIFAR-10 problems: ResNet-20/56 and plain-20/56 with the paper's
recipe, built from small files in the true CIFAR-10 python format, and a clear error
naming how to get CIFAR-10 where it is absent."""

from __future__ import annotations

import pytest
import torch

from optimlab.data import sources
from optimlab.data.augment import RandomCrop, RandomFlip
from optimlab.data.augment_presets import from_spec
from optimlab.nn import count_parameters
from optimlab.nn.resnet import PadShortcut
from optimlab.problems import PROBLEMS, build
from optimlab.run import RunConfig, build_optimizer
from optimlab.schedules import create

NAMES = ["cifar10_resnet20", "cifar10_resnet56", "cifar10_plain20", "cifar10_plain56"]


@pytest.mark.parametrize("name", NAMES)
def test_problem_builds_and_steps_from_true_format_files(name, cifar_archive):
    problem = build(name, data_dir=cifar_archive, val_size=4)
    depth = int(name[-2:])
    residual = "resnet" in name
    assert problem.splits.train.x.shape == (16, 3, 32, 32)
    assert count_parameters(problem.model) == {20: 269_722, 56: 853_018}[depth]
    shortcuts = [m for m in problem.model.modules() if isinstance(m, PadShortcut)]
    assert len(shortcuts) == (2 if residual else 0)  # option A where the shape changes
    assert (problem.batch_size, problem.epochs) == (128, 64_000)  # 1 step per epoch here
    problem.model.train()
    xb, yb = next(iter(problem.loader()))
    loss = problem.loss_fn(problem.model(xb), yb)
    loss.backward()
    assert torch.isfinite(loss)
    assert PROBLEMS.get(name).epochs == 182  # 64k steps of 128 on the 45k training images


def test_the_recipe_is_he_et_als(cifar_archive):
    problem = build("cifar10_resnet20", data_dir=cifar_archive, val_size=4)
    recipe = problem.recipe
    config = RunConfig(problem="cifar10_resnet20", **recipe.run_fields())
    assert (config.optimizer, config.lr, config.batch_size, config.steps) == (
        "sgd", 0.1, 128, 64_000,
    )  # fmt: skip
    assert config.hp == {"momentum": 0.9, "weight_decay": 1e-4}
    optimizer, scheduler = build_optimizer(config, problem.model.parameters(), config.steps)
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 1e-4)
    schedule = create(config.schedule, lr=config.lr, **config.schedule_args)
    lrs = [schedule(t) for t in (0, 31_999, 32_000, 47_999, 48_000, 63_999)]
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    augment = from_spec(config.regularize["augment"])
    kinds = {type(op): op for op in augment.ops}
    assert set(kinds) == {RandomCrop, RandomFlip}
    assert kinds[RandomCrop].padding == 4 and kinds[RandomFlip].p == 0.5
    x = problem.splits.train.x[:4]
    assert augment(x, problem.splits.train.y[:4], 0)[0].shape == x.shape  # 32x32 crops


def test_absent_cifar10_names_how_to_get_it(isolated):
    with pytest.raises(sources.DatasetNotFound, match="download=True.*--download"):
        build("cifar10_resnet20", data_dir=isolated)


def test_on_the_real_cifar10_when_present():
    try:
        problem = build("cifar10_resnet20", val_size=5000)
    except sources.DatasetNotFound as err:
        pytest.skip(f"CIFAR-10 is absent: {err}")
    assert (len(problem.splits.train), len(problem.splits.val)) == (45_000, 5_000)
    assert problem.epochs == 182
