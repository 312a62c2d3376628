"""write_report on a synthetic three-problem study: files, embedding, verdict, tables."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import report_records as rr

from optimlab.lab.report import analyse_records, verdicts
from optimlab.lab.report.fmt import num
from optimlab.viz.style import colour_map


class Sources(HTMLParser):
    """Every src/href attribute and the image sources of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data") and value is not None:
                self.links.append((tag, value))
                if tag == "img" and name == "src":
                    self.images.append(value)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return rr.full_report(tmp_path_factory)


@pytest.fixture(scope="module")
def analysis():
    return analyse_records(rr.records(), rr.study())


def test_writes_html_markdown_and_png_svg_per_figure(paths):
    assert paths["html"].name == "report.html" and paths["html"].stat().st_size > 0
    assert paths["markdown"].name == "report.md" and paths["markdown"].stat().st_size > 0
    pngs = {p.stem for p in paths["figures"].glob("*.png")}
    svgs = {p.stem for p in paths["figures"].glob("*.svg")}
    expected = {f"{kind}_{p}" for kind in ("curves", "lr_sensitivity") for p in rr.FINALS}
    expected |= {"performance_profile", "schedules"}
    assert pngs == svgs == expected
    for stem in pngs:
        assert (paths["figures"] / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (paths["figures"] / f"{stem}.svg").read_bytes()[:2000]
    # No temporary files of the atomic writes are left behind.
    leftovers = [p.name for p in paths["html"].parent.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_every_figure_is_embedded_in_the_html(paths):
    parser = Sources()
    parser.feed(paths["html"].read_text(encoding="utf-8"))
    assert len(parser.images) == len(list(paths["figures"].glob("*.png")))
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    external = [(tag, v) for tag, v in parser.links if not v.startswith(("data:", "#"))]
    assert external == []
    text = paths["html"].read_text(encoding="utf-8")
    assert "<link" not in text and "@import" not in text and "url(" not in text


def test_markdown_links_every_figure_file(paths):
    md = paths["markdown"].read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((figures/[^)]+)\)", md))
    on_disk = {f"figures/{p.name}" for p in paths["figures"].iterdir()}
    assert linked == on_disk


def test_verdict_names_best_and_separation(analysis, paths):
    by_problem = {v.problem: v for v in verdicts(analysis)}
    # Clearly separated by construction: adam's seeds sit far above sgd's.
    digits = by_problem["digits_mlp"]
    assert (digits.best, digits.runner_up, digits.separated) == ("adam", "sgd", True)
    # Within noise by construction: adam and sgd share their spread.
    fmnist = by_problem["fmnist_mlp"]
    means = {o: rr.usable_finals("fmnist_mlp", o).mean() for o in ("adam", "sgd")}
    assert fmnist.best == max(means, key=means.get)
    assert fmnist.separated is False
    assert math.isclose(fmnist.gap, abs(means["adam"] - means["sgd"]), rel_tol=1e-9)
    # Regression: the lowest val_loss wins.
    quad = by_problem["quadratic"]
    assert quad.metric.key == "val_loss" and quad.metric.mode == "min"
    assert quad.best == min(rr.OPTIMIZERS, key=lambda o: rr.usable_finals("quadratic", o).mean())

    md = paths["markdown"].read_text(encoding="utf-8")
    section = md.split("## Verdict")[1].split("## Final performance")[0]
    blocks = dict(re.findall(r"### (\S+)\n\n(.+)", section))
    assert blocks["digits_mlp"].startswith("adam has the highest mean val_accuracy")
    assert "exceeds the seed spread" in blocks["digits_mlp"]
    assert "within the seed spread" in blocks["fmnist_mlp"]
    assert "exceeds" not in blocks["fmnist_mlp"]
    # Diverged and failed counts are stated.
    assert "rmsprop 1 of 5 final runs" in blocks["digits_mlp"]
    assert "Failed: sgd 1 of 5 final runs" in blocks["digits_mlp"]
    html = paths["html"].read_text(encoding="utf-8")
    assert "exceeds the seed spread" in html and "within the seed spread" in html


def test_verdict_welch_matches_scipy(analysis):
    stats = pytest.importorskip("scipy.stats")
    v = {v.problem: v for v in verdicts(analysis)}["fmnist_mlp"]
    a, b = rr.usable_finals("fmnist_mlp", v.best), rr.usable_finals("fmnist_mlp", v.runner_up)
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert v.welch.t == pytest.approx(reference.statistic, rel=1e-9)
    assert v.spread == pytest.approx(max(a.std(ddof=1), b.std(ddof=1)), rel=1e-12)


def test_final_table_matches_numpy(analysis, paths):
    md = paths["markdown"].read_text(encoding="utf-8")
    for p in analysis.problems:
        table = md.split(f"### {p.problem}\n\n| optimizer")[1].split("\n\n")[0]
        rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines()}
        for s in p.stats:
            expected = rr.usable_finals(p.problem, s.label)
            assert s.mean == pytest.approx(np.mean(expected), rel=1e-12)
            assert s.std == pytest.approx(np.std(expected, ddof=1), rel=1e-9)
            best = expected.max() if p.metric.mode == "max" else expected.min()
            assert s.best == pytest.approx(best, rel=1e-12)
            cells = rows[s.label]
            assert cells[3] == num(float(np.mean(expected)))
            assert cells[4] == num(float(np.std(expected, ddof=1)))
    digits = {s.label: s for s in analysis.problems[0].stats}
    assert (digits["rmsprop"].diverged, digits["rmsprop"].runs) == (1, 5)
    assert (digits["sgd"].failed, digits["sgd"].n) == (1, 4)


def expected_time(problem: str, optimizer: str) -> float:
    """Median seconds to the target over the final seeds, straight from the constructed curves."""
    target = rr.TARGETS[problem]
    key = "val_loss" if problem == "quadratic" else "val_accuracy"
    times = []
    for final in rr.FINALS[problem][optimizer]:
        rows = rr.history(problem, optimizer, final)
        good = [r for r in rows if (r[key] <= target if key == "val_loss" else r[key] >= target)]
        times.append(good[0]["time"] if good else math.inf)
    if problem == "digits_mlp" and optimizer in ("sgd", "rmsprop"):
        times.append(math.inf)  # the failed / diverged extra seed
    return float(np.median(times))


def test_profile_scores_from_the_runs(analysis):
    # Adam's epochs are the cheapest and it clears every target: always fastest.
    assert analysis.scores["adam"] == pytest.approx(1.0)
    # rmsprop's final values stay short of every target.
    assert analysis.scores["rmsprop"] == 0.0
    # sgd against a numerical integral of rho over a fine tau grid.
    taus = np.linspace(1, 4, 30001)
    ratios = []
    for problem in rr.FINALS:
        times = {o: expected_time(problem, o) for o in rr.OPTIMIZERS}
        ratios.append(times["sgd"] / min(times.values()))
    rho = np.array([[r <= tau for r in ratios] for tau in taus]).mean(axis=1)
    area = float(np.sum((rho[1:] + rho[:-1]) / 2 * np.diff(taus))) / 3
    assert 0 < analysis.scores["sgd"] < 1
    assert analysis.scores["sgd"] == pytest.approx(area, abs=1e-3)
    times = {p.problem: {t.label: t for t in p.times} for p in analysis.problems}
    assert times["digits_mlp"]["sgd"].reached == 0
    assert times["fmnist_mlp"]["adam"].reached == len(rr.FINALS["fmnist_mlp"]["adam"])


def test_time_and_steps_to_target_are_the_first_epoch_reaching_it(analysis):
    p = next(p for p in analysis.problems if p.problem == "fmnist_mlp")
    target = rr.TARGETS["fmnist_mlp"]
    first_epochs = []
    for final in rr.FINALS["fmnist_mlp"]["sgd"]:
        rows = rr.history("fmnist_mlp", "sgd", final)
        first_epochs.append(next(r["epoch"] for r in rows if r["val_accuracy"] >= target))
    sgd = next(t for t in p.times if t.label == "sgd")
    median_epoch = float(np.median(first_epochs))
    assert sgd.epoch == median_epoch
    assert sgd.step == median_epoch * rr.STEPS_PER_EPOCH
    assert sgd.time == median_epoch * rr.SECONDS_PER_EPOCH["sgd"]


def test_each_optimizer_keeps_its_colour_in_every_figure(paths):
    palette = colour_map(rr.OPTIMIZERS)
    assert palette == colour_map(reversed(rr.OPTIMIZERS))
    assert len(set(palette.values())) == len(palette)
    for svg in paths["figures"].glob("*.svg"):
        text = svg.read_text(encoding="utf-8").lower()
        drawn = ["sgd"] if svg.stem == "schedules" else list(rr.OPTIMIZERS)
        for optimizer in drawn:
            assert palette[optimizer] in text, (svg.name, optimizer)
