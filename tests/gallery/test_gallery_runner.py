"""The gallery runner in this process: what it stores, when it reruns an entry, and how a
failing entry or a missing dataset is recorded without stopping the others.

The real ``cyclical`` entry (a second or two) stands for a working entry; entries made
here stand for a failing one and for one that needs a dataset that is not on disk.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from optimlab.errors import OptimlabError
from optimlab.gallery import registry, run_gallery, store
from optimlab.gallery.entries import cyclical
from optimlab.gallery.entry import TIERS, Entry, Verdict

QUICK = cyclical.ENTRY


def failing_compute(budget, context):
    raise RuntimeError("the experiment broke\nsecond line of the message")


def no_compute(budget, context):  # a skipped entry must never get this far
    raise AssertionError("compute ran although its dataset is missing")


def make_entry(name: str, compute, requires=lambda budget: ()) -> Entry:
    return Entry(
        name=name, title=name, deck="lecture 999: made up", slide="-", claim="-", tier="quick",
        version=1, budgets={t: {"n": 1} for t in TIERS}, compute=compute,
        draw=lambda measured: {}, rule=lambda numbers: Verdict("reproduced", "-"),
        requires=requires,
    )  # fmt: skip


def stamp(path):
    """What an atomic rewrite would change: the inode and the modification time."""
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def quiet(line: str) -> None:
    pass


def test_an_entry_writes_figures_numbers_verdict_budget_machine_and_command(tmp_path):
    outcome = run_gallery(tmp_path, only=["cyclical"], report=quiet)
    assert outcome.computed == ["cyclical"] and outcome.cached == []
    record = json.loads((tmp_path / "cyclical" / "result.json").read_text())
    assert record["status"] == "done" and record["tier"] == "quick"
    assert record["version"] == QUICK.version
    assert record["verdict"] == cyclical.rule(record["numbers"]).to_json()
    assert record["budget"] == QUICK.budgets["quick"]
    assert record["machine"]["cores"] >= 1 and record["machine"]["torch"]
    assert record["command"] == f"optimlab gallery --only cyclical --tier quick --out {tmp_path}"
    for name in ("schedules.png", "schedules.svg"):
        assert (tmp_path / "cyclical" / name).stat().st_size > 1000
    assert (tmp_path / "cyclical" / "schedules.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "gallery.html").read_text()
    assert 'id="cyclical"' in html and "data:image/png;base64," in html
    # Entries not run yet are listed with the command that runs them.
    others = [n for n in registry.names() if n != "cyclical"]
    assert f"optimlab gallery --only {others[0]} --tier quick" in html
    md = (tmp_path / "gallery.md").read_text()
    assert "![Cyclical learning rates and snapshot cycles: schedules](cyclical/schedules.png)" in md


def test_a_current_result_is_not_recomputed_but_a_new_version_or_tier_is(tmp_path):
    run_gallery(tmp_path, only=["cyclical"], report=quiet)
    files = [tmp_path / "cyclical" / n for n in ("result.json", "schedules.png", "schedules.svg")]
    before = [stamp(f) for f in files]
    again = run_gallery(tmp_path, only=["cyclical"], report=quiet)
    assert again.cached == ["cyclical"] and again.computed == []
    assert [stamp(f) for f in files] == before
    # Another tier is another budget: computed again, and so is a new entry version.
    other = run_gallery(tmp_path, only=["cyclical"], tier="standard", report=quiet)
    assert other.computed == ["cyclical"]
    assert json.loads(files[0].read_text())["tier"] == "standard"
    bumped = dataclasses.replace(QUICK, version=QUICK.version + 1)
    outcome = run_gallery(tmp_path, only=["cyclical"], tier="standard", pool=[bumped], report=quiet)
    assert outcome.computed == ["cyclical"]
    assert json.loads(files[0].read_text())["version"] == QUICK.version + 1


def test_a_deleted_figure_makes_the_entry_run_again(tmp_path):
    run_gallery(tmp_path, only=["cyclical"], report=quiet)
    (tmp_path / "cyclical" / "schedules.svg").unlink()
    outcome = run_gallery(tmp_path, only=["cyclical"], report=quiet)
    assert outcome.computed == ["cyclical"]
    assert (tmp_path / "cyclical" / "schedules.svg").is_file()


def test_a_failing_entry_is_recorded_and_the_others_still_run(tmp_path):
    broken = make_entry("broken", failing_compute)
    lines = []
    outcome = run_gallery(tmp_path, pool=[broken, QUICK], report=lines.append)
    assert outcome.failed == ["broken"]
    assert outcome.records["cyclical"]["status"] == "done"
    record = json.loads((tmp_path / "broken" / "result.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: the experiment broke"
    assert "failing_compute" in record["traceback"]
    assert "broken: FAILED: RuntimeError: the experiment broke" in lines
    html = (tmp_path / "gallery.html").read_text()
    assert "RuntimeError: the experiment broke" in html and "s-failed" in html
    # A failed entry is tried again on the next run.
    assert run_gallery(tmp_path, pool=[broken, QUICK], report=quiet).computed == ["broken"]


def test_an_entry_whose_dataset_is_missing_is_skipped_with_the_way_to_get_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("OPTIMLAB_DATA", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty))
    needs = make_entry("needs_mnist", no_compute, requires=lambda budget: ["mnist"])
    out = tmp_path / "out"
    outcome = run_gallery(out, pool=[needs], report=quiet)
    record = outcome.records["needs_mnist"]
    assert record["status"] == "skipped" and outcome.failed == []
    assert "dataset 'mnist' not found" in record["skip_reason"]
    assert record["get_data"] == (
        f"optimlab gallery --only needs_mnist --tier quick --out {out} --download"
    )
    assert record["get_data"] in (out / "gallery.html").read_text()


def test_selection_errors_name_the_valid_entries_and_tiers():
    with pytest.raises(OptimlabError) as err:
        registry.select([registry.names()[0], "nope"], "quick")
    message = str(err.value)
    assert "unknown gallery entry 'nope'" in message
    assert f"valid entries: {', '.join(registry.names())}" in message and "\n" not in message
    with pytest.raises(OptimlabError, match="invalid --tier 'huge'; valid tiers: quick"):
        registry.select(None, "huge")
    later = dataclasses.replace(QUICK, tier="full", budgets={"full": {}})
    with pytest.raises(OptimlabError, match="belongs to the full tier; run it with --tier full"):
        registry.select(["cyclical"], "quick", pool=[later])
    assert registry.select(None, "quick", pool=[later]) == []


def test_numbers_must_be_finite_json():
    assert store.to_json_value({"a": (1, 2.5), "b": None}) == {"a": [1, 2.5], "b": None}
    with pytest.raises(ValueError, match=r"numbers\.x\[1\] is inf"):
        store.to_json_value({"x": [1.0, float("inf")]})


def test_every_registered_entry_has_a_budget_for_its_tiers_and_a_known_deck():
    names = registry.names()
    assert names == list(registry.MODULES)
    for entry in registry.entries():
        assert entry.deck.startswith("lecture 00")
        for tier in TIERS[TIERS.index(entry.tier) :]:
            assert entry.budget(tier)


def test_a_verdict_must_be_one_of_the_three():
    with pytest.raises(ValueError, match="unknown verdict"):
        Verdict("partly", "")


def test_workers_take_the_flush_denormal_mode_from_the_caller(tmp_path):
    """A spawned worker starts with subnormals kept; the runner hands the mode on."""
    import concurrent.futures as cf
    import multiprocessing

    from optimlab.gallery.entry import Context
    from optimlab.gallery.runner import _run_in_worker
    from optimlab.train.denormals import flushing_here

    spawn = multiprocessing.get_context("spawn")
    for flush in (True, False):
        with cf.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            out = tmp_path / str(flush)
            args = ("cyclical", "quick", str(out), str(out), Context(), 1, flush)
            record = pool.submit(_run_in_worker, *args).result()
            assert record["status"] == "done", record
            assert pool.submit(flushing_here).result() is flush
