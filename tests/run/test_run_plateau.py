"""``reduce_lr_on_plateau`` as a run setting: Keras' rule on a run whose validation loss
stalls, checked against a transcription of Keras' callback on the recorded history;
exact resume; the command line and file forms; one-line errors."""

from __future__ import annotations

import math

import pytest
from loop_resume import assert_same_run, crashed_and_resumed, fit

from optimlab.cli import build_parser, main
from optimlab.cli.train import config_from_args
from optimlab.errors import OptimlabError
from optimlab.run import RunConfig, build_run, load_toml

PLATEAU = {"patience": 2, "min_delta": 0.01, "factor": 0.5, "cooldown": 1}
# digits_mlp at lr 0.2 stops improving its validation loss by 0.01 after about 5 epochs
CONFIG = RunConfig(problem="digits_mlp", optimizer="sgd", lr=0.2, epochs=14, threads=1,
                   reduce_lr_on_plateau=PLATEAU)  # fmt: skip


def keras_lrs(losses, lr, factor, patience, min_delta, cooldown, min_lr=0.0):
    """The LR of every epoch under Keras' ReduceLROnPlateau (its on_epoch_end, written
    out): ``lr`` in epoch 0, and each epoch's end may lower the next epoch's."""
    best, wait, cooldown_counter, out = math.inf, 0, 0, []
    for current in losses:
        out.append(lr)
        if cooldown_counter > 0:
            cooldown_counter -= 1
            wait = 0
        if current < best - min_delta:
            best, wait = current, 0
        elif cooldown_counter <= 0:
            wait += 1
            if wait >= patience and lr > min_lr:
                lr = max(lr * factor, min_lr)
                cooldown_counter, wait = cooldown, 0
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return fit(CONFIG.replace(out=str(tmp_path_factory.mktemp("whole"))))


def test_the_lr_drops_when_keras_rule_says(uninterrupted):
    history = uninterrupted[0].history
    expected = keras_lrs([h["val_loss"] for h in history], 0.2, **PLATEAU)
    assert [h["lr"] for h in history] == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) >= 3  # at least two reductions, so the rule was exercised
    assert uninterrupted[2].config.identity()["reduce_lr_on_plateau"] == PLATEAU


@pytest.mark.parametrize("crash", [{"epoch": 7}, {"step": 41 * 9 + 5}])
def test_a_resumed_run_continues_exactly(tmp_path, uninterrupted, crash):
    """Crashes while the callback is waiting (epoch 8) and mid-epoch after a reduction."""
    resumed = crashed_and_resumed(CONFIG.replace(out=str(tmp_path)), **crash)
    assert_same_run(resumed, uninterrupted)


def test_on_and_pairs_at_the_command_line_and_a_table_in_a_file(tmp_path):
    parser = build_parser()
    base = ["train", "--problem", "digits_mlp", "--optimizer", "sgd"]
    on = config_from_args(parser.parse_args([*base, "--reduce-lr-on-plateau", "on"]))
    assert on.reduce_lr_on_plateau == {} and on.identity()["reduce_lr_on_plateau"] == {}
    pairs = config_from_args(parser.parse_args([
        *base, "--reduce-lr-on-plateau", "patience=3", "--reduce-lr-on-plateau", "factor=0.5",
    ]))  # fmt: skip
    assert pairs.reduce_lr_on_plateau == {"patience": 3, "factor": 0.5}
    off = config_from_args(parser.parse_args(base))
    assert off.reduce_lr_on_plateau is None and "reduce_lr_on_plateau" not in off.identity()
    path = tmp_path / "run.toml"
    path.write_text('problem = "digits_mlp"\noptimizer = "sgd"\nreduce_lr_on_plateau = {}\n')
    assert RunConfig.from_json(load_toml(path)).reduce_lr_on_plateau == {}
    with pytest.raises(OptimlabError, match="expected key=value or on"):
        config_from_args(parser.parse_args([*base, "--reduce-lr-on-plateau", "yes"]))


def test_on_builds_the_callback_with_keras_defaults_and_the_run_monitor():
    run = build_run(RunConfig(problem="digits_mlp", optimizer="sgd", steps=1, threads=1,
                              reduce_lr_on_plateau={}))  # fmt: skip
    (callback,) = [c for c in run.trainer.callbacks if type(c).__name__ == "ReduceLROnPlateau"]
    assert (callback.monitor, callback.factor, callback.patience, callback.cooldown) == (
        "val_loss", 0.1, 10, 0)  # fmt: skip
    assert callback.improved.min_delta == 1e-4 and callback.min_lr == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reduce_lr_on_plateau": {"patiense": 3}},
         "invalid reduce_lr_on_plateau setting 'patiense'; valid: factor, patience"),
        ({"reduce_lr_on_plateau": {"factor": 2}},
         r"invalid reduce_lr_on_plateau: invalid factor: 2; valid range is \(0, 1\)"),
        ({"reduce_lr_on_plateau": {"patience": "3"}},
         "invalid reduce_lr_on_plateau patience: '3'; expected a whole number"),
        ({"reduce_lr_on_plateau": {}, "schedule": "cosine"},
         "reduce_lr_on_plateau is not available with a schedule: it writes the LR every step "
         "and would undo each reduction; valid: one or the other"),
        ({"reduce_lr_on_plateau": {}, "parallel": "hogwild", "nproc": 2},
         "reduce_lr_on_plateau is not available with parallel hogwild; valid: parallel none, "
         "sync or local_sgd"),
        ({"reduce_lr_on_plateau": {}, "regularize": {"snapshots": 2}},
         "not available with snapshots: their cyclic schedule writes"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(OptimlabError, match=message) as err:
        RunConfig(problem="digits_mlp", optimizer="sgd", **change)
    assert "\n" not in str(err.value)


def test_a_monitor_the_run_does_not_log_is_refused(capsys):
    argv = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--steps", "1",
            "--reduce-lr-on-plateau", "monitor=val_acc", "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        "optimlab: error: invalid reduce_lr_on_plateau monitor 'val_acc'; valid: "
        "loss, accuracy, val_loss, val_accuracy, test_loss, test_accuracy\n"
    )
