"""The gallery's pages: ``gallery.html`` (one self-contained file) and ``gallery.md``.

Both are built from the stored results on disk, not from what this run computed, so a
run of one entry (``--only``) still gives the whole page. The HTML embeds every figure as
a data URI and its style sheet inline: it needs no other file and makes no request. The
Markdown page links the figure files beside it. A click on an HTML table's header sorts
its rows by that column (numbers as numbers; the entry's own row order until then), by
a script inline in the page.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from optimlab.gallery import machine, store
from optimlab.gallery.entry import AT_BUDGET, NOT_REPRODUCED, REPRODUCED, Context, Entry
from optimlab.io import atomic_write_text

HTML = "gallery.html"
MARKDOWN = "gallery.md"
# Lists longer than this are left to the JSON; the page shows their length.
INLINE_ITEMS = 8

NOT_RUN = "not run"
OUTDATED = "outdated"
STATES = (REPRODUCED, AT_BUDGET, NOT_REPRODUCED, store.FAILED, store.SKIPPED, OUTDATED, NOT_RUN)
MIME = {"png": "image/png", "gif": "image/gif"}


@dataclass(frozen=True)
class Item:
    """An entry as the page shows it: its record (None when not run) and its state."""

    entry: Entry
    record: dict[str, Any] | None
    state: str
    command: str


def item(entry: Entry, out: Path, tier: str, out_label: str, context: Context) -> Item:
    """How ``entry`` stands in the gallery at ``out``: its stored record and its state."""
    from optimlab.gallery.runner import command

    cmd = command(entry.name, tier, out_label, context)
    record = store.read(out, entry.name)
    if record is None or record.get("tier") != tier:
        return Item(entry, None, NOT_RUN, cmd)
    if record.get("version") != entry.version:
        return Item(entry, record, OUTDATED, cmd)
    status = record.get("status")
    if status == store.DONE:
        return Item(entry, record, record["verdict"]["status"], cmd)
    return Item(entry, record, status, cmd)


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "none" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def flatten(numbers: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(key path, shown value)`` rows: nested keys joined by dots, short lists inline."""
    if isinstance(numbers, dict):
        rows = []
        for key, value in numbers.items():
            rows.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if isinstance(numbers, list):
        scalar = all(not isinstance(v, dict | list) for v in numbers)
        if scalar and len(numbers) <= INLINE_ITEMS:
            return [(prefix, "[" + ", ".join(_number(v) for v in numbers) + "]")]
        if scalar:
            return [(prefix, f"{len(numbers)} values (in result.json)")]
        rows = []
        for i, value in enumerate(numbers):
            rows.extend(flatten(value, f"{prefix}[{i}]"))
        return rows
    return [(prefix, _number(numbers))]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _budget(budget: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={_number(v) if not isinstance(v, list) else v}" for k, v in budget.items()
    )


def summary_table(item: Item) -> tuple[list[str], list[list[str]]] | None:
    """The entry's own summary of its numbers, or None when it has none."""
    if item.entry.table is None or item.record is None:
        return None
    return item.entry.table(item.record["numbers"])


def _decks(items: Sequence[Item]) -> dict[str, list[Item]]:
    decks: dict[str, list[Item]] = {}
    for item in items:
        decks.setdefault(item.entry.deck, []).append(item)
    return dict(sorted(decks.items()))


def _counts(items: Sequence[Item]) -> str:
    counts = {s: sum(i.state == s for i in items) for s in STATES}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def figure_files(item: Item) -> list[tuple[str, str]]:
    """``(stem, file shown)`` of each figure of a finished entry."""
    if item.record is None or item.state in (NOT_RUN, OUTDATED):
        return []
    return [(f["stem"], f["files"][0]) for f in item.record.get("figures", []) if f.get("files")]


# --- HTML ----------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
  max-width: 72rem; padding: 1.5rem 2rem 3rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.35rem; border-bottom: 2px solid #ddd; padding-bottom: 0.2rem;
  margin-top: 2.4rem; }
h3 { font-size: 1.12rem; margin: 1.8rem 0 0.3rem; }
.subtitle, .meta { color: #555; margin-top: 0; }
nav ul { margin: 0.2rem 0 0.8rem; }
.badge { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 0.8rem; font-size: 0.85rem;
  color: #fff; background: #777; white-space: nowrap; }
.s-reproduced { background: #2e7d32; }
.s-reproduced-at-this-budget-only { background: #b26a00; }
.s-not-reproduced { background: #c62828; }
.s-failed { background: #6a1b9a; }
.verdict { margin: 0.5rem 0; }
figure { margin: 0.8rem 0 1.2rem; }
figure img { display: block; max-width: 100%; max-height: 80vh; width: auto; height: auto;
  border: 1px solid #eee; }
table { border-collapse: collapse; margin: 0.4rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 0.2rem 0.7rem; text-align: left;
  vertical-align: top; }
td.num { font-variant-numeric: tabular-nums; }
th { background: #f5f5f5; }
table.sortable th { cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
code { background: #f3f3f3; padding: 0.05rem 0.3rem; border-radius: 0.2rem; font-size: 0.88rem; }
pre.error { background: #fbeff2; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
details { margin: 0.4rem 0; }
"""


# Click a header: sort the body's rows by that column, ascending, then descending.
# Numbers (a cell that starts with one) sort as numbers and before words; ties keep
# their order (Array.sort is stable).
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var key = function (row) {
        var text = row.cells[col] ? row.cells[col].textContent.trim() : "";
        var n = parseFloat(text);
        return isNaN(n) ? text : n;
      };
      var order = function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x === "number" && typeof y === "number") { return x - y; }
        if (typeof x === "number") { return -1; }
        if (typeof y === "number") { return 1; }
        return x.localeCompare(y, undefined, {numeric: true});
      };
      var body = table.tBodies[0];
      Array.from(body.rows)
        .sort(function (a, b) { return up ? order(a, b) : order(b, a); })
        .forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _table(headers: Sequence[str], rows: str) -> str:
    """A sortable table: ``headers`` escaped here, ``rows`` already HTML."""
    head = "".join(f'<th title="sort by this column">{escape(h)}</th>' for h in headers)
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _css_class(state: str) -> str:
    return "s-" + state.replace(" ", "-")


def _badge(state: str) -> str:
    return f'<span class="badge {_css_class(state)}">{escape(state)}</span>'


def _img(folder: Path, stem: str, name: str, title: str) -> str:
    if not (folder / name).is_file():
        return f"<p>Figure {escape(name)} is missing from {escape(folder.name)}/.</p>"
    data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
    mime = MIME[name.rsplit(".", 1)[1].lower()]
    return (
        f'<figure id="{escape(folder.name)}-{escape(stem)}"><img src="data:{mime};base64,{data}" '
        f'alt="{escape(title)}: {escape(stem)}"></figure>'
    )


def _html_item(item: Item, out: Path) -> str:
    e, r = item.entry, item.record
    parts = [
        f'<section id="{escape(e.name)}"><h3>{escape(e.title)} {_badge(item.state)}</h3>',
        f'<p class="meta">{escape(e.deck)}, slide "{escape(e.slide)}"'
        + (f"; {escape(e.reference)}" if e.reference else "")
        + "</p>",
        f"<p><strong>Claim.</strong> {escape(e.claim)}</p>",
    ]
    if item.state in (NOT_RUN, OUTDATED):
        why = "not run at this tier yet" if item.state == NOT_RUN else (
            f"the stored result is of entry version {r and r.get('version')}, the entry is now "
            f"version {e.version}"
        )  # fmt: skip
        parts.append(f"<p>{escape(why)}; run: <code>{escape(item.command)}</code></p>")
        return "\n".join(parts + ["</section>"])
    assert r is not None
    if item.state == store.FAILED:
        parts.append(f'<pre class="error">{escape(r.get("error", ""))}</pre>')
    elif item.state == store.SKIPPED:
        parts.append(f"<p>Skipped: {escape(r.get('skip_reason', ''))}</p>")
        parts.append(f"<p>Get the data and run it: <code>{escape(r['get_data'])}</code></p>")
    else:
        parts.append(
            f'<p class="verdict">{_badge(item.state)} {escape(r["verdict"]["reason"])}</p>'
        )
        for stem, name in figure_files(item):
            parts.append(_img(out / e.name, stem, name, e.title))
        table = summary_table(item)
        if table is not None:
            body = "".join(
                "<tr>" + "".join(f"<td class='num'>{escape(c)}</td>" for c in row) + "</tr>"
                for row in table[1]
            )
            parts.append(_table(table[0], body))
        rows = "\n".join(
            f"<tr><td>{escape(k)}</td><td class='num'>{escape(v)}</td></tr>"
            for k, v in flatten(r.get("numbers", {}))
        )
        parts.append(
            f"<details><summary>Numbers</summary>{_table(['measured', 'value'], rows)}</details>"
        )
    seconds = f", {r['seconds']:.1f} s" if "seconds" in r else ""
    parts.append(
        "<ul>"
        f"<li>Budget ({escape(r['tier'])} tier): {escape(_budget(r.get('budget', {})))}</li>"
        f"<li>Machine: {escape(machine.summary(r.get('machine', {})))}{escape(seconds)}</li>"
        f"<li>Regenerate: <code>{escape(r['command'])}</code></li>"
        "</ul></section>"
    )
    return "\n".join(parts)


def render_html(items: Sequence[Item], tier: str, out: Path, out_label: str) -> str:
    from optimlab.gallery.runner import command

    every = command("NAME", tier, out_label, Context()).replace(" --only NAME", "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>optimlab gallery ({escape(tier)})</title><style>{STYLE}</style></head><body>",
        "<h1>The lectures' experiments, rerun</h1>",
        f'<p class="subtitle">optimlab gallery, {escape(tier)} tier: {escape(_counts(items))}. '
        f"Every entry: <code>{escape(every)}</code></p>",
        "<nav><h2>Contents</h2>",
    ]
    decks = _decks(items)
    for deck, group in decks.items():
        parts.append(f"<h4>{escape(deck)}</h4><ul>")
        parts.extend(
            f'<li><a href="#{escape(i.entry.name)}">{escape(i.entry.title)}</a> {_badge(i.state)}'
            "</li>"
            for i in group
        )
        parts.append("</ul>")
    parts.append("</nav>")
    for deck, group in decks.items():
        parts.append(f"<h2>{escape(deck)}</h2>")
        parts.extend(_html_item(i, out) for i in group)
    parts.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


# --- Markdown ------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_item(item: Item) -> list[str]:
    e, r = item.entry, item.record
    lines = [
        f"### {e.title}",
        "",
        f'{e.deck}, slide "{e.slide}"' + (f"; {e.reference}" if e.reference else "") + ".",
        "",
        f"**Claim.** {e.claim}",
        "",
    ]
    if item.state in (NOT_RUN, OUTDATED):
        return lines + [f"**{item.state}**: run `{item.command}`", ""]
    assert r is not None
    if item.state == store.FAILED:
        lines += [f"**failed**: `{r.get('error', '')}`", ""]
    elif item.state == store.SKIPPED:
        lines += [
            f"**skipped**: {r.get('skip_reason', '')}",
            "",
            f"Get the data: `{r['get_data']}`",
            "",
        ]
    else:
        lines += [f"**Verdict: {item.state}.** {_sentence(r['verdict']['reason'])}", ""]
        for stem, name in figure_files(item):
            lines += [f"![{e.title}: {stem}]({e.name}/{name})", ""]
        table = summary_table(item)
        if table is not None:
            lines += ["| " + " | ".join(map(_md_cell, table[0])) + " |",
                      "|" + "---|" * len(table[0])]  # fmt: skip
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table[1]]
            lines.append("")
        lines += ["| measured | value |", "|---|---|"]
        lines += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in flatten(r.get("numbers", {}))]
        lines.append("")
    lines += [
        f"- Budget ({r['tier']} tier): {_budget(r.get('budget', {}))}",
        f"- Machine: {machine.summary(r.get('machine', {}))}"
        + (f", {r['seconds']:.1f} s" if "seconds" in r else ""),
        f"- Regenerate: `{r['command']}`",
        "",
    ]
    return lines


def render_markdown(items: Sequence[Item], tier: str, *, contents: bool = True) -> str:
    """The Markdown page; ``contents=False`` leaves out the contents list and its anchors
    (for a documentation site, whose sidebar lists the sections)."""
    lines = [
        "# The lectures' experiments, rerun",
        "",
        f"optimlab gallery, {tier} tier: {_counts(items)}.",
        "",
    ]
    decks = _decks(items)
    if contents:
        lines += ["## Contents", ""]
        for deck, group in decks.items():
            lines.append(f"- {deck}")
            lines.extend(f"  - [{i.entry.title}](#{i.entry.name}) ({i.state})" for i in group)
        lines.append("")
    for deck, group in decks.items():
        lines += [f"## {deck}", ""]
        for item in group:
            anchor = [f'<a id="{item.entry.name}"></a>', ""] if contents else []
            lines += anchor + _md_item(item)
    return "\n".join(lines)


def write(
    out: Path, shown: Sequence[Entry], tier: str, out_label: str, context: Context
) -> list[Path]:
    """Write ``gallery.html`` and ``gallery.md`` for the entries ``shown``; their paths."""
    items = [item(e, out, tier, out_label, context) for e in shown]
    html = atomic_write_text(out / HTML, render_html(items, tier, out, out_label))
    md = atomic_write_text(out / MARKDOWN, render_markdown(items, tier))
    return [html, md]
