"""Problem recipes as run settings: ``recipe = true`` fills what a run leaves unset.

Some problems carry the training recipe of the paper that set them
(:class:`optimlab.problems.problem.Recipe`, e.g. He et al.'s SGD, step schedule, 64k iterations
and crops and flips for the CIFAR-10 ResNets). With ``recipe`` on, the run takes the
recipe's settings wherever it gives none of its own; what it gives wins, group by group:

- **optimizer**: the recipe's optimizer when none is given. The recipe's ``lr`` and
  optimizer arguments (``hp``) apply only to the recipe's optimizer: an unset ``lr`` is
  the recipe's, and its arguments fill the keys the run's ``hp`` leaves out. Another
  optimizer keeps its own registry defaults.
- **schedule**: the recipe's schedule when none is given; its arguments fill the keys
  the run's ``schedule_args`` leaves out (for the recipe's schedule only).
- **budget**: the recipe's ``steps`` when the run gives none of epochs, steps, seconds.
- **batch size**: the recipe's when the run gives none.
- **regularization**: the recipe's options (its augmentation) for the keys the run's
  ``regularize`` leaves out.

Filling is idempotent (a filled configuration fills to itself), so the identity of a
run built from a filled configuration is that of the unfilled one.
"""

from __future__ import annotations

from typing import Any


def recipe_of(problem: str) -> Any:
    """The registered recipe of ``problem`` (None when it has none)."""
    from optimlab.problems import PROBLEMS

    return PROBLEMS.get(problem).recipe


def with_recipe_problems() -> list[str]:
    """The problems that carry a recipe."""
    from optimlab.problems import PROBLEMS

    return [r.name for r in PROBLEMS if r.recipe is not None]


def recipe_changes(settings: dict[str, Any], recipe: Any) -> dict[str, Any]:
    """The settings ``recipe`` fills into ``settings`` (``RunConfig`` fields by name), by
    the rules of the module doc; an empty dict when nothing changes."""
    fill = recipe.run_fields()
    out: dict[str, Any] = {}
    if settings.get("optimizer") in (None, fill["optimizer"]):
        out["optimizer"] = fill["optimizer"]
        if settings.get("lr") is None:
            out["lr"] = fill["lr"]
        out["hp"] = {**fill.get("hp", {}), **(settings.get("hp") or {})}
    if "schedule" in fill and settings.get("schedule") in (None, fill["schedule"]):
        out["schedule"] = fill["schedule"]
        out["schedule_args"] = {**fill["schedule_args"], **(settings.get("schedule_args") or {})}
    if "steps" in fill and all(settings.get(k) is None for k in ("epochs", "steps", "seconds")):
        out["steps"] = fill["steps"]
    if "batch_size" in fill and settings.get("batch_size") is None:
        out["batch_size"] = fill["batch_size"]
    if "regularize" in fill:
        out["regularize"] = {**fill["regularize"], **(settings.get("regularize") or {})}
    from optimlab.run.config import _plain  # tuples as lists, as a RunConfig holds them

    return {k: _plain(v) for k, v in out.items() if settings.get(k) != _plain(v)}
