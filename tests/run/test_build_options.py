"""The builder's run options that the benchmarks and examples use: torch.optim's class of
a rule, a compiled model, training without evaluation, and a model of one's own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.run import RunConfig, build_run

SMALL = {"problem": "logreg_digits", "threads": 1}


def _weights(run) -> list[torch.Tensor]:
    return [p.detach().clone() for p in run.problem.model.parameters()]


def test_torch_implementation_runs_torch_class_and_follows_the_same_rule():
    config = RunConfig(**SMALL, optimizer="momentum", lr=0.1, schedule="cosine", steps=30,
                       dtype="float64")  # fmt: skip
    ours, ref = build_run(config), build_run(config.replace(implementation="torch"))
    assert type(ref.optimizer) is torch.optim.SGD
    assert type(ours.optimizer) is not torch.optim.SGD
    assert ref.optimizer.param_groups[0]["momentum"] == 0.9  # the registry name's default
    ours.fit(), ref.fit()
    assert ref.trainer.step == ours.trainer.step == 30
    for a, b in zip(_weights(ours), _weights(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # a changed setting, so a changed run: earlier runs' keys do not hold it by default
    assert "implementation" not in config.identity()
    assert config.replace(implementation="torch").key() != config.key()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"implementation": "jax"}, "invalid implementation 'jax'; valid: optimlab, torch"),
        (
            {"optimizer": "nag_c", "implementation": "torch"},
            "optimizer 'nag_c' has no torch.optim class; valid optimizers with "
            "implementation torch: adadelta, .*adagrad, adam, .*sgd",
        ),
        ({"implementation": "torch", "fast": True}, "fast is not available with implementation"),
        (
            {"implementation": "torch", "hp": {"convention": "velocity"}},
            "argument 'convention' of optimizer 'momentum' has no counterpart in "
            "torch.optim.SGD; valid: ",
        ),
        (
            {"problem": "digits_mlp", "compile": True, "parallel": "sync", "nproc": 2},
            "compile is not available with parallel sync; valid: a run with parallel none",
        ),
    ],
)
def test_bad_options_name_the_setting_and_what_is_valid(change, message):
    with pytest.raises(OptimlabError, match=message):
        RunConfig(**{**SMALL, "optimizer": "momentum", **change})


def test_no_eval_trains_the_same_weights_and_records_no_evaluation():
    config = RunConfig(problem="digits_mlp", optimizer="sgd", epochs=1, threads=1)
    full, bare = build_run(config), build_run(config.replace(no_eval=True))
    a, b = full.fit(), bare.fit()
    assert "val_accuracy" in a.final and "test_accuracy" in a.final
    assert not [k for k in b.final if k.startswith(("val_", "test_"))]
    assert bare.trainer.monitor == "loss" and full.trainer.monitor == "val_loss"
    assert b.final["loss"] == a.final["loss"]
    for x, y in zip(_weights(full), _weights(bare), strict=True):
        assert torch.equal(x, y)
    assert bare.problem.splits.test is not None  # the run's problem keeps its splits


def test_compile_trains_the_compiled_model_and_saves_the_plain_one(tmp_path):
    config = RunConfig(**SMALL, optimizer="sgd", lr=0.1, steps=5, compile=True,
                       out=str(tmp_path / "compiled"))  # fmt: skip
    run = build_run(config)
    assert run.trainer.train_module is not run.problem.model
    assert run.trainer.train_module._orig_mod is run.problem.model
    compiled = run.fit()
    plain = build_run(config.replace(compile=False, out=str(tmp_path / "plain"))).fit()
    assert compiled.final["loss"] == pytest.approx(plain.final["loss"], rel=1e-5)
    saved = torch.load(tmp_path / "compiled" / "checkpoints" / "last.pt", weights_only=False)
    assert set(saved["model"]) == set(run.problem.model.state_dict())  # no "_orig_mod." keys
    assert config.replace(compile=False).key() != config.key()


def test_a_model_of_ones_own_trains_on_the_problem_and_guards_its_directory(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    config = RunConfig(problem="digits_mlp", optimizer="sgd", lr=0.1, epochs=1, threads=1,
                       out=str(tmp_path))  # fmt: skip
    run = build_run(config, model=model)
    assert run.problem.model is model
    assert run.fit().final["val_accuracy"] > 0.5
    assert "model" not in config.identity()  # the architecture is the caller's, not a setting
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    with pytest.raises(OptimlabError, match=r"different settings \(model\)"):
        build_run(config, model=other).fit()
