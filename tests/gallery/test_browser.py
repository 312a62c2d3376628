"""Open gallery.html in headless Chromium: it renders, every image decodes, and nothing is
fetched from outside the file.

A copy of the page gets a probe script at the top of <head> that records window errors
and console.error calls and, after load, writes into the DOM the images' state and every
resource the page fetched (the Resource Timing API lists each request; data URIs are not
requests). ``--dump-dom`` prints it. Host names resolve to nothing, so a page that needed
the network would also show broken images. A screenshot of the unmodified page must not
be blank.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from headless import CHROMIUM, chromium, probe_page

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed; the browser check of gallery.html needs it"
)


def shown_figures(out: Path) -> int:
    count = 0
    for result in out.glob("*/result.json"):
        record = json.loads(result.read_text())
        if record.get("status") == "done":
            count += len(record["figures"])
    return count


def test_gallery_renders_with_every_image_and_no_request(killed_and_resumed, tmp_path):
    out = killed_and_resumed["out"]
    html = (out / "gallery.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]{0,40})', html)
    assert sources and all(s.startswith("data:image/") for s in sources)
    probe = probe_page(html, tmp_path, "--window-size=1280,900")  # away from the figures
    assert probe["images"] == shown_figures(out) > 0
    assert probe["broken"] == 0 and probe["problems"] == [] and probe["requests"] == []
    # Figures fit the window's width (the page's column is at most 72rem).
    assert all(0 < w <= 1280 for w in probe["widths"])


def test_gallery_screenshot_is_not_blank(killed_and_resumed, tmp_path):
    from PIL import Image

    shot = tmp_path / "gallery.png"
    page = killed_and_resumed["out"] / "gallery.html"
    result = chromium(
        ["--window-size=1280,2400", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri()],
        tmp_path / "profile",
    )
    assert shot.exists(), result.stderr[-2000:]
    with Image.open(io.BytesIO(shot.read_bytes())) as image:
        assert image.size == (1280, 2400)
        grey = image.convert("L")
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        # Text, badges and plotted figures: many colours and dark pixels, not a white page.
        assert colours is not None and len(colours) > 200
        dark = sum(grey.histogram()[:100])  # pixels darker than 100 of 255
        assert dark > 2000


# After load: the cyclical entry's summary table, its first column, before and after two
# clicks on the second column's header.
CLICKS = """<script>
window.addEventListener("load", function () {
  var table = document.querySelector("#cyclical table.sortable");
  var th = table.querySelectorAll("thead th")[1];
  var names = function () {
    return Array.from(table.tBodies[0].rows).map(function (r) { return r.cells[0].textContent; });
  };
  var seen = [names()];
  th.click();
  seen.push(names(), th.getAttribute("aria-sort"));
  th.click();
  seen.push(names(), th.getAttribute("aria-sort"));
  var out = document.createElement("pre");
  out.id = "sort-probe";
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
});
</script>"""


def test_a_click_on_a_header_sorts_the_table_by_that_column(killed_and_resumed, tmp_path):
    from html import unescape

    from optimlab.gallery.registry import entries

    out = killed_and_resumed["out"]
    record = json.loads((out / "cyclical" / "result.json").read_text())
    _, rows = entries().get("cyclical").table(record["numbers"])
    shown = [r[0] for r in rows]
    up = [r[0] for r in sorted(rows, key=lambda r: float(r[1]))]
    down = [r[0] for r in sorted(rows, key=lambda r: -float(r[1]))]
    assert up != shown  # the click has something to do
    page = tmp_path / "clicked.html"
    html = (out / "gallery.html").read_text(encoding="utf-8")
    page.write_text(html.replace("<head>", "<head>" + CLICKS, 1), encoding="utf-8")
    result = chromium(["--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                      tmp_path / "profile")  # fmt: skip
    found = re.search(r'<pre id="sort-probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, result.stderr[-2000:]
    assert json.loads(unescape(found.group(1))) == [shown, up, "ascending", down, "descending"]
