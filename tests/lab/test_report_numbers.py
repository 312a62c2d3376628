"""The report's numbers on small hand-made inputs: profiles, statistics, targets, input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import report_records as rr

from optimlab.errors import OptimlabError
from optimlab.lab.report import analyse_records, profile, profile_scores
from optimlab.lab.report.runs import Metric, read_run, read_study
from optimlab.lab.report.stats import final_stats, welch
from optimlab.lab.report.targets import default_target, first_reach

INF = math.inf


def test_profile_score_is_one_for_always_fastest_and_zero_for_never_reaching():
    times = {
        "a": {"fast": 10.0, "mid": 25.0, "never": INF},
        "b": {"fast": 3.0, "mid": 3.3, "never": INF},
        "c": {"fast": 100.0, "mid": 1000.0, "never": INF},
    }
    scores = profile_scores(times)
    assert scores["fast"] == 1.0
    assert scores["never"] == 0.0
    # mid: ratios 2.5, 1.1, 10 -> (4 - 2.5)/3, (4 - 1.1)/3, 0, averaged over 3 problems.
    assert scores["mid"] == pytest.approx(((4 - 2.5) + (4 - 1.1)) / 3 / 3)


def test_profile_score_is_the_area_under_rho():
    rng = np.random.default_rng(0)
    times = {
        f"p{i}": {o: float(t) for o, t in zip("abcd", rng.uniform(1, 8, size=4))} for i in range(7)
    }
    times["p3"]["c"] = INF
    taus = np.linspace(1, 4, 60001)
    rho = profile(times, taus.tolist())
    for optimizer, score in profile_scores(times).items():
        y = np.asarray(rho[optimizer])
        area = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(taus))) / 3
        assert score == pytest.approx(area, abs=1e-4)


def test_profile_counts_a_missing_optimizer_as_not_reaching():
    scores = profile_scores({"a": {"x": 1.0, "y": 2.0}, "b": {"x": 1.0}})
    assert scores["y"] == pytest.approx((4 - 2) / 3 / 2)
    assert profile({"a": {"x": 1.0, "y": 2.0}, "b": {"x": 1.0}}, [1.0, 2.0])["y"] == [0.0, 0.5]


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, "3"])
def test_profile_rejects_bad_times(bad):
    with pytest.raises(OptimlabError, match="time to target of 'x' on 'a'"):
        profile_scores({"a": {"x": bad}, "b": {"x": 1.0}})


def test_profile_rejects_bad_tau_max():
    with pytest.raises(OptimlabError, match="tau_max"):
        profile_scores({"a": {"x": 1.0}}, tau_max=1.0)


def _final(value: float, status: str = "completed", seed: int = 0) -> dict:
    return rr.run("quadratic", "sgd", "final", 0.1, seed, value, status=status)


def test_final_stats_use_finished_finite_runs_only():
    records = [_final(v, seed=i) for i, v in enumerate([0.3, 0.1, 0.2])]
    records.append(rr.diverged("quadratic", "sgd", "final", 0.1, 7))
    records.append(rr.failed("quadratic", "sgd", "final", 0.1, 8))
    nan_final = _final(0.5, seed=9)
    nan_final["final"]["val_loss"] = math.nan
    for row in nan_final["history"]:
        row["val_loss"] = math.nan
    records.append(nan_final)
    runs = [read_run(r, i) for i, r in enumerate(records)]
    s = final_stats(runs, Metric("val_loss", "min"))
    assert s.values == pytest.approx((0.3, 0.1, 0.2))
    assert s.mean == pytest.approx(np.mean([0.3, 0.1, 0.2]))
    assert s.std == pytest.approx(np.std([0.3, 0.1, 0.2], ddof=1))
    assert s.best == pytest.approx(0.1)
    assert (s.runs, s.diverged, s.failed) == (6, 2, 1)


def test_single_seed_has_no_spread_and_no_welch():
    a = final_stats([read_run(_final(0.2), 0)], Metric("val_loss", "min"))
    b = final_stats([read_run(_final(0.3, seed=1), 1), read_run(_final(0.4, seed=2), 2)], a.metric)
    assert math.isnan(a.std) and a.mean == pytest.approx(0.2)
    assert welch(a, b) is None


def test_first_reach_skips_non_finite_rows():
    record = _final(0.02)
    rows = record["history"]
    target = rows[4]["val_loss"]  # first met in epoch 5: the loss falls every epoch
    assert all(r["val_loss"] > target for r in rows[:4])
    rows[3]["val_loss"] = -math.inf  # a NaN/inf row must not count as reaching
    rows[2]["val_loss"] = math.nan
    run = read_run(record, 0)
    hit = first_reach(run, Metric("val_loss", "min"), target)
    assert (hit.epoch, hit.time, hit.step) == (rows[4]["epoch"], rows[4]["time"], rows[4]["step"])
    assert first_reach(run, Metric("val_loss", "min"), 0.001) is None


def test_default_target_is_median_of_mean_final_values():
    analysis = analyse_records(rr.records(("fmnist_mlp",)), rr.study(targets={}))
    p = analysis.problems[0]
    means = [float(np.mean(rr.FINALS["fmnist_mlp"][o])) for o in sorted(rr.OPTIMIZERS)]
    assert p.target == pytest.approx(float(np.median(means)))
    assert default_target(p.stats) == p.target
    assert not p.target_from_study
    # The best optimizer's typical seed reaches it: a finite median time.
    assert any(t.reached * 2 > t.runs and math.isfinite(t.time) for t in p.times)


def test_regression_problem_falls_back_to_val_loss():
    analysis = analyse_records(rr.records(("quadratic",)), rr.study())
    assert analysis.problems[0].metric == Metric("val_loss", "min")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"phase": "warmup"}, r"records\[0\]: 'phase'"),
        ({"status": "ok"}, r"records\[0\]: 'status'"),
        ({"problem": ""}, r"records\[0\]: 'problem'"),
        ({"history": "nope"}, r"records\[0\]: 'history'"),
        ({"history": [1]}, r"records\[0\]: 'history'\[0\]"),
        ({"params": [0.1]}, r"records\[0\]: 'params'"),
        ({"seed": 1.5}, r"records\[0\]: 'seed'"),
    ],
)
def test_bad_record_names_the_field(change, message):
    record = {**_final(0.1), **change}
    with pytest.raises(OptimlabError, match=message):
        analyse_records([record], rr.study())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "maximize"}, "'mode'"),
        ({"metric": None}, "'metric'"),
        ({"targets": {"quadratic": "high"}}, r"study\['targets'\]\['quadratic'\]"),
        ({"schedules": {"sgd": "cosine"}}, r"study\['schedules'\]\['sgd'\]"),
        ({"seeds": 0}, "'seeds'"),
    ],
)
def test_bad_study_names_the_field(change, message):
    with pytest.raises(OptimlabError, match=message):
        read_study(rr.study(**change))


def test_empty_or_non_list_records_raise():
    with pytest.raises(OptimlabError, match="records is empty"):
        analyse_records([], rr.study())
    with pytest.raises(OptimlabError, match="records must be a list"):
        analyse_records({"problem": "x"}, rr.study())
