"""The whole quick tier through the command line, two entries at a time (slow: about a
minute on two cores)."""

from __future__ import annotations

import json
import subprocess

import pytest
from gallery_helpers import child_env, gallery_command

from optimlab.gallery import registry
from optimlab.gallery.entry import VERDICTS


@pytest.mark.slow
def test_the_quick_tier_runs_end_to_end_with_two_workers(tmp_path):
    proc = subprocess.run(gallery_command(tmp_path, "--workers", "2"), env=child_env(),
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    quick = [e for e in registry.entries() if e.runs_in("quick")]
    for entry in quick:
        record = json.loads((tmp_path / entry.name / "result.json").read_text())
        assert record["status"] == "done", record.get("traceback")
        assert record["verdict"]["status"] in VERDICTS
        assert entry.rule(record["numbers"]).to_json() == record["verdict"]
        files = [f for figure in record["figures"] for f in figure["files"]]
        assert any(f.endswith(".png") for f in files) and any(f.endswith(".svg") for f in files)
        assert all((tmp_path / entry.name / f).stat().st_size > 1000 for f in files)
        # No title cut off at the figure's edge, no legend over the data.
        faults = {f["stem"]: f["layout"] for f in record["figures"] if f.get("layout")}
        assert faults == {}, entry.name
    ravine = json.loads((tmp_path / "ravine" / "result.json").read_text())
    assert "ravine.gif" in ravine["figures"][0]["files"]
    assert (tmp_path / "ravine" / "ravine.gif").read_bytes()[:6] == b"GIF89a"
    html = (tmp_path / "gallery.html").read_text()
    assert html.count("<section id=") == len(quick) and "data:image/gif;base64," in html
