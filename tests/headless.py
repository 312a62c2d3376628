"""Headless Chromium for the page tests (the lab's report, the gallery): a probe script
that records, after load, the page's errors, its images' state and every resource it
fetched (the Resource Timing API lists each request; data URIs are not requests), and a
browser whose host names resolve to nothing, so a page that needed the network would show
it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PROBE = """<script>
window.__problems = [];
window.addEventListener("error", function (e) {
  window.__problems.push("error: " + (e.message || (e.target && e.target.outerHTML) || e));
}, true);
(function () {
  var original = console.error;
  console.error = function () {
    window.__problems.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  var probe = document.createElement("pre");
  probe.id = "page-probe";
  probe.textContent = JSON.stringify({
    images: images.length,
    broken: broken.length,
    widths: images.map(function (i) { return i.getBoundingClientRect().width; }),
    requests: performance.getEntriesByType("resource").map(function (r) { return r.name; }),
    problems: window.__problems
  });
  document.body.appendChild(probe);
});
</script>"""


def chromium(args: list[str], profile: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        # Every host name resolves to nothing: the page must not need the network.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def probe_page(html: str, tmp_path: Path, *options: str) -> dict:
    """Open ``html`` (a copy in ``tmp_path``, away from any files it might reference) with
    the probe in its head and Chromium's ``options``; what the probe recorded after load:
    ``images``, ``broken``, ``widths``, ``requests``, ``problems``."""
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    args = [*options, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()]
    result = chromium(args, tmp_path / "profile")
    found = re.search(r'<pre id="page-probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"the probe did not report; chromium said: {result.stderr[-2000:]}"
    return json.loads(unescape(found.group(1)))
