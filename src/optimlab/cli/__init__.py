"""The ``optimlab`` command.

Each sub-command lives in its own module with a ``register(subparsers)`` function
that adds its parser and sets ``func``; adding a command means adding its module
to ``COMMANDS``. User mistakes (``OptimlabError``/``ValueError``) are printed as one
line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from optimlab.errors import OptimlabError
from optimlab.train.denormals import flush_denormals

# Modules under optimlab.cli, in the order their commands appear in --help.
COMMANDS = [
    "list_cmd",
    "train",
    "bench",
    "schedule",
    "study",
    "compare",
    "report",
    "trajectories",
    "lr_find",
    "landscape",
    "speedrun",
    "gallery",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimlab",
        description="The optimization and regularization lab for deep learning.",
    )
    parser.add_argument(
        "--flush-denormal",
        action="store_true",
        help="flush subnormal floats to zero on the CPU (faster once training makes "
        "values below 1e-38; changes only those values); applies to every command",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"optimlab.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.flush_denormal and not flush_denormals():
            # only when torch's threads started before this line: nothing above runs any
            print(
                "optimlab: warning: torch's worker threads started before --flush-denormal "
                "took effect; some of them do not flush subnormals",
                file=sys.stderr,
            )
        return int(args.func(args) or 0)
    except OptimlabError as err:
        print(f"optimlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optimlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): the work is done and written; stop
        # quietly, as Unix tools do, without a second error at interpreter exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
