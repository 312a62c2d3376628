"""Assemble the report document: draw the figures and order the sections."""

from __future__ import annotations

from pathlib import Path

from optimlab.lab.report.analysis import Analysis
from optimlab.lab.report.cost import cost_figure, cost_table
from optimlab.lab.report.curves import curves_figure
from optimlab.lab.report.document import Bullets, Document, Heading, Paragraph, Section
from optimlab.lab.report.edges import edges
from optimlab.lab.report.fmt import plural
from optimlab.lab.report.generalization import generalization_table
from optimlab.lab.report.profile_figure import profile_figure
from optimlab.lab.report.schedule_figure import schedule_figure
from optimlab.lab.report.sensitivity import sensitivity_figure
from optimlab.lab.report.tables import (
    failures,
    final_table,
    scores_table,
    status_table,
    target_table,
)
from optimlab.lab.report.verdict import overall, verdicts
from optimlab.viz.style import colour_map


def summary(analysis: Analysis) -> Section:
    """What was run: the study's settings and how many runs of each kind."""
    s = analysis.study
    runs = analysis.runs
    tune = sum(r.phase == "tune" for r in runs)
    final = len(runs) - tune
    items = [
        f"Protocol: {s.protocol}; selection metric: {s.metric} ({s.mode}).",
        f"{plural(len(runs), 'run')}: {plural(tune, 'tuning trial')} and "
        f"{plural(final, 'final run')} on {plural(len(analysis.problems), 'problem')} "
        f"({', '.join(p.problem for p in analysis.problems)}) with "
        f"{plural(len(analysis.labels), 'optimizer')} ({', '.join(analysis.labels)}).",
    ]
    if s.seeds or s.epochs:
        parts = [
            plural(s.seeds, "seed") if s.seeds else "",
            plural(s.epochs, "epoch") if s.epochs else "",
        ]
        items.append("Budget: " + ", ".join(p for p in parts if p) + " per final configuration.")
    for p in analysis.problems:
        if p.metric.key != s.metric:
            items.append(
                f"{p.problem} reports no {s.metric}; "
                f"it is compared on {p.metric.key} ({p.metric.mode})."
            )
    if s.created:
        items.append(f"Study created {s.created}.")
    return Section("Summary", [Bullets(items)])


def build_document(analysis: Analysis, figure_dir: Path) -> Document:
    """Every section of the report, drawing (and saving) the figures into ``figure_dir``."""
    palette = colour_map(analysis.labels)
    doc = Document(
        title=f"optimlab study: {analysis.study.name}",
        subtitle=f"Optimizers compared on {plural(len(analysis.problems), 'problem')}.",
    )
    doc.sections.append(summary(analysis))

    verdict = Section("Verdict")
    for v in verdicts(analysis):
        verdict.blocks += [Heading(v.problem), Paragraph(" ".join(v.sentences))]
    if overall(analysis):
        verdict.blocks += [Heading("All problems"), Paragraph(" ".join(overall(analysis)))]
    doc.sections.append(verdict)

    table = Section("Final performance")
    for p in analysis.problems:
        if p.stats:
            table.blocks += [Heading(p.problem), final_table(p)]
    if not table.blocks:
        table.blocks.append(Paragraph("No final runs yet: only tuning trials were recorded."))
    at_edge = edges(analysis.runs)
    if at_edge:
        table.blocks += [Heading("At the edge of the search space"),
                         Bullets([e.sentence() for e in at_edge])]  # fmt: skip
    doc.sections.append(table)

    gaps = Section("Generalization")
    for p in analysis.problems:
        t = generalization_table(p)
        if t is not None:
            gaps.blocks += [Heading(p.problem), t]
    if gaps.blocks:
        doc.sections.append(gaps)

    curves = Section("Learning curves")
    for p in analysis.problems:
        fig = curves_figure(p, palette, figure_dir)
        if fig is not None:
            curves.blocks.append(fig)
    if curves.blocks:
        doc.sections.append(curves)

    cost = Section("Loss against cost")
    for p in analysis.problems:
        t = cost_table(p)
        if t is not None:
            fig = cost_figure(p, palette, figure_dir)
            cost.blocks += [Heading(p.problem), *([fig] if fig is not None else []), t]
    if cost.blocks:
        doc.sections.append(cost)

    tuning = Section("Learning-rate sensitivity")
    for p in analysis.problems:
        fig = sensitivity_figure(p, palette, figure_dir, analysis.study.protocol)
        if fig is not None:
            tuning.blocks.append(fig)
    if tuning.blocks:
        doc.sections.append(tuning)

    target = Section("Time and steps to target")
    for p in analysis.problems:
        t = target_table(p)
        if t is not None:
            target.blocks += [Heading(p.problem), t]
    scores = scores_table(analysis)
    if scores is not None:
        target.blocks.append(Heading("Performance profile"))
        fig = profile_figure(analysis, palette, figure_dir)
        target.blocks += [b for b in (fig, scores) if b is not None]
    if target.blocks:
        doc.sections.append(target)

    fig = schedule_figure(analysis, palette, figure_dir)
    if fig is not None:
        doc.sections.append(Section("Schedules", [fig]))

    runs = Section("Runs", [status_table(analysis)])
    failed = failures(analysis)
    if failed is not None:
        runs.blocks += [Heading("Failed runs"), failed]
    doc.sections.append(runs)
    return doc
