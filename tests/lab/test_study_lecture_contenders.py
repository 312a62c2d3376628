"""The lectures' late optimizers as lab contenders: Path-SGD (which reads the model) and
Adam then SGD switched at an epoch run as trials of a real study, and the switch at
epoch 1 is the switch after the 41 updates of digits_mlp's first epoch."""

from __future__ import annotations

from optimlab.lab import parse_study
from optimlab.lab.runner import run_study
from optimlab.lab.store import Store

STUDY = """
problems = ["digits_mlp"]
seeds = 1
[budget]
epochs = 2
[protocol]
kind = "fixed"
[[optimizers]]
name = "path_sgd"
[[optimizers]]
name = "adam_then_sgd"
label = "epoch"
params = { switch_epoch = 1, sgd_lr = 0.05 }
[[optimizers]]
name = "adam_then_sgd"
label = "step"
params = { switch_step = 41, sgd_lr = 0.05 }
[[optimizers]]
name = "adam_then_sgd"
label = "step+1"
params = { switch_step = 42, sgd_lr = 0.05 }
"""


def test_path_sgd_and_an_epoch_switch_are_contenders(tmp_path):
    run_study(parse_study(STUDY), tmp_path, report=False, quiet=True)
    by_label = {r["label"]: r for r in Store(f"sqlite:///{tmp_path / 'study.db'}").records()}
    assert {r["status"] for r in by_label.values()} == {"completed"}
    assert by_label["path_sgd"]["final"]["val_accuracy"] > 0.5
    metrics = {k: {m: v for m, v in r["final"].items() if m != "time"} for k, r in by_label.items()}
    assert metrics["epoch"] == metrics["step"]  # losses and accuracies, exactly
    assert metrics["step+1"] != metrics["step"]
