"""Open report.html in headless Chromium: no script errors, every image decodes, no network.

A copy of the page gets a probe script at the top of <head> that records window errors and
console.error calls and, after load, writes the counts into the DOM, which ``--dump-dom``
prints. Host resolution is mapped to nothing, so a page that needed the network would show
broken images. A screenshot of the unmodified page is saved into the test's tmp dir.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import report_records as rr

from headless import CHROMIUM, chromium, probe_page

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed; the browser check of report.html needs it"
)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return rr.full_report(tmp_path_factory)


def test_report_renders_without_errors(report, tmp_path):
    probe = probe_page(report["html"].read_text(encoding="utf-8"), tmp_path)
    figures = len(list(report["figures"].glob("*.png")))
    assert (probe["images"], probe["broken"], probe["problems"]) == (figures, 0, [])
    assert probe["requests"] == []  # the page is self-contained


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
