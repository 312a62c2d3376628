"""``optimlab list [WHAT]``: print a registry as a table."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from optimlab.errors import unknown_name

# Each kind maps to "module:function" returning (headers, rows); modules are
# imported lazily so that listing optimizers does not load datasets.
LISTINGS: dict[str, str] = {
    "optimizers": "optimlab.optim.registry:table",
    "schedules": "optimlab.schedules.registry:table",
    "problems": "optimlab.problems.problem:table",
    "datasets": "optimlab.data.datasets:table",
}


def _listing(kind: str) -> Callable[[], tuple[list[str], list[list[str]]]]:
    module, func = LISTINGS[kind].split(":")
    return getattr(importlib.import_module(module), func)


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain fixed-width table (no terminal control codes, so it pipes cleanly)."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    kinds = [args.what] if args.what else list(LISTINGS)
    for kind in kinds:
        if kind not in LISTINGS:
            raise unknown_name("listing", kind, LISTINGS)
        headers, rows = _listing(kind)()
        if len(kinds) > 1:
            print(f"\n{kind}:")
        print(format_table(headers, rows))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list optimizers, schedules, problems or datasets")
    p.add_argument("what", nargs="?", help=f"one of: {', '.join(LISTINGS)} (default: all)")
    p.set_defaults(func=run)
