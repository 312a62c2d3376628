"""``optimlab schedule``: plot (or tabulate) one or several schedules from the registry."""

from __future__ import annotations

import argparse
import ast
import io
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.io import atomic_write_bytes, check_output_file

FORMATS = ("png", "pdf", "svg")

EPILOG = """\
A schedule is NAME followed by key=value parameters; --and starts another one, drawn on
the same axes. Values are Python literals (0.1, 1e-3, True, 30,60,90 for a list); other
text is taken as a string (mode=triangular2). A required T_max or total_steps that is
not given defaults to --steps. Without --out, a table of values is printed.
`optimlab list schedules` shows every name and its parameters.

examples:
  optimlab schedule cosine --steps 100 --out cosine.png
  optimlab schedule cosine T_max=100 --and step step_size=30 --steps 100 --out s.png
  optimlab schedule one_cycle max_lr=0.1 --and one_cycle_momentum --steps 1000 --out oc.png
  optimlab schedule cyclic step_size_up=200 mode=triangular2 --steps 2000 --log
"""


def parse_value(text: str) -> Any:
    """A Python literal if ``text`` is one, else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_spec(tokens: list[str]) -> tuple[str, dict[str, Any]]:
    """``["cosine", "T_max=100"]`` -> ``("cosine", {"T_max": 100})``."""
    if not tokens:
        raise OptimlabError("expected a schedule name after --and")
    name, params = tokens[0], {}
    if "=" in name:
        raise OptimlabError(f"expected a schedule name, got {name!r}")
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise OptimlabError(f"expected key=value after schedule {name!r}, got {token!r}")
        if key in params:
            raise OptimlabError(f"parameter {key!r} given twice for schedule {name!r}")
        params[key] = parse_value(value)
    return name, params


def build(name: str, params: dict[str, Any], steps: int) -> tuple[str, Any]:
    """The schedule and its legend label; horizon parameters default to ``steps``."""
    from optimlab.schedules import create, record
    from optimlab.schedules.registry import run_params

    rec = record(name)
    params = run_params(rec.name, params, total_steps=steps)
    schedule = create(rec.name, **params)
    label = " ".join([rec.name, *(f"{k}={v}" for k, v in params.items())])
    return label, schedule


def write_figure(curves: list[tuple[str, list[float]]], out: Path, log: bool) -> None:
    """Plot the curves against the step and save atomically (temp file, then rename)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise OptimlabError(f"invalid --out: {str(out)!r}; use a .png, .pdf or .svg file name")
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for label, values in curves:
        ax.plot(range(len(values)), values, label=label, linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    if log:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=fmt, dpi=120)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())


def print_table(curves: list[tuple[str, list[float]]], rows: int = 11) -> None:
    n = len(curves[0][1])
    steps = sorted({round(i * (n - 1) / (rows - 1)) for i in range(rows)}) if n > 1 else [0]
    for label, values in curves:
        print(label)
        for t in steps:
            print(f"  {t:>8d}  {values[t]:.6g}")


def run(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_output_file(args.out)
    if args.steps < 1:
        raise OptimlabError(f"invalid --steps: {args.steps}; expected an integer >= 1")
    specs = [parse_spec(args.spec), *(parse_spec(tokens) for tokens in args.more or [])]
    curves = []
    for name, params in specs:
        label, schedule = build(name, params, args.steps)
        curves.append((label, [schedule(t) for t in range(args.steps)]))
    if args.out is None:
        print_table(curves)
    else:
        write_figure(curves, Path(args.out), args.log)
        print(f"wrote {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schedule",
        usage=(
            "optimlab schedule NAME [key=value ...] [--and NAME [key=value ...]]... "
            "[--steps N] [--out FILE] [--log]"
        ),
        help="plot learning-rate, momentum or other schedules",
        description="Plot one or several schedules over --steps steps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", nargs="+", metavar="SPEC", help="a schedule name, then key=value ...")
    p.add_argument(
        "--and",
        dest="more",
        nargs="+",
        action="append",
        metavar="SPEC",
        help="another schedule on the same axes (repeatable)",
    )
    p.add_argument(
        "--steps", type=int, default=100, metavar="N", help="steps to draw (default: 100)"
    )
    p.add_argument(
        "--out", metavar="FILE", help="figure file (.png, .pdf or .svg); omit to print a table"
    )
    p.add_argument("--log", action="store_true", help="logarithmic value axis")
    p.set_defaults(func=run)
