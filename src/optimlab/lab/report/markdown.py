"""Render the report document as Markdown, linking the figure files in ``figures/``."""

from __future__ import annotations

from optimlab.lab.report.document import Bullets, Document, Heading, Paragraph, Table
from optimlab.lab.report.figures import FigureFile


def _cell(text: str) -> str:
    # A pipe would end the cell; a newline would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> str:
    head = "| " + " | ".join(_cell(h) for h in t.headers) + " |"
    rule = "|" + "|".join("---:" if i in t.numeric else "---" for i in range(len(t.headers))) + "|"
    rows = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    text = "\n".join([head, rule, *rows])
    return f"{text}\n\n*{t.caption}*" if t.caption else text


def _figure(f: FigureFile, folder: str) -> str:
    png = f"{folder}/{f.png.name}"
    svg = f"{folder}/{f.svg.name}"
    return f"![{f.title}]({png})\n\n*{f.caption}* ([SVG]({svg}))"


def render_markdown(doc: Document, figure_folder: str = "figures") -> str:
    """The report as Markdown; figures are linked relative to the report file."""
    parts = [f"# {doc.title}", doc.subtitle]
    for section in doc.sections:
        parts.append(f"## {section.title}")
        for block in section.blocks:
            if isinstance(block, Heading):
                parts.append(f"### {block.text}")
            elif isinstance(block, Paragraph):
                parts.append(block.text)
            elif isinstance(block, Bullets):
                parts.append("\n".join(f"- {item}" for item in block.items))
            elif isinstance(block, Table):
                parts.append(_table(block))
            elif isinstance(block, FigureFile):
                parts.append(_figure(block, figure_folder))
            else:
                raise TypeError(f"no Markdown for {type(block).__name__}")
    return "\n\n".join(parts) + "\n"
