"""The report as a renderer-neutral document: sections of headings, text, tables, figures.

``html.py`` and ``markdown.py`` each walk the same ``Document``, so the two outputs
cannot disagree on a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optimlab.lab.report.figures import FigureFile


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    """A table of preformatted cells; ``numeric`` columns are right-aligned."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: frozenset[int] = frozenset()


Block = Heading | Paragraph | Bullets | Table | FigureFile


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def figures(self) -> list[FigureFile]:
        """Every figure in the document, in order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, FigureFile)]
