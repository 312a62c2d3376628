"""``order = "curriculum"``: easy examples first, with the difficulty scores made by the run.

A curriculum (:class:`optimlab.data.ordering.Curriculum`) needs one difficulty score
per training example. The run makes them with ``scoring = "reference"``: the transfer
(self-taught) scoring of Hacohen & Weinshall (2019). A reference model of the same
architecture, drawn from seed ``seed + 1``, is trained on the run's training split for
``scoring_epochs`` epochs (1) with the run's optimizer at its initial learning rate (no
schedule, no regularization, random order from seed ``seed + 1``, the run's batch size);
each example's score is then its loss under that model
(:func:`optimlab.data.ordering.reference_losses`): low = easy.

The scores are a function of the run's settings alone, and they are computed once:
with an output directory they are written to ``curriculum_scores.pt`` there (atomically,
with the run's identity), and a resumed run reads them back instead of training the
reference again. ``--restart`` computes them afresh.

The settings (the ``curriculum`` table), with their defaults: ``start`` 0.2 (the
fraction of the easiest examples in epoch 0), ``epochs`` 10 (over which the pool grows
to the whole set), ``pacing`` linear (also root, exp, step), ``stages`` 4 (of the step
pacing), ``shuffle`` true (shuffle the pool each epoch), ``scoring`` reference,
``scoring_epochs`` 1.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import OptimlabError, check_range
from optimlab.run.config import CURRICULUM_KEYS, RunConfig

SCORINGS = ("reference",)
SCORES_FILE = "curriculum_scores.pt"

_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "start": ((int, float), "a number in (0, 1]"),
    "epochs": ((int,), "a whole number >= 0"),
    "pacing": ((str,), "a pacing name"),
    "stages": ((int,), "a whole number >= 1"),
    "shuffle": ((bool,), "true or false"),
    "scoring": ((str,), "a scoring name"),
    "scoring_epochs": ((int,), "a whole number >= 1"),
}


def defaults() -> dict[str, Any]:
    """Every setting at its default (the pacing ones are ``Curriculum``'s own)."""
    from optimlab.data.ordering import Curriculum

    params = inspect.signature(Curriculum).parameters
    pacing = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    return {**pacing, "scoring": "reference", "scoring_epochs": 1}


def settings(config: RunConfig) -> dict[str, Any]:
    """The run's curriculum settings, defaults filled in."""
    return {**defaults(), **config.curriculum}


def check_curriculum(table: dict[str, Any]) -> None:
    """Refuse unknown keys and bad values, naming ``curriculum``."""
    from optimlab.data.ordering import pacing_fraction

    for key, value in table.items():
        if key not in CURRICULUM_KEYS:
            raise OptimlabError(
                f"invalid curriculum setting {key!r}; valid: {', '.join(CURRICULUM_KEYS)}"
            )
        kinds, words = _TYPES[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise OptimlabError(f"invalid curriculum {key}: {value!r}; expected {words}")
    s = {**defaults(), **table}
    if s["scoring"] not in SCORINGS:
        raise OptimlabError(
            f"invalid curriculum scoring {s['scoring']!r}; valid: {', '.join(SCORINGS)}"
        )
    try:
        check_range("scoring_epochs", s["scoring_epochs"], 1)
        pacing_fraction(0, s["start"], s["epochs"], s["pacing"], s["stages"])
    except OptimlabError as err:
        raise OptimlabError(f"invalid curriculum: {err}") from None


def pool_sizes(config: RunConfig, n: int) -> Callable[[int], int]:
    """``epoch -> examples visited`` out of ``n`` (all of them without a curriculum)."""
    if config.order != "curriculum":
        return lambda epoch: n
    from optimlab.data.ordering import pacing_fraction, pool_size

    s = settings(config)

    def size(epoch: int) -> int:
        return pool_size(n, pacing_fraction(epoch, s["start"], s["epochs"], s["pacing"],
                                            s["stages"]))  # fmt: skip

    return size


def make_curriculum(
    config: RunConfig, problem: Any, batch_size: int, *, restart: bool = False
) -> Any:
    """The run's :class:`~optimlab.data.ordering.Curriculum`, with its scores read from the
    run directory when they are there for these settings, else computed (and stored)."""
    from optimlab.data.ordering import Curriculum
    from optimlab.io import atomic_torch_save

    if problem.splits is None or problem.task not in ("classification", "regression"):
        raise OptimlabError(
            f"order curriculum needs a problem with training examples and a per-example "
            f"loss; valid: a classification or regression problem, not {problem.name!r}"
        )
    identity = config.identity()
    path = Path(config.out) / SCORES_FILE if config.out else None
    scores = None
    if path is not None and path.exists() and not restart:
        saved = torch.load(path, weights_only=True)
        if saved.get("config") == identity:
            scores = saved["scores"]
    if scores is None:
        scores = reference_scores(config, problem, batch_size)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_torch_save({"scores": scores, "config": identity}, path)
    s = settings(config)
    return Curriculum(scores, start=s["start"], epochs=s["epochs"], pacing=s["pacing"],
                      stages=s["stages"], shuffle=s["shuffle"])  # fmt: skip


def reference_scores(config: RunConfig, problem: Any, batch_size: int) -> torch.Tensor:
    """Each training example's loss under the reference model (see the module doc)."""
    from optimlab import problems
    from optimlab.data.ordering import reference_losses
    from optimlab.run.build import make_optimizer
    from optimlab.train import Trainer

    seed, train = config.seed + 1, problem.splits.train
    reference = problems.build(config.problem, seed=seed, data_dir=config.data_dir,
                               download=config.download, device=train.x.device,
                               **config.problem_args)  # fmt: skip
    model = reference.model
    if config.model is not None:  # the reference has the run's architecture
        from optimlab.run.build import registry_model

        model = registry_model(config.model, config.model_args, seed=seed)
    model = model.to(device=train.x.device, dtype=train.x.dtype)
    optimizer, _ = make_optimizer(config.optimizer, model.parameters(), lr=config.lr,
                                  hp=config.hp, fast=config.fast, model=model)  # fmt: skip
    s = settings(config)
    Trainer((model, reference.loss_fn, {}, {"train": (train.x, train.y)}), optimizer,
            epochs=s["scoring_epochs"], batch_size=batch_size, seed=seed,
            train_metrics=False, log_every=1 << 30).run()  # fmt: skip
    return reference_losses(model, train.x, train.y, task=problem.task).to(torch.float64)
