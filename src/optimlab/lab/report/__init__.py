"""The lab's report: HTML and Markdown with figures, tables and a verdict from the numbers.

``write_report(records, study, out_dir)`` writes ``report.html`` (self-contained),
``report.md`` and ``figures/*.png`` + ``figures/*.svg``, every file atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimlab.io import atomic_write_text
from optimlab.lab.report.analysis import Analysis, analyse
from optimlab.lab.report.assemble import build_document
from optimlab.lab.report.html import render_html
from optimlab.lab.report.markdown import render_markdown
from optimlab.lab.report.runs import read_runs, read_study
from optimlab.lab.report.targets import profile, profile_scores
from optimlab.lab.report.verdict import ProblemVerdict, verdicts

FIGURES = "figures"


def analyse_records(records: list[dict[str, Any]], study: dict[str, Any]) -> Analysis:
    """Check the inputs and compute every number of the report (no files written)."""
    return analyse(read_runs(records), read_study(study))


def write_report(
    records: list[dict[str, Any]], study: dict[str, Any], out_dir: str | Path
) -> dict[str, Path]:
    """Write the report of ``records`` under ``out_dir``.

    Returns ``{"html": report.html, "markdown": report.md, "figures": the figure folder}``.
    Bad records or study fields raise ``OptimlabError`` naming the field.
    """
    analysis = analyse_records(records, study)
    out = Path(out_dir)
    figure_dir = out / FIGURES
    figure_dir.mkdir(parents=True, exist_ok=True)
    doc = build_document(analysis, figure_dir)
    _remove_stale(figure_dir, {f.stem for f in doc.figures()})
    html = atomic_write_text(out / "report.html", render_html(doc))
    markdown = atomic_write_text(out / "report.md", render_markdown(doc, FIGURES))
    return {"html": html, "markdown": markdown, "figures": figure_dir}


# The names this package gives its figures; only such files are ever removed.
OWN_STEMS = ("cost_", "curves_", "lr_sensitivity_", "performance_profile", "schedules")


def _remove_stale(figure_dir: Path, written: set[str]) -> None:
    """Delete figures an earlier report of this folder drew and this one did not."""
    for path in figure_dir.iterdir():
        if (
            path.suffix in (".png", ".svg")
            and path.stem not in written
            and path.stem.startswith(OWN_STEMS)
        ):
            path.unlink(missing_ok=True)


__all__ = [
    "Analysis",
    "ProblemVerdict",
    "analyse_records",
    "profile",
    "profile_scores",
    "verdicts",
    "write_report",
]
