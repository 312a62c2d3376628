"""``optimlab report DIR``: (re)write the report of a study from its storage."""

from __future__ import annotations

import argparse
from pathlib import Path

from optimlab.errors import OptimlabError


def run(args: argparse.Namespace) -> int:
    from optimlab.lab.runner import write_study_report
    from optimlab.lab.spec import StudySpec
    from optimlab.lab.store import open_study

    out = Path(args.dir)
    store = open_study(out, args.storage)
    saved = store.meta("spec")
    if saved is None:
        raise OptimlabError(f"the storage of {str(out)!r} holds no study description")
    spec = StudySpec.from_dict(saved, f"the study stored in {str(out)!r}")
    paths = write_study_report(store, spec, out / "report")
    print(f"report: {paths['html']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the HTML/Markdown report of a study directory")
    p.add_argument("dir", help="the study's output directory")
    p.add_argument("--storage", help="the study's storage URL, if not the default")
    p.set_defaults(func=run)
