"""Open report.html in headless Chromium: no script errors, every image decodes, no network.

A copy of the page gets a probe script at the top of <head> that records window errors and
console.error calls and, after load, writes the counts into the DOM, which ``--dump-dom``
prints. Host resolution is mapped to nothing, so a page that needed the network would show
broken images. A screenshot of the unmodified page is saved into the test's tmp dir.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html import unescape
from pathlib import Path

import pytest
import report_records as rr

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
  probe.id = "report-probe";
  probe.textContent = JSON.stringify({
    images: images.length, broken: broken.length, problems: window.__problems
  });
  document.body.appendChild(probe);
});
</script>"""

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed; the browser check of report.html needs it"
)


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
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
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return rr.full_report(tmp_path_factory)


def test_report_renders_without_errors(report, tmp_path):
    html = report["html"].read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = chromium(
        ["--virtual-time-budget=10000", "--dump-dom", probed.as_uri()], tmp_path / "profile"
    )
    found = re.search(r'<pre id="report-probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"the probe did not run; chromium said:\n{result.stderr[-2000:]}"
    probe = json.loads(unescape(found.group(1)))
    figures = len(list(report["figures"].glob("*.png")))
    assert probe == {"images": figures, "broken": 0, "problems": []}


def test_report_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    result = chromium(
        [
            "--window-size=1280,2400",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            report["html"].as_uri(),
        ],
        tmp_path / "profile",
    )
    assert shot.exists() and shot.stat().st_size > 10_000, result.stderr[-2000:]
    assert png_size(shot) == (1280, 2400)
