"""Time-to-accuracy speedruns: a recipe (TOML) assembled from optimlab's library, run
for several seeds, with wall time from data loading to the target test accuracy.

``run_speedrun(load_recipe())`` runs the shipped Fashion-MNIST recipe; the command is
``optimlab speedrun``. See docs/speedrun.md for the recipe and its measurements.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from optimlab.speedrun.recipe import DEFAULT_TOML, Recipe, load_recipe, loads_recipe, parse_recipe
from optimlab.speedrun.report import format_table, machine, summarize, write_json
from optimlab.speedrun.runner import EpochHook, evaluate, run_seed
from optimlab.train.denormals import flush_denormals

__all__ = [
    "DEFAULT_TOML",
    "Recipe",
    "evaluate",
    "format_table",
    "load_recipe",
    "loads_recipe",
    "parse_recipe",
    "run_seed",
    "run_speedrun",
    "summarize",
]


def run_speedrun(
    recipe: Recipe,
    seeds: Sequence[int] | None = None,
    out: str | Path | None = None,
    on_epoch: EpochHook | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``recipe`` once per seed (default ``range(recipe.seeds)``) with
    ``recipe.threads`` torch threads; return (and write to ``out``, atomically) the
    per-seed results, their summary and the machine description. ``out`` is rewritten
    after every seed (``"finished": false`` until the last), and a rerun with the same
    recipe on the same ``out`` keeps the seeds it holds and runs the rest. A recipe with
    ``flush_denormal`` turns flushing on for the rest of the process
    (``optimlab.train.denormals``)."""
    seeds = list(range(recipe.seeds)) if seeds is None else list(seeds)
    previous = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    if recipe.flush_denormal and not flush_denormals():
        warnings.warn(
            "flush_denormal: torch's worker threads started before the speedrun and do "
            "not flush subnormals; run it in a fresh process (`optimlab speedrun`)",
            stacklevel=2,
        )
    done = _finished_seeds(out, recipe)
    try:
        before = machine()
        runs = []
        for seed in seeds:
            if seed in done:  # a rerun on the same file keeps what finished
                runs.append(done[seed])
                if log is not None:
                    log(f"seed {seed}: kept from {out}")
                continue
            runs.append(run_seed(recipe, seed, on_epoch))
            if log is not None:
                r = runs[-1]
                reached = "-" if r["time_to_target"] is None else f"{r['time_to_target']:.1f} s"
                log(
                    f"seed {seed}: final accuracy {r['final_accuracy'] * 100:.2f}%, "
                    f"target reached at {reached}, total {r['total_time']:.1f} s"
                )
            if out is not None and len(runs) < len(seeds):  # nothing finished is lost
                write_json(out, _result(recipe, runs, before, finished=False))
        result = _result(recipe, runs, before, finished=True)
    finally:
        torch.set_num_threads(previous)
    if out is not None:
        write_json(out, result)
    return result


def _result(recipe: Recipe, runs: list[dict[str, Any]], before: dict[str, Any], *,
            finished: bool) -> dict[str, Any]:  # fmt: skip
    return {
        "recipe": recipe.to_dict(),
        "finished": finished,
        "runs": runs,
        "summary": summarize(runs, recipe.target),
        "machine": before,
        "load_average_after": machine().get("load_average"),
    }


def _finished_seeds(out: str | Path | None, recipe: Recipe) -> dict[int, dict[str, Any]]:
    """The runs an earlier call with the same recipe wrote to ``out``, by seed."""
    import json

    if out is None or not Path(out).is_file():
        return {}
    try:
        saved = json.loads(Path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if saved.get("recipe") != json.loads(json.dumps(recipe.to_dict())):
        return {}
    return {r["seed"]: r for r in saved.get("runs", [])}
