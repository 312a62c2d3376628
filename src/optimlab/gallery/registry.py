"""The gallery's registry: one record per entry module under ``optimlab.gallery.entries``.

The CLI's ``--only``, ``optimlab list gallery``, the pages and the tests all read it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Sequence

from optimlab.errors import OptimlabError
from optimlab.gallery.entry import TIERS, Entry, check_tier
from optimlab.registry import Registry

#: Entry modules under ``optimlab.gallery.entries``, in the order the gallery shows them.
MODULES = (
    "ravine",
    "saddle",
    "beale",
    "momentum_regimes",
    "divergence",
    "accelerated",
    "bias_correction",
    "adam_vs_sgd",
    "cyclical",
    "snapshot_ensemble",
    "batch_increase",
    "curriculum",
    "bias_variance",
    "overfitting",
    "early_stopping",
    "adversarial",
    "whitening",
    "newton_units",
    "bn_small_batch",
    "lbfgs_batches",
    "second_order",
    "vanishing_gradients",
    "activations",
    "gradient_clipping",
    "skip_connections",
    "lr_range_test",
    "stale_gradients",
    "hogwild_sparse",
)


@functools.cache
def entries() -> Registry[Entry]:
    """Every registered entry (each module's ``ENTRY``), loaded on first use."""
    registry: Registry[Entry] = Registry("gallery entry")
    for module in MODULES:
        registry.add(importlib.import_module(f"optimlab.gallery.entries.{module}").ENTRY)
    return registry


def names() -> list[str]:
    return [e.name for e in entries()]


def select(
    only: Iterable[str] | None, tier: str, pool: Sequence[Entry] | None = None
) -> list[Entry]:
    """The entries to run: those named in ``only`` (in the gallery's order), or every entry
    of ``tier``. An unknown name, or one outside the tier, is a one-line error."""
    check_tier(tier)
    pool = list(entries()) if pool is None else list(pool)
    by_name = {e.name: e for e in pool}
    if only is None:
        return [e for e in pool if e.runs_in(tier)]
    wanted = [n.strip() for n in only if n.strip()]
    if not wanted:
        raise OptimlabError(f"invalid --only: no entry named; valid entries: {', '.join(by_name)}")
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise OptimlabError(
            f"unknown gallery entr{'ies' if len(unknown) > 1 else 'y'} "
            f"{', '.join(map(repr, unknown))}; valid entries: {', '.join(by_name)}"
        )
    for n in wanted:
        by_name[n].budget(tier)  # raises, naming the tiers that include it
    return [e for e in pool if e.name in wanted]


def table() -> tuple[list[str], list[list[str]]]:
    """Rows for ``optimlab list gallery``."""
    headers = ["name", "tier", "lecture", "slide", "experiment"]
    rows = [[e.name, e.tier, e.deck.split(":")[0], e.slide, e.title] for e in entries()]
    return headers, rows


__all__ = ["MODULES", "TIERS", "entries", "names", "select", "table"]
