"""The gallery as a page of the documentation site, copied from a finished gallery run.

``publish(out, dest, tier)`` writes ``dest/index.md`` (the run's Markdown page without its
contents list, which the site's sidebar replaces) and the figure files that page shows,
``dest/<entry>/<file>``. The folder is built beside ``dest`` and renamed over it, so the
site never holds half of one run and half of another. Entries not run at ``tier`` are
listed as such with their command, as on the run's own page.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from optimlab.errors import OptimlabError
from optimlab.gallery import pages
from optimlab.gallery.entry import Context, check_tier
from optimlab.gallery.registry import entries
from optimlab.io import atomic_write_text

INDEX = "index.md"


def publish(out: str | Path, dest: str | Path, tier: str, context: Context | None = None) -> Path:
    """Copy the gallery run at ``out`` (tier ``tier``) into the documentation folder ``dest``;
    returns the page's path."""
    check_tier(tier)
    out, dest = Path(out), Path(dest)
    if not out.is_dir():
        raise OptimlabError(f"no gallery run at {out}; run `optimlab gallery --out {out}` first")
    context = context or Context()
    items = [pages.item(e, out, tier, str(out), context) for e in entries() if e.runs_in(tier)]
    if all(i.state == pages.NOT_RUN for i in items):
        raise OptimlabError(f"the gallery at {out} has no result of the {tier} tier")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for i in items:
            for _, name in pages.figure_files(i):
                target = staging / i.entry.name / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(out / i.entry.name / name, target)
        atomic_write_text(staging / INDEX, pages.render_markdown(items, tier, contents=False))
        old = dest.with_name(f".{dest.name}-old")
        if dest.exists():
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
        staging.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest / INDEX
