"""The ``optimlab-registry`` directive: a registry as a table, built from the registry.

``.. optimlab-registry:: schedules`` renders what ``optimlab list schedules`` prints,
from the same ``table()`` function, so the pages never keep a second list of names.
``:exclude-columns:`` drops columns that describe this machine rather than the
library (the datasets' "status": found or missing here).
"""

from __future__ import annotations

import importlib

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from optimlab.cli.list_cmd import LISTINGS


class RegistryTable(SphinxDirective):
    required_arguments = 1
    has_content = False
    option_spec = {"exclude-columns": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        kind = self.arguments[0]
        if kind not in LISTINGS:
            raise self.error(f"unknown registry {kind!r}; valid: {', '.join(LISTINGS)}")
        module, function = LISTINGS[kind].split(":")
        headers, rows = getattr(importlib.import_module(module), function)()
        dropped = {c.strip() for c in self.options.get("exclude-columns", "").split(",")}
        unknown = dropped - set(headers) - {""}
        if unknown:
            raise self.error(f"no column {sorted(unknown)} in {kind}; columns: {headers}")
        keep = [i for i, h in enumerate(headers) if h not in dropped]
        table = nodes.table(classes=["optimlab-registry"])
        group = nodes.tgroup(cols=len(keep))
        table += group
        group += [nodes.colspec(colwidth=1) for _ in keep]
        group += nodes.thead("", self._row([headers[i] for i in keep], literal_first=False))
        body = nodes.tbody()
        for row in rows:
            body += self._row([str(row[i]) for i in keep], literal_first=True)
        group += body
        return [table]

    @staticmethod
    def _row(cells: list[str], literal_first: bool) -> nodes.row:
        row = nodes.row()
        for k, text in enumerate(cells):
            inline = nodes.literal(text, text) if literal_first and k == 0 else nodes.Text(text)
            row += nodes.entry("", nodes.paragraph("", "", inline))
        return row


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("optimlab-registry", RegistryTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
