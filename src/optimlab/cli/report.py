"""``optimlab report DIR``: (re)write the report of a study from its storage."""

from __future__ import annotations

import argparse
from pathlib import Path

from optimlab.errors import OptimlabError


def run(args: argparse.Namespace) -> int:
    from optimlab.lab.runner import default_storage, write_study_report
    from optimlab.lab.spec import _validate, _Where
    from optimlab.lab.store import Store

    out = Path(args.dir)
    if args.storage is None and not (out / "study.db").exists():
        raise OptimlabError(f"{str(out)!r} holds no study (no study.db)")
    store = Store(args.storage or default_storage(out))
    saved = store.meta("spec")
    if saved is None:
        raise OptimlabError(f"the storage of {str(out)!r} holds no study description")
    spec = _spec_from_saved(saved, _validate, _Where)
    paths = write_study_report(store, spec, out / "report")
    print(f"report: {paths['html']}")
    return 0


def _spec_from_saved(saved, validate, where_cls):
    data = {
        k: saved[k]
        for k in ("name", "problems", "optimizers", "seeds", "budget", "targets", "sampler_seed")
        if saved.get(k) is not None
    }
    for key in ("metric", "mode", "batch_size"):
        if saved.get(key) is not None:
            data[key] = saved[key]
    data["protocol"] = {
        "kind": saved["protocol"],
        "lr_grid": saved["lr_grid"],
        "trials": saved["trials"],
        "pruning": saved["pruning"],
        "folds": saved.get("folds", 5),
    }
    for opt in data["optimizers"]:
        if opt.get("schedule") is None:
            opt.pop("schedule", None)
    return validate(data, where_cls("", "stored study"), saved["name"])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the HTML/Markdown report of a study directory")
    p.add_argument("dir", help="the study's output directory")
    p.add_argument("--storage", help="the study's storage URL, if not the default")
    p.set_defaults(func=run)
