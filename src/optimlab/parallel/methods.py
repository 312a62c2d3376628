"""The parallel methods a run may use: one record per method (no torch.distributed import
here: the run configuration checks names and settings without paying for it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.registry import Registry


@dataclass(frozen=True)
class Method:
    """A parallel method, as the run configuration and the launchers see it.

    Attributes:
        name: the value of ``RunConfig.parallel`` (``--parallel``).
        description: one line.
        reference: the paper.
        launched: its processes form a torch.distributed process group, started by
            the elastic launcher or torchrun.
        lockstep: the processes share every global batch and step together (the world
            size divides the batch; every process must stop at the same step).
        servers: some ranks serve the parameters, the others train replicas of the
            model; the run needs ``servers + 1`` processes or more.
        delay_model: asynchronous; ``simulate_delay`` replays it in one process with
            a seeded staleness.
        resumable: a run of several processes resumes from its checkpoint.
        options: the run settings that belong to this method.
    """

    name: str
    description: str
    reference: str = ""
    launched: bool = False
    lockstep: bool = False
    servers: bool = False
    delay_model: bool = False
    resumable: bool = True
    options: tuple[str, ...] = ()


_SERVER_OPTIONS = ("servers", "simulate_delay")
_DOWNPOUR_OPTIONS = (*_SERVER_OPTIONS, "n_fetch", "n_push", "replica_lr")
_EASGD_OPTIONS = ("easgd_rho", "easgd_period", "easgd_momentum")

REGISTRY: Registry[Method] = Registry("parallel method")
for _method in (
    Method("none", "one process"),
    Method(
        "sync", "synchronous data parallel: gradients all-reduced every step (DDP)",
        "Goyal et al. 2017", launched=True, lockstep=True,
    ),
    Method(
        "local_sgd", "(post-)local SGD: local steps, models averaged every period steps",
        "Stich 2019; Lin et al. 2020", launched=True, lockstep=True,
        options=("local_sgd_period", "local_sgd_warmup"),
    ),
    Method(
        "hogwild", "Hogwild!: processes update one model in shared memory without locks",
        "Niu et al. 2011", resumable=False,
    ),
    Method(
        "downpour", "Downpour SGD: asynchronous replicas, sharded parameter server "
        "(the run's optimizer, AdaGrad in the paper, on the server)", "Dean et al. 2012",
        launched=True, servers=True, delay_model=True, options=_DOWNPOUR_OPTIONS,
    ),
    Method(
        "delay_tolerant", "Downpour with delay-tolerant AdaGrad (AdaRevision) on the "
        "server", "McMahan & Streeter 2014", launched=True, servers=True, delay_model=True,
        options=_DOWNPOUR_OPTIONS,
    ),
    Method(
        "easgd", "elastic averaging SGD, synchronous: the center moves by an all-reduce "
        "every period steps", "Zhang, Choromanska & LeCun 2015", launched=True,
        lockstep=True, options=_EASGD_OPTIONS,
    ),
    Method(
        "easgd_async", "elastic averaging SGD, asynchronous: the center on server ranks",
        "Zhang, Choromanska & LeCun 2015", launched=True, servers=True, delay_model=True,
        options=(*_SERVER_OPTIONS, *_EASGD_OPTIONS),
    ),
    Method(
        "pipeline", "pipeline model parallel: the model split into stages, one process "
        "each, GPipe micro-batches (torch.distributed.pipelining)", "Huang et al. 2019",
        launched=True, options=("micro_batches",),
    ),
):  # fmt: skip
    REGISTRY.add(_method)

METHODS = {m.name: m.description for m in REGISTRY}
"""Method name -> one line describing it (``RunConfig.parallel`` takes the names)."""

DISTRIBUTED = tuple(m.name for m in REGISTRY if m.launched)
"""Methods whose processes form a torch.distributed process group, started by the
elastic launcher or torchrun (hogwild's share one machine's memory instead)."""

DEFAULT_LOCAL_SGD_PERIOD = 8
"""Steps between model averages of local SGD when ``local_sgd_period`` is not given."""

DEFAULT_EASGD_RHO = 1.0
"""EASGD's elastic strength rho when ``easgd_rho`` is not given (alpha = lr * rho)."""


def method(name: str) -> Method:
    """The record of method ``name``; an unknown name lists the valid ones."""
    if name not in METHODS:
        raise OptimlabError(f"invalid parallel {name!r}; valid: {', '.join(METHODS)}")
    return REGISTRY.get(name)


def launched(config: Any) -> bool:
    """Whether ``config`` runs in a process group started by a launcher (a method whose
    delay is simulated runs in this one process instead)."""
    return config.parallel in DISTRIBUTED and getattr(config, "simulate_delay", None) is None


def runs_in_processes(config: Any) -> bool:
    """Whether ``config``'s run starts processes of its own: a launched method, or
    Hogwild!'s shared-memory processes."""
    return launched(config) or config.parallel == "hogwild"


def elastic_alpha(config: Any) -> float:
    """EASGD's moving rate ``alpha = lr * rho``: the run's lr (the optimizer's default
    when not given; the starting value under a schedule) times ``easgd_rho``."""
    from optimlab import optim

    lr = config.lr if config.lr is not None else optim.get(config.optimizer).hyperparameters()["lr"]
    rho = DEFAULT_EASGD_RHO if config.easgd_rho is None else config.easgd_rho
    return float(lr) * float(rho)


def options_of(setting: str) -> list[str]:
    """The methods that take run setting ``setting`` (empty: a setting of every run)."""
    return [m.name for m in REGISTRY if setting in m.options]


def check_resumable(config: Any, resume: bool | str) -> None:
    """Refuse to silently drop a checkpoint: a run of several processes of a method
    that cannot resume starts over only when told to (``--restart``)."""
    from pathlib import Path

    from optimlab.train.checkpoint import LAST

    if method(config.parallel).resumable or config.world_size == 1 or config.out is None:
        return
    if resume is False:
        return
    if resume is True or (Path(config.out) / "checkpoints" / LAST).exists():
        raise OptimlabError(
            f"a {config.parallel} run of {config.world_size} processes cannot resume (their "
            "positions are not recorded); "
            "valid: --restart to start over, or another --out"
        )
