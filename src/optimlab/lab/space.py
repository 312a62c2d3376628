"""Search spaces and their sampling, done by Optuna's samplers.

A space maps a hyperparameter to one of
``{log_uniform = [low, high]}``, ``{uniform = [low, high]}``, ``{int = [low, high]}``,
``{choice = [a, b, ...]}`` or ``{grid = [a, b, ...]}``.
All configurations of a study are drawn up front from a seeded sampler, so the
list of trials is a pure function of the study file: a rerun after a crash
continues the same list instead of drawing a new one.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import optuna

from optimlab.errors import OptimlabError

KINDS = ("log_uniform", "uniform", "int", "choice", "grid")


def parse_dimension(name: str, spec: Any) -> tuple[str, Any]:
    """Validate one search dimension; returns ``(kind, argument)``."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise OptimlabError(
            f"search space for {name!r} must be a table with one of {', '.join(KINDS)}, "
            f"e.g. {{log_uniform = [1e-4, 1.0]}}; got {spec!r}"
        )
    ((kind, arg),) = spec.items()
    if kind not in KINDS:
        raise OptimlabError(f"unknown search kind {kind!r} for {name!r}; valid: {', '.join(KINDS)}")
    if kind in ("log_uniform", "uniform", "int"):
        if not (isinstance(arg, list) and len(arg) == 2 and all(_is_number(a) for a in arg)):
            raise OptimlabError(f"{kind} for {name!r} needs [low, high]; got {arg!r}")
        low, high = arg
        if not low < high or (kind == "log_uniform" and low <= 0):
            raise OptimlabError(
                f"{kind} for {name!r} needs 0 < low < high"
                if kind == "log_uniform"
                else f"{kind} for {name!r} needs low < high; got {arg!r}"
            )
    elif not (isinstance(arg, list) and arg):
        raise OptimlabError(f"{kind} for {name!r} needs a non-empty list; got {arg!r}")
    return kind, arg


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def log_grid(low: float, high: float, num: int) -> list[float]:
    """``num`` values evenly spaced in log10 between ``low`` and ``high``, both included."""
    if num == 1:
        return [low]
    step = (math.log10(high) - math.log10(low)) / (num - 1)
    return [float(f"{10 ** (math.log10(low) + i * step):.6g}") for i in range(num)]


def coarse_to_fine(n: int) -> list[int]:
    """The indices 0..n-1 in bit-reversed order (0, n/2, n/4, 3n/4, ...).

    Running a grid in this order spreads the first trials over the whole range, which
    is what pruning compares against and what a study stopped early has covered.
    """
    bits = max(1, (n - 1).bit_length())
    return sorted(range(n), key=lambda i: int(f"{i:0{bits}b}"[::-1], 2))


def grid_configs(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of a space made only of ``grid`` and ``choice`` dimensions."""
    names = sorted(space)
    values = [space[n][1] for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def _distribution(kind: str, arg: Any) -> optuna.distributions.BaseDistribution:
    if kind == "log_uniform":
        return optuna.distributions.FloatDistribution(arg[0], arg[1], log=True)
    if kind == "uniform":
        return optuna.distributions.FloatDistribution(arg[0], arg[1])
    if kind == "int":
        return optuna.distributions.IntDistribution(int(arg[0]), int(arg[1]))
    return optuna.distributions.CategoricalDistribution(list(arg))


def sample_configs(
    space: dict[str, tuple[str, Any]], n: int, *, seed: int, quasi: bool = False
) -> list[dict[str, Any]]:
    """``n`` configurations drawn by Optuna's random (or scrambled Sobol) sampler."""
    if not space:
        return [{}]
    sampler: optuna.samplers.BaseSampler
    if quasi:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.0, and stable since
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.QMCSampler(
                qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False
            )
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    dists = {name: _distribution(kind, arg) for name, (kind, arg) in space.items()}
    configs = []
    for _ in range(n):
        trial = study.ask(dists)
        configs.append(dict(trial.params))
        study.tell(trial, 0.0)
    return configs
