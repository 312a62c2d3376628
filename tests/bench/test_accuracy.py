"""``optimlab bench accuracy`` on the small digits problem: records, ratios, budgets and
errors. No timing goals here; those live in the benchmark's output."""

from __future__ import annotations

import pytest

from optimlab.bench import accuracy as ba
from optimlab.cli import main
from optimlab.errors import OptimlabError


@pytest.fixture(scope="module")
def low_target() -> dict:
    return ba.time_to_accuracy(
        "digits_mlp", target=0.8, contenders=["torch", "eager"], eval_every=5
    )


def test_each_contender_reaches_a_low_target(low_target):
    records = {r.contender: r for r in low_target["records"]}
    assert set(records) == {"torch", "eager"}
    for r in records.values():
        assert r.reached and r.status == "reached"
        assert r.seconds > 0 and r.steps > 0 and r.steps % 5 == 0
        assert r.accuracy >= 0.8 and r.best_accuracy >= r.accuracy
        assert r.seconds <= r.total_seconds
        assert r.evals == r.steps // 5  # it stopped at the first evaluation over the target
        assert r.epochs == pytest.approx(r.steps / 41)  # 1294 images, batch 32: 41 steps
        assert r.optimizer_compile_seconds is None
        assert len(r.load_before) == 3 and len(r.load_after) == 3
    # same weights, data order and rule: the same trajectory to the same step
    assert records["torch"].checksum == records["eager"].checksum
    assert records["torch"].steps == records["eager"].steps


def test_summary_ratios_come_from_the_records(low_target):
    records = {r.contender: r for r in low_target["records"]}
    summary = low_target["summary"]
    assert summary["torch"]["ratio_to_torch"] == (1.0, 0.0)
    ratio, spread = summary["eager"]["ratio_to_torch"]
    assert ratio == pytest.approx(records["eager"].seconds / records["torch"].seconds)
    assert spread == 0.0
    assert summary["eager"]["seconds"][0] == records["eager"].seconds
    assert summary["eager"]["reached"] == summary["eager"]["runs"] == 1
    r = records["eager"]
    assert r.epochs_run == r.epochs  # it stopped at the target
    assert summary["eager"]["seconds_per_epoch"][0] == pytest.approx(r.total_seconds / r.epochs)
    table = ba.format_result(low_target)
    assert "one after another" in table and "load average" in table
    assert f"{records['eager'].seconds:.2f}" in table and f"{ratio:.3f}" in table
    # whether subnormals were flushed is part of the result (off in the test process)
    assert low_target["flush_denormal"] is False and "subnormals flushed" not in table
    assert "subnormals flushed" in ba.format_result({**low_target, "flush_denormal": True})


def test_unreachable_target_is_reported_not_raised():
    res = ba.time_to_accuracy(
        "digits_mlp", target=1.0, contenders=["torch"], budget=0.3, eval_every=5
    )
    (r,) = res["records"]
    assert r.status == "time budget" and not r.reached
    assert r.seconds is None and r.steps is None and r.epochs is None
    assert 0.3 <= r.total_seconds < 5.0
    assert 0.0 < r.accuracy < 1.0  # evaluated once more at the end
    assert res["summary"]["torch"]["reached"] == 0
    assert res["summary"]["torch"]["ratio_to_torch"] is None
    assert "not reached" in ba.format_result(res)


def test_epoch_cap_ends_the_run():
    res = ba.time_to_accuracy("digits_mlp", target=1.0, contenders=["torch"], max_epochs=1)
    (r,) = res["records"]
    assert r.status == "epoch budget" and r.evals == 1 and r.seconds is None


def test_fast_path_records_its_compile_time():
    res = ba.time_to_accuracy("digits_mlp", target=0.8, contenders=["fast"], eval_every=5)
    (r,) = res["records"]
    assert r.reached and r.steps > 0
    assert r.optimizer_compile_seconds is not None and r.optimizer_compile_seconds > 0
    if r.compile_seconds is not None:  # torch's own count, which includes the step's
        assert r.compile_seconds > 0
    assert r.seconds > r.optimizer_compile_seconds  # wall time includes compile time
    assert res["summary"]["fast"]["ratio_to_torch"] is None  # torch did not run


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"problem": "cifar10_3c3d"}, ["unknown problem", "fmnist_mlp", "fmnist_2c2d"]),
        ({"target": 1.5}, ["target", "(0, 1]"]),
        ({"target": 0.0}, ["target", "(0, 1]"]),
        ({"contenders": ["torch", "jit"]}, ["unknown contender", "fast+compile", "eager"]),
        ({"contenders": []}, ["no contenders", "torch"]),
        ({"optimizer": "lionn"}, ["unknown optimizer", "adam"]),
        ({"optimizer": "lion"}, ["no torch.optim class", "valid optimizers: sgd", "radam"]),
        ({"optimizer": "muon"}, ["not elementwise", "adam"]),
        ({"budget": 0.0}, ["budget"]),
        ({"eval_every": 0}, ["eval_every"]),
    ],
)
def test_bad_input_names_the_valid_values(kwargs, words):
    kwargs = {"problem": "digits_mlp", **kwargs}
    with pytest.raises(OptimlabError) as err:
        ba.time_to_accuracy(kwargs.pop("problem"), **kwargs)
    for w in words:
        assert w in str(err.value)


def test_entry_checks_every_problem_before_running():
    with pytest.raises(OptimlabError, match="valid problems: both, digits_mlp, fmnist_2c2d"):
        ba.run_accuracy_bench("fmnist_cnn", contenders=["torch", "fast"])
    with pytest.raises(OptimlabError, match="unknown contender 'compiled'"):
        ba.run_accuracy_bench("both", contenders=["torch", "compiled"])


def test_cli_splits_the_contenders_and_reports_a_bad_one(capsys):
    argv = ["bench", "accuracy", "--problem", "both", "--contenders", "torch, compiled"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("optimlab: error: unknown contender 'compiled'")
    assert err.count("\n") == 1
