"""``optimlab gallery`` end to end: a run killed by SIGKILL resumes without redoing the
finished entry; every entry leaves figures, numbers and a verdict; user mistakes are one
line with exit status 2; ``optimlab list gallery`` lists the registry."""

from __future__ import annotations

import json
import re
import signal

import pytest
from gallery_helpers import ONLY

from optimlab.cli import main
from optimlab.gallery import registry
from optimlab.gallery.entry import VERDICTS


def test_the_killed_run_stopped_between_entries(killed_and_resumed):
    run = killed_and_resumed
    assert run["killed_returncode"] == -signal.SIGKILL
    # Otherwise the run below would have nothing left to continue with.
    assert not run["second_done_when_killed"], "the run finished before the kill landed"


def test_the_rerun_continues_without_redoing_the_finished_entry(killed_and_resumed):
    run = killed_and_resumed
    resumed = run["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first, second = ONLY
    assert run["after_resume"][first] == run["before_resume"]  # same inodes and times
    assert re.search(rf"^{first}: .* \(stored result\)$", resumed.stdout, re.M)
    assert re.search(rf"^{second}: .* \(\d+\.\d s\)$", resumed.stdout, re.M)


def test_a_third_run_recomputes_nothing(killed_and_resumed):
    run = killed_and_resumed
    assert run["third"].returncode == 0
    assert run["after_third"] == run["after_resume"]
    assert run["third"].stdout.count("(stored result)") == len(ONLY)


def test_every_entry_has_its_figures_numbers_and_a_verdict(killed_and_resumed):
    out = killed_and_resumed["out"]
    for name in ONLY:
        record = json.loads((out / name / "result.json").read_text())
        assert record["status"] == "done", record.get("error")
        assert record["verdict"]["status"] in VERDICTS and record["verdict"]["reason"]
        rule = registry.entries().get(name).rule
        assert rule(record["numbers"]).to_json() == record["verdict"]
        assert record["numbers"] and record["budget"] and record["machine"]["cpu"]
        assert record["command"] == f"optimlab gallery --only {name} --tier quick --out {out}"
        for figure in record["figures"]:
            stems = {f.rsplit(".", 1)[1] for f in figure["files"]}
            assert {"png", "svg"} <= stems
            for f in figure["files"]:
                assert (out / name / f).stat().st_size > 1000
    html = (out / "gallery.html").read_text()
    md = (out / "gallery.md").read_text()
    for name in ONLY:
        assert f'<section id="{name}">' in html and f'<a href="#{name}">' in html
        assert f"({name}/" in md
    # Each entry's own summary table, here the whitening experiment's units table.
    assert ">momentum steps</th>" in html and "| inputs | cond(A^T A) |" in md
    # The contents list is grouped by lecture: the decks appear as headings in order.
    decks = re.findall(r"<h4>(lecture \d{3}[^<]*)</h4>", html)
    assert decks == sorted(decks) and decks


def test_an_unknown_only_name_is_one_line_listing_the_valid_ones(tmp_path, capsys):
    assert main(["gallery", "--only", "cyclical,nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("optimlab: error: unknown gallery entry 'nope'; valid entries: ")
    assert ", ".join(registry.names()) in err[0]
    assert not any(tmp_path.iterdir())  # nothing was run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "huge"], "invalid --tier 'huge'; valid tiers: quick, standard, full"),
        (["--workers", "0"], "invalid --workers: 0; valid range is [1, inf)"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, args, message):
    assert main(["gallery", "--out", str(tmp_path), *args]) == 2
    assert capsys.readouterr().err.strip() == f"optimlab: error: {message}"


def test_an_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["gallery", "--only", "cyclical", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("optimlab: error: invalid --out") and "\n" not in err


def test_list_gallery_shows_every_entry(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list", "gallery"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "tier", "lecture", "slide", "experiment"]
    listed = [line.split()[0] for line in lines[2:] if line and not line.startswith(" ")]
    assert listed == registry.names()
