"""``optimlab gallery``: rerun the lectures' experiments and write the gallery page."""

from __future__ import annotations

import argparse

from optimlab.errors import OptimlabError

EPILOG = """\
Each entry writes its figures (PNG and SVG, GIF where it animates), its numbers, its
verdict, the budget, the machine and the command that regenerates it alone into
OUT/<entry>/, then OUT/gallery.html (self-contained) and OUT/gallery.md are rewritten
from every stored result. Rerunning continues where a killed run stopped: an entry
whose result is stored for the same entry version and tier is not computed again.
`optimlab list gallery` lists the entries.

examples:
  optimlab gallery --out runs/gallery
  optimlab gallery --only ravine,divergence --out runs/gallery
  optimlab gallery --tier standard --workers 2 --out runs/gallery
  optimlab gallery --out runs/gallery --docs docs/gallery
"""


def run(args: argparse.Namespace) -> int:
    from optimlab.gallery.entry import Context, check_tier
    from optimlab.gallery.runner import run_gallery

    check_tier(args.tier)
    if args.workers < 1:
        raise OptimlabError(f"invalid --workers: {args.workers}; valid range is [1, inf)")
    if args.docs is not None:
        from optimlab.io import check_output_dir

        check_output_dir(args.docs, "--docs")
    only = None if args.only is None else args.only.split(",")
    context = Context(data_dir=args.data_dir, download=args.download)
    outcome = run_gallery(
        args.out, tier=args.tier, only=only, workers=args.workers, context=context,
        report=lambda line: print(line, flush=True),
    )  # fmt: skip
    for page in outcome.pages:
        print(page)
    if args.docs is not None:
        from optimlab.gallery.publish import publish

        print(publish(args.out, args.docs, args.tier, context))
    if outcome.failed:
        print(f"optimlab: {len(outcome.failed)} entr{'ies' if len(outcome.failed) > 1 else 'y'} "
              f"failed: {', '.join(outcome.failed)}")  # fmt: skip
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gallery",
        help="rerun the lectures' experiments: figures, numbers, verdicts and a page",
        description="Run the gallery's entries (the lectures' experiments) and write "
        "OUT/gallery.html and OUT/gallery.md.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--tier",
        default="quick",
        metavar="TIER",
        help="quick (seconds per entry), standard or full; a tier includes the cheaper "
        "tiers' entries at its own budget (quick)",
    )
    p.add_argument("--only", metavar="NAME,...", help="run only these entries")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--docs",
        metavar="DIR",
        help="also copy the page and its figures into DIR as a documentation-site page "
        "(DIR/index.md; make gallery-docs uses docs/gallery)",
    )
    p.add_argument("--workers", type=int, default=1, help="entries run at once (1)")
    p.add_argument("--data-dir", metavar="DIR", help="a folder searched first for datasets")
    p.add_argument("--download", action="store_true", help="download missing datasets")
    p.set_defaults(func=run)
