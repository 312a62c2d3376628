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
    per-seed results, their summary and the machine description. A recipe with
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
    try:
        before = machine()
        runs = []
        for seed in seeds:
            runs.append(run_seed(recipe, seed, on_epoch))
            if log is not None:
                r = runs[-1]
                reached = "-" if r["time_to_target"] is None else f"{r['time_to_target']:.1f} s"
                log(
                    f"seed {seed}: final accuracy {r['final_accuracy'] * 100:.2f}%, "
                    f"target reached at {reached}, total {r['total_time']:.1f} s"
                )
        result = {
            "recipe": recipe.to_dict(),
            "runs": runs,
            "summary": summarize(runs, recipe.target),
            "machine": before,
            "load_average_after": machine().get("load_average"),
        }
    finally:
        torch.set_num_threads(previous)
    if out is not None:
        write_json(out, result)
    return result
