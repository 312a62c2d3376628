"""The schedule registry: every named schedule, with defaults, description and reference.

``create(name, **params)`` builds one by name (case-insensitive, aliases allowed) and
checks the parameter names before calling the constructor, so a typo names the bad
parameter and lists the valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.registry import Record, Registry
from optimlab.schedules.base import Constant, Schedule
from optimlab.schedules.cyclic import Cyclic, CyclicMomentum
from optimlab.schedules.decay import (
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    Linear,
    PolynomialDecay,
)
from optimlab.schedules.nesterov import NAGCMomentum, NAGSCMomentum
from optimlab.schedules.one_cycle import OneCycle, OneCycleMomentum
from optimlab.schedules.piecewise import Harmonic, MultiStepDecay, StepDecay
from optimlab.schedules.restarts import ExponentialRestarts, SnapshotCycles, WarmRestarts
from optimlab.schedules.warmup import LinearWarmup, warmup_cosine

SCHEDULES: Registry[Record] = Registry("schedule")

REQUIRED = inspect.Parameter.empty


def signature_defaults(builder: Callable[..., Any]) -> dict[str, Any]:
    """Every parameter of ``builder`` and its default (``REQUIRED`` when it has none)."""
    sig = inspect.signature(builder)
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _add(
    name: str,
    builder: Callable[..., Any],
    description: str,
    reference: str,
    aliases: tuple[str, ...] = (),
) -> None:
    SCHEDULES.add(
        Record(
            name=name,
            builder=builder,
            description=description,
            defaults=signature_defaults(builder),
            reference=reference,
            aliases=aliases,
        )
    )


_add("constant", Constant, "the same value at every step", "")
_add("step", StepDecay, "multiply by gamma every step_size steps", "torch StepLR")
_add("multistep", MultiStepDecay, "multiply by gamma at each milestone", "torch MultiStepLR")
_add(
    "harmonic",
    Harmonic,
    "a / (floor(t / step_size) + c)",
    "lecture 001 (SGD schedules)",
)
_add(
    "inverse_time",
    InverseTimeDecay,
    "lr / (1 + decay_rate * t / decay_steps)",
    "Keras InverseTimeDecay / SGD(decay=...)",
)
_add("exponential", ExponentialDecay, "lr * gamma ** (t / decay_steps)", "torch ExponentialLR")
_add(
    "polynomial",
    PolynomialDecay,
    "lr * (1 - t / total_iters) ** power, then 0",
    "torch PolynomialLR",
)
_add(
    "linear",
    Linear,
    "factor moves linearly from start_factor to end_factor over total_iters",
    "torch LinearLR",
)
_add(
    "cosine",
    CosineDecay,
    "half a cosine from lr down to eta_min over T_max steps",
    "Loshchilov & Hutter 2017; torch CosineAnnealingLR",
    aliases=("cosine_annealing",),
)
_add(
    "warmup",
    LinearWarmup,
    "linear ramp from start_factor * lr to lr over warmup_steps, then constant",
    "Goyal et al. 2017",
)
_add(
    "warmup_cosine",
    warmup_cosine,
    "linear warm-up, then cosine decay to eta_min at total_steps",
    "Goyal et al. 2017; Loshchilov & Hutter 2017",
)
_add(
    "sgdr",
    WarmRestarts,
    "cosine annealing restarted after T_0, T_0*T_mult, ... steps",
    "Loshchilov & Hutter 2017 (SGDR); torch CosineAnnealingWarmRestarts",
    aliases=("warm_restarts", "cosine_restarts"),
)
_add(
    "cyclic",
    Cyclic,
    "triangular cycles between base_lr and max_lr (modes triangular, triangular2, exp_range)",
    "Smith 2017 (CLR); torch CyclicLR",
    aliases=("clr",),
)
_add(
    "cyclic_momentum",
    CyclicMomentum,
    "momentum cycled inversely to a cyclic LR",
    "Smith 2018; torch CyclicLR(cycle_momentum=True)",
)
_add(
    "one_cycle",
    OneCycle,
    "one rise to max_lr and a long anneal far below the start",
    "Smith & Topin 2017; torch OneCycleLR",
    aliases=("onecycle", "1cycle"),
)
_add(
    "one_cycle_momentum",
    OneCycleMomentum,
    "momentum moving inversely to the one-cycle LR",
    "Smith & Topin 2017; torch OneCycleLR(cycle_momentum=True)",
)
_add(
    "snapshot",
    SnapshotCycles,
    "equal cosine cycles; a snapshot is saved at each cycle end",
    "Huang et al. 2017 (snapshot ensembles)",
    aliases=("snapshot_ensemble",),
)
_add(
    "nag_c",
    NAGCMomentum,
    "momentum k/(k+r) of Nesterov's method for convex f (NAG-C, r = 3)",
    "Nesterov 1983; Su, Boyd & Candes 2016",
)
_add(
    "nag_sc",
    NAGSCMomentum,
    "constant momentum (1 - sqrt(mu s))/(1 + sqrt(mu s)) for mu-strongly convex f (NAG-SC)",
    "Nesterov 2004; Su, Boyd & Candes 2016",
)
_add(
    "exp_restarts",
    ExponentialRestarts,
    "lr * gamma ** T_cur, restarted after T_0, T_0*T_mult, ... steps",
    "lecture 000 (exponential decay with restarts); Loshchilov & Hutter 2017",
    aliases=("exponential_restarts",),
)


def available() -> list[str]:
    """The registered schedule names (without aliases)."""
    return SCHEDULES.names(aliases=False)


def record(name: str) -> Record:
    """The registry record for ``name``; an unknown name raises listing the valid ones."""
    return SCHEDULES.get(name)


def create(name: str, **params: Any) -> Schedule:
    """Build the schedule registered as ``name`` with ``params`` (the rest at defaults)."""
    rec = SCHEDULES.get(name)
    defaults = rec.defaults
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise OptimlabError(
            f"invalid parameter {unknown[0]!r} for schedule {rec.name!r}; "
            f"valid parameters: {', '.join(defaults)}"
        )
    missing = [k for k, v in defaults.items() if v is REQUIRED and k not in params]
    if missing:
        raise OptimlabError(
            f"schedule {rec.name!r} needs parameter {missing[0]!r} "
            f"(required: {', '.join(k for k, v in defaults.items() if v is REQUIRED)})"
        )
    try:
        return rec.builder(**params)
    except OptimlabError as err:  # say which schedule the bad argument belongs to
        raise OptimlabError(f"schedule {rec.name!r}: {err}") from None


# Required parameters that set a schedule's horizon in steps.
HORIZON = ("T_max", "total_steps")


def run_params(
    name: str,
    params: dict[str, Any],
    *,
    lr: float | None = None,
    total_steps: int | None = None,
) -> dict[str, Any]:
    """``params`` completed from the run they drive: a missing ``lr`` (for schedules that
    take one) is the optimizer's, and a missing required horizon (``T_max``,
    ``total_steps``) is the run's length in steps. One rule for the train command, the
    lab's trials, the report's schedule figure and the schedule plot."""
    defaults = SCHEDULES.get(name).defaults
    out = dict(params)
    if lr is not None and "lr" in defaults and "lr" not in out:
        out["lr"] = float(lr)
    if total_steps is not None:
        for key in HORIZON:
            if defaults.get(key) is REQUIRED and key not in out:
                out[key] = int(total_steps)
    return out


def format_params(defaults: dict[str, Any]) -> str:
    """``"lr=0.1, T_max=?"``: a record's parameters, ``?`` marking the required ones."""
    return ", ".join(f"{k}={'?' if v is REQUIRED else repr(v)}" for k, v in defaults.items())


def table() -> tuple[list[str], list[list[str]]]:
    """``optimlab list schedules``: one row per registered schedule."""
    headers = ["name", "aliases", "parameters (? = required)", "description", "reference"]
    rows = [
        [r.name, ", ".join(r.aliases), format_params(r.defaults), r.description, r.reference]
        for r in sorted(SCHEDULES, key=lambda r: r.name)
    ]
    return headers, rows
