"""The optimizer registry: one record per named optimizer, read by the CLI, docs,
benchmarks and tests. Names follow the lectures; records with other defaults
(``momentum``, ``nesterov``, ``amsgrad``) are separate entries, not flags.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab.errors import OptimlabError
from optimlab.optim.accelerated import NAGC, NAGSC
from optimlab.optim.adadelta import Adadelta
from optimlab.optim.adagrad import Adagrad
from optimlab.optim.adam import Adam, AdamW
from optimlab.optim.adamax import Adamax
from optimlab.optim.base import COMMON_DEFAULTS, ChainOptimizer
from optimlab.optim.nadam import NAdam
from optimlab.optim.rmsprop import RMSprop
from optimlab.optim.sgd import SGD
from optimlab.optim.switching import SWATS, AdamThenSGD
from optimlab.registry import Registry


@dataclass(frozen=True)
class OptimizerRecord:
    """A named optimizer: its class, the defaults this name sets, and metadata.

    ``state_slots`` counts parameter-sized state buffers, so a float32 model needs
    ``4 * state_slots`` bytes of optimizer state per parameter.
    ``torch_class`` names torch.optim's implementation of the same rule, if any.
    """

    name: str
    builder: type[ChainOptimizer]
    description: str
    reference: str
    defaults: dict[str, Any] = field(default_factory=dict)
    state_slots: int = 0
    aliases: tuple[str, ...] = ()
    torch_class: str | None = None

    @property
    def state_bytes_per_param(self) -> int:
        return 4 * self.state_slots

    def hyperparameters(self) -> dict[str, Any]:
        """Every hyperparameter this optimizer takes, with the value it gets by default."""
        sig = inspect.signature(self.builder.__init__)
        hp = {
            k: p.default
            for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        return {**hp, **COMMON_DEFAULTS, **self.defaults}


OPTIMIZERS: Registry[OptimizerRecord] = Registry("optimizer")

for _record in [
    OptimizerRecord(
        "sgd",
        SGD,
        "(mini-batch) stochastic gradient descent: w <- w - lr*g",
        "Robbins & Monro 1951",
        {"lr": 0.01},
        0,
        ("gd",),
        "SGD",
    ),
    OptimizerRecord(
        "momentum",
        SGD,
        "heavy-ball momentum: b <- mu*b + g; w <- w - lr*b",
        "Polyak 1964; Qian 1999",
        {"lr": 0.01, "momentum": 0.9},
        1,
        (),
        "SGD",
    ),
    OptimizerRecord(
        "nesterov",
        SGD,
        "Nesterov accelerated gradient (look-ahead momentum)",
        "Nesterov 1983; Sutskever et al. 2013",
        {"lr": 0.01, "momentum": 0.9, "nesterov": True},
        1,
        ("nag",),
        "SGD",
    ),
    OptimizerRecord(
        "adagrad",
        Adagrad,
        "per-coordinate lr / sqrt(sum of squared gradients)",
        "Duchi, Hazan & Singer 2011",
        {},
        1,
        (),
        "Adagrad",
    ),
    OptimizerRecord(
        "rmsprop",
        RMSprop,
        "lr / running RMS of the gradient",
        "Hinton, Srivastava & Swersky 2012",
        {"lr": 1e-3},
        1,
        (),
        "RMSprop",
    ),
    OptimizerRecord(
        "adadelta",
        Adadelta,
        "RMS of updates over RMS of gradients, no lr needed",
        "Zeiler 2012",
        {},
        2,
        (),
        "Adadelta",
    ),
    OptimizerRecord(
        "adam",
        Adam,
        "bias-corrected momentum over bias-corrected RMS",
        "Kingma & Ba 2015",
        {},
        2,
        (),
        "Adam",
    ),
    OptimizerRecord(
        "amsgrad",
        Adam,
        "Adam with a non-decreasing second moment",
        "Reddi, Kale & Kumar 2018",
        {"amsgrad": True},
        3,
        (),
        "Adam",
    ),
    OptimizerRecord(
        "adamw",
        AdamW,
        "Adam with decoupled weight decay",
        "Loshchilov & Hutter 2019",
        {},
        2,
        (),
        "AdamW",
    ),
    OptimizerRecord(
        "adamax",
        Adamax,
        "Adam with an infinity-norm second moment",
        "Kingma & Ba 2015 (sec. 7.1)",
        {},
        2,
        (),
        "Adamax",
    ),
    OptimizerRecord(
        "nadam",
        NAdam,
        "Adam with Nesterov momentum",
        "Dozat 2016",
        {},
        2,
        (),
        "NAdam",
    ),
]:
    OPTIMIZERS.add(_record)


# Nesterov's method with the momentum of the theory (lecture 003), and switching rules.
for _record in [
    OptimizerRecord(
        "nag_c",
        NAGC,
        "Nesterov for convex f: y <- x - lr*g; x <- y + k/(k+3)*(y - y_prev)",
        "Nesterov 1983; Su, Boyd & Candes 2016",
        {"lr": 0.01},
        1,
    ),
    OptimizerRecord(
        "nag_sc",
        NAGSC,
        "Nesterov for mu-strongly convex f: momentum (1 - sqrt(mu lr))/(1 + sqrt(mu lr))",
        "Nesterov 2004; Su, Boyd & Candes 2016",
        {"lr": 0.01},
        1,
    ),
    OptimizerRecord(
        "swats",
        SWATS,
        "Adam, then SGD with momentum at the lr Adam's steps imply, once that estimate settles",
        "Keskar & Socher 2017",
        {},
        2,
    ),
    OptimizerRecord(
        "adam_then_sgd",
        AdamThenSGD,
        "Adam for switch_step updates, then SGD(sgd_lr, sgd_momentum)",
        "Keskar & Socher 2017; lecture 003 (Adam+SGD)",
        {},
        2,
    ),
]:
    OPTIMIZERS.add(_record)


def available() -> list[str]:
    """The registered optimizer names (without aliases)."""
    return OPTIMIZERS.names(aliases=False)


def get(name: str) -> OptimizerRecord:
    return OPTIMIZERS.get(name)


def create(name: str, params: Iterable[Any], **hparams: Any) -> torch.optim.Optimizer:
    """Build the optimizer registered as ``name`` (or an alias) over ``params``.

    ``hparams`` override the record's defaults; an unknown one raises
    ``OptimlabError`` listing the valid hyperparameters. ``fast=True`` selects the
    compiled fast path.
    """
    record = OPTIMIZERS.get(name)
    valid = {**record.hyperparameters(), "fast": False}
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise OptimlabError(
            f"unknown hyperparameter(s) {unknown} for optimizer {record.name!r}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    return record.builder(params, **{**record.defaults, **hparams})


def table() -> tuple[list[str], list[list[str]]]:
    """The registry as (headers, rows) for ``optimlab list optimizers``."""
    headers = ["name", "aliases", "lr", "state B/param", "torch.optim", "reference", "rule"]
    rows = []
    for record in OPTIMIZERS:
        rows.append(
            [
                record.name,
                ",".join(record.aliases) or "-",
                f"{record.hyperparameters()['lr']:g}",
                str(record.state_bytes_per_param),
                record.torch_class or "-",
                record.reference,
                record.description,
            ]
        )
    return headers, rows
