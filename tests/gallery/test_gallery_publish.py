"""The gallery as a documentation page: ``publish`` copies a finished run's page and the
figures it shows, replaces an older copy whole, and refuses a folder with no run."""

from __future__ import annotations

import pytest

from optimlab.errors import OptimlabError
from optimlab.gallery import run_gallery
from optimlab.gallery.publish import INDEX, publish


def quiet(line: str) -> None:
    pass


def test_publish_copies_the_page_and_exactly_the_figures_it_shows(tmp_path):
    out, docs = tmp_path / "run", tmp_path / "docs" / "gallery"
    run_gallery(out, only=["cyclical"], report=quiet)
    page = publish(out, docs, "quick")
    assert page == docs / INDEX
    text = page.read_text()
    # The run's own page has a contents list with anchors; the site's sidebar replaces it.
    assert "## Contents" in (out / "gallery.md").read_text()
    assert "## Contents" not in text and '<a id="' not in text
    shown = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert shown, "the page shows no figure"
    copied = sorted(str(p.relative_to(docs)) for p in docs.rglob("*") if p.is_file())
    assert copied == sorted([INDEX, *shown])
    assert all((docs / s).read_bytes() == (out / s).read_bytes() for s in shown)
    # Entries that did not run are listed with the command that runs them.
    assert "**not run**: run `optimlab gallery --only divergence" in text


def test_publish_replaces_an_older_copy_whole(tmp_path):
    out, docs = tmp_path / "run", tmp_path / "gallery"
    run_gallery(out, only=["cyclical"], report=quiet)
    (docs / "stale_entry").mkdir(parents=True)
    (docs / "stale_entry" / "old.png").write_bytes(b"old")
    publish(out, docs, "quick")
    assert not (docs / "stale_entry").exists()
    assert not [p for p in docs.parent.iterdir() if p.name.startswith(".gallery-")]


def test_publish_without_a_run_is_an_error(tmp_path):
    with pytest.raises(OptimlabError, match="no gallery run at"):
        publish(tmp_path / "nothing", tmp_path / "docs", "quick")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptimlabError, match="has no result of the quick tier"):
        publish(tmp_path / "empty", tmp_path / "docs", "quick")
