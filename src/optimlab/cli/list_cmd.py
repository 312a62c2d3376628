"""``optimlab list [WHAT]``: print a registry as a table."""

from __future__ import annotations

import argparse
import importlib
import shutil
import textwrap
from collections.abc import Callable

from optimlab.errors import unknown_name

GAP = 2  # spaces between columns
MIN_COLUMN = 10  # a wrapped column keeps at least this many characters (or its header's)

# Each kind maps to "module:function" returning (headers, rows); modules are
# imported lazily so that listing optimizers does not load datasets.
LISTINGS: dict[str, str] = {
    "optimizers": "optimlab.optim.registry:table",
    "schedules": "optimlab.schedules.registry:table",
    "problems": "optimlab.problems.problem:table",
    "datasets": "optimlab.data.datasets:table",
    "models": "optimlab.nn.models:table",
    "gallery": "optimlab.gallery.registry:table",
}


def _listing(kind: str) -> Callable[[], tuple[list[str], list[list[str]]]]:
    module, func = LISTINGS[kind].split(":")
    return getattr(importlib.import_module(module), func)


def format_table(headers: list[str], rows: list[list[str]], width: int | None = None) -> str:
    """A plain fixed-width table (no terminal control codes, so it pipes cleanly) at most
    ``width`` columns wide (default: the terminal's, else 100): the widest columns but the
    first are narrowed and their cells wrapped onto further lines."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(c) for c in col) for col in zip(*cells, strict=True)]
    floor = [max(len(h), MIN_COLUMN) for h in headers]
    floor[0] = widths[0]  # the names are never broken
    while sum(widths) + GAP * (len(widths) - 1) > width:
        i = max(range(len(widths)), key=lambda k: widths[k] - floor[k])
        if widths[i] <= floor[i]:
            break  # as narrow as it goes: wider than the terminal rather than unreadable
        widths[i] -= 1
    out = []
    for n, row in enumerate(cells):
        wrapped = [textwrap.wrap(c, w, break_on_hyphens=False) or [""] for c, w in
                   zip(row, widths, strict=True)]  # fmt: skip
        for k in range(max(len(lines) for lines in wrapped)):
            parts = [(lines[k] if k < len(lines) else "").ljust(w)
                     for lines, w in zip(wrapped, widths, strict=True)]  # fmt: skip
            out.append((" " * GAP).join(parts).rstrip())
        if n == 0:
            out.append((" " * GAP).join("-" * w for w in widths))
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
    p = sub.add_parser(
        "list", help="list optimizers, schedules, problems, datasets, models or gallery entries"
    )
    p.add_argument("what", nargs="?", help=f"one of: {', '.join(LISTINGS)} (default: all)")
    p.set_defaults(func=run)
