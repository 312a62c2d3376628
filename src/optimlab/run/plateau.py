"""``reduce_lr_on_plateau``: Keras' ``ReduceLROnPlateau`` as a run setting.

The setting is a table of the arguments of
:class:`~optimlab.train.plateau.ReduceLROnPlateau` (``factor`` 0.1, ``patience`` 10,
``min_delta`` 1e-4 absolute, ``cooldown`` 0, ``min_lr`` 0, ``mode`` auto,
``threshold_mode`` abs); an empty table
turns it on with those defaults (``--reduce-lr-on-plateau on`` at the command line,
``reduce_lr_on_plateau = {}`` in a file). ``monitor`` defaults to the run's monitor:
``val_loss`` where the problem has a validation split, else ``loss``.

The callback's state (epochs waited, cooldown, best value, epochs of the reductions)
goes into the run's checkpoints and the reduced LR with the optimizer's state, so a
resumed run continues exactly. A per-step LR schedule would overwrite every reduction,
so the run refuses the two together.
"""

from __future__ import annotations

from typing import Any

from optimlab.errors import OptimlabError
from optimlab.run.config import PLATEAU_KEYS

# What each key takes: (python types, words for the error).
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "factor": ((int, float), "a number"),
    "patience": ((int,), "a whole number"),
    "min_delta": ((int, float), "a number"),
    "cooldown": ((int,), "a whole number"),
    "min_lr": ((int, float), "a number"),
    "monitor": ((str,), "a metric name"),
    "mode": ((str,), "auto, min or max"),
    "threshold_mode": ((str,), "abs or rel"),
}


def check_plateau(settings: dict[str, Any], monitor: str = "val_loss") -> None:
    """Refuse unknown keys and bad values, naming ``reduce_lr_on_plateau``."""
    for key, value in settings.items():
        if key not in PLATEAU_KEYS:
            raise OptimlabError(
                f"invalid reduce_lr_on_plateau setting {key!r}; valid: {', '.join(PLATEAU_KEYS)}"
            )
        kinds, words = _TYPES[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise OptimlabError(f"invalid reduce_lr_on_plateau {key}: {value!r}; expected {words}")
    make_plateau(settings, monitor)


def make_plateau(settings: dict[str, Any], monitor: str) -> Any:
    """The callback, monitoring ``monitor`` unless the settings name another metric."""
    from optimlab.train.plateau import ReduceLROnPlateau

    try:
        return ReduceLROnPlateau(**{"monitor": monitor, **settings})
    except OptimlabError as err:
        raise OptimlabError(f"invalid reduce_lr_on_plateau: {err}") from None


def logged_metrics(problem: Any) -> list[str]:
    """The epoch metrics a run of ``problem`` logs: the training loss and metrics, and
    the same with ``val_``/``test_`` where the problem has those splits."""
    names = ["loss", *problem.metrics]
    splits = problem.splits
    out = list(names)
    for prefix, part in (("val_", "val"), ("test_", "test")):
        if splits is not None and getattr(splits, part, None):
            out += [prefix + name for name in names]
    return out


def build_plateau(settings: dict[str, Any], monitor: str, problem: Any) -> Any:
    """The run's callback; a monitor the run does not log is refused before training."""
    callback = make_plateau(settings, monitor)
    valid = logged_metrics(problem)
    if callback.monitor not in valid:
        raise OptimlabError(
            f"invalid reduce_lr_on_plateau monitor {callback.monitor!r}; valid: {', '.join(valid)}"
        )
    return callback
