"""The ``Problem`` bundle, the problem registry and ``build``.

A problem is everything a trainer needs besides the optimizer: data, a model
initialized from the seed, a loss, metrics and a default budget.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.data.loader import BatchLoader
from optimlab.data.splits import Splits
from optimlab.errors import OptimlabError
from optimlab.registry import Registry

Loss = Callable[[Tensor, Tensor], Tensor]
Metric = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Recipe:
    """A published training recipe for a problem: optimizer, schedule, budget and
    augmentation, as the paper that set the problem trained it.

    ``run_fields()`` gives them as ``optimlab.run.RunConfig`` fields, e.g.
    ``RunConfig(problem=name, **problem.recipe.run_fields())``. Step counts are
    optimizer steps (iterations), as schedules count them.
    """

    optimizer: str
    lr: float
    hp: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    schedule_args: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    batch_size: int | None = None
    augment: str | None = None  # an augmentation spec, optimlab.data.augment_presets
    reference: str = ""

    def run_fields(self) -> dict[str, Any]:
        """The recipe as keyword arguments of ``RunConfig`` (None values left out)."""
        fields_: dict[str, Any] = {"optimizer": self.optimizer, "lr": self.lr}
        if self.hp:
            fields_["hp"] = dict(self.hp)
        if self.schedule is not None:
            fields_["schedule"] = self.schedule
            fields_["schedule_args"] = dict(self.schedule_args)
        for key in ("steps", "batch_size"):
            if getattr(self, key) is not None:
                fields_[key] = getattr(self, key)
        if self.augment:
            fields_["regularize"] = {"augment": self.augment}
        return fields_


@dataclass(eq=False)
class Problem:
    """A built test problem.

    Attributes:
        model: the module to train, initialized deterministically from ``seed``.
        loss_fn: ``loss_fn(output, target)`` -> scalar batch mean. Where the problem
            has a penalty (e.g. cifar10_3c3d's L2), ``loss_fn`` adds it while the model
            is in training mode only, as DeepOBS does: trained with it, evaluated
            without it.
        metrics: name -> ``metric(output, target)`` -> 0-d tensor (batch mean).
        splits: train/val/test tensors; None for pure functions (the 2-D functions),
            whose model ignores its input: evaluate ``loss_fn(model(None), None)``.
        batch_size, epochs: the default budget. For 2-D functions one "epoch" is one
            step.
        task: "classification", "regression" or "objective" (the model output is the
            loss itself: 2-D functions and quadratics).
        lr_hints: starting learning rates by optimizer family ("sgd", "adam"); rough
            hints for a first run, not tuned results.
        penalty: the regularization term added in training (None if none).
        function: the ``Function2D`` of a 2-D function problem, for plotting.
        recipe: the published training recipe (``Recipe``) where the problem has one.
    """

    name: str
    model: nn.Module
    loss_fn: Loss
    metrics: dict[str, Metric]
    splits: Splits | None
    batch_size: int
    epochs: int
    task: str
    lr_hints: dict[str, float] = field(default_factory=dict)
    penalty: Callable[[], Tensor] | None = None
    seed: int = 0
    description: str = ""
    function: Any = None
    recipe: Recipe | None = None

    @property
    def lr_hint(self) -> float | None:
        """The SGD learning-rate hint (``lr_hints["sgd"]``)."""
        return self.lr_hints.get("sgd")

    def loader(
        self,
        split: str = "train",
        batch_size: int | None = None,
        *,
        order: str = "random",
        seed: int | None = None,
        drop_last: bool = False,
    ) -> BatchLoader:
        """A ``BatchLoader`` over one split, by default at the problem's batch size."""
        if self.splits is None:
            raise OptimlabError(f"problem {self.name!r} is a pure function and has no data")
        if split not in ("train", "val", "test"):
            raise OptimlabError(f"unknown split {split!r}; valid splits: train, val, test")
        part = getattr(self.splits, split)
        return BatchLoader(
            part.x,
            part.y,
            batch_size or self.batch_size,
            order=order,
            seed=self.seed if seed is None else seed,
            drop_last=drop_last,
        )


@dataclass(frozen=True)
class BuildContext:
    """What every problem builder receives."""

    seed: int
    data_dir: str | os.PathLike[str] | None
    download: bool
    device: torch.device


@dataclass(frozen=True)
class ProblemRecord:
    """A registered problem: its builder and a summary for listings."""

    name: str
    builder: Callable[..., Problem]
    description: str
    task: str
    dataset: str  # a dataset name, or "-" for problems that carry no dataset
    model: str
    loss: str
    batch_size: int | None  # None: the whole training set
    epochs: int
    reference: str = ""
    aliases: tuple[str, ...] = ()
    recipe: Recipe | None = None  # the built problem's recipe, readable without its data

    def options(self) -> list[str]:
        """Keyword options the builder accepts besides the context."""
        params = list(inspect.signature(self.builder).parameters.values())[1:]
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


PROBLEMS: Registry[ProblemRecord] = Registry("problem")


def available() -> list[str]:
    """Registered problem names (without aliases)."""
    return PROBLEMS.names(aliases=False)


def build(
    name: str,
    *,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
    **options: Any,
) -> Problem:
    """Build problem ``name`` with its model initialized from ``seed``.

    ``options`` go to the problem's builder (``PROBLEMS.get(name).options()`` lists
    them, e.g. ``loss="binary_hinge"`` for wilson_separable). The global torch RNG is
    left as it was: the model is drawn inside a forked RNG seeded with ``seed``.
    """
    record = PROBLEMS.get(name)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OptimlabError(f"invalid seed: {seed!r}; valid seeds are integers >= 0")
    unknown = set(options) - set(record.options())
    if unknown:
        valid = ", ".join(record.options()) or "none"
        raise OptimlabError(
            f"unknown option(s) {', '.join(sorted(unknown))} for problem {record.name!r}; "
            f"valid options: {valid}"
        )
    ctx = BuildContext(seed, data_dir, download, torch.device(device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        problem = record.builder(ctx, **options)
    problem.model.to(ctx.device)
    if problem.splits is not None and ctx.device.type != "cpu":
        problem.splits = problem.splits.to(ctx.device)
    return problem


def with_penalty(model: nn.Module, loss: Loss, penalty: Callable[[], Tensor]) -> Loss:
    """``loss`` plus ``penalty()`` while ``model`` is in training mode."""

    def regularized(output: Tensor, target: Tensor) -> Tensor:
        value = loss(output, target)
        return value + penalty() if model.training else value

    return regularized


def l2_penalty(model: nn.Module, factor: float) -> Callable[[], Tensor]:
    """0.5 * factor * sum of squared weights, biases excluded (TensorFlow's l2_loss
    convention, which DeepOBS uses)."""

    def penalty() -> Tensor:
        # Parameters are looked up at each call so that moving the model is harmless.
        weights = [p for n, p in model.named_parameters() if not n.endswith("bias")]
        return 0.5 * factor * torch.stack([w.pow(2).sum() for w in weights]).sum()

    return penalty


def table() -> tuple[list[str], list[list[str]]]:
    """Rows for ``optimlab list problems``; each description ends with the builder's
    options, which a run sets with ``problem_args``."""
    headers = ["name", "task", "dataset", "model", "loss", "batch", "epochs", "description"]
    rows = [
        [
            r.name,
            r.task,
            r.dataset,
            r.model,
            r.loss,
            "full" if r.batch_size is None else str(r.batch_size),
            str(r.epochs),
            f"{r.description} (options: {', '.join(r.options()) or 'none'})",
        ]
        for r in PROBLEMS
    ]
    return headers, rows
