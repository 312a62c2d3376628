"""``batch_repeats``: every batch fed for K consecutive steps, in the trainer, the run
configuration, the step count and the command line."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from train_toys import make_problem, without_time

from optimlab.cli import main
from optimlab.data import BatchLoader
from optimlab.errors import OptimlabError
from optimlab.run import RunConfig, build_run
from optimlab.run.build import total_steps
from optimlab.train import Callback, Trainer, fit


class Recorder(nn.Module):
    """The model, keeping every training input it is given."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.clone())
        return self.model(x)


class Crash(Exception):
    pass


class CrashAt(Callback):
    order = 200  # after the step checkpoint

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_batch_end(self, step, logs):
        if step == self.step:
            raise Crash


def noisy(x, y, step):
    """A transform seeded by the step, as augmentations are."""
    gen = torch.Generator().manual_seed(step)
    return x + 0.1 * torch.randn(x.shape, generator=gen), y


def recorded_run(k, epochs=2, transform=None, **kwargs):
    problem = make_problem()
    problem.model = Recorder(problem.model)
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    result = fit(problem, opt, epochs=epochs, batch_size=40, batch_repeats=k,
                 batch_transform=transform, **kwargs)  # fmt: skip
    return problem, result


def test_each_batch_is_fed_k_times_in_a_row_in_the_loaders_order():
    k = 3
    problem, result = recorded_run(k)
    x, y = problem.splits.train.x, problem.splits.train.y
    loader = BatchLoader(x, y, 40, order="random", seed=0)
    expected = [xb for epoch in range(2) for xb, _ in loader.epoch(epoch) for _ in range(k)]
    seen = problem.model.seen
    assert len(seen) == len(expected) == 2 * math.ceil(len(x) / 40) * k
    assert all(torch.equal(a, b) for a, b in zip(seen, expected, strict=True))
    assert [r["step"] for r in result.history] == [len(seen) // 2, len(seen)]
    assert not torch.equal(seen[0], seen[k])  # consecutive batches do differ


def test_a_repeated_batch_is_transformed_once_and_a_resumed_run_matches(tmp_path):
    k = 3
    straight, ref = recorded_run(k, transform=noisy)
    seen = straight.model.seen
    for i in range(0, len(seen), k):
        assert all(torch.equal(seen[i], seen[i + j]) for j in range(k))
    # killed after step 5: the second batch has been fed twice of three times
    with pytest.raises(Crash):
        recorded_run(k, transform=noisy, out_dir=tmp_path, checkpoint_every=1,
                     callbacks=[CrashAt(5)])  # fmt: skip
    resumed, result = recorded_run(k, transform=noisy, out_dir=tmp_path, checkpoint_every=1)
    assert len(resumed.model.seen) == len(seen) - 5
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.seen, seen[5:], strict=True))
    assert without_time(result.history) == without_time(ref.history)
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, straight.model.state_dict()[name]), name


def test_total_steps_counts_the_repeats():
    config = RunConfig(problem="logreg_digits", optimizer="sgd", epochs=2, batch_size=100,
                       batch_repeats=3, threads=1)  # fmt: skip
    run = build_run(config)
    n = len(run.problem.splits.train.x)
    expected = 2 * math.ceil(n / 100) * 3
    assert total_steps(config, run.problem, 100) == expected
    assert run.trainer.steps_in_epoch(0) == expected // 2
    assert run.fit().final["step"] == expected
    full = config.replace(order="full")  # one full batch, fed 3 times per epoch
    assert total_steps(full, run.problem, 100) == 2 * 3


def test_the_default_keeps_the_identity_of_earlier_runs():
    config = RunConfig(problem="logreg_digits", optimizer="sgd")
    assert "batch_repeats" not in config.identity()
    assert config.replace(batch_repeats=2).identity()["batch_repeats"] == 2


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"batch_repeats": 0}, r"invalid batch_repeats: 0"),
        ({"batch_repeats": 2, "grad_accumulation": 2}, r"invalid batch_repeats: 2 with grad_"),
        ({"batch_repeats": 2, "parallel": "sync", "nproc": 2},
         r"batch_repeats is not available with parallel sync"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused(changes, match):
    with pytest.raises(OptimlabError, match=match):
        RunConfig(problem="logreg_digits", optimizer="sgd", **changes)


def test_the_trainer_refuses_repeats_with_accumulation():
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    with pytest.raises(OptimlabError, match=r"invalid batch_repeats: 2; repeating a batch"):
        Trainer(problem, opt, epochs=1, batch_repeats=2, grad_accumulation=2)
    with pytest.raises(OptimlabError, match=r"invalid batch_repeats: 0"):
        Trainer(problem, opt, epochs=1, batch_repeats=0)


def test_command_line_option_and_toml_key(tmp_path, capsys):
    n = len(build_run(RunConfig(problem="logreg_digits", optimizer="sgd")).problem.splits.train.x)
    argv = ["train", "--problem", "logreg_digits", "--optimizer", "lbfgs", "--batch-size",
            "256", "--batch-repeats", "4", "--hp", "max_iter=1", "--epochs", "1",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert f"completed 1 epoch ({4 * math.ceil(n / 256)} steps)" in capsys.readouterr().out
    toml = tmp_path / "run.toml"
    toml.write_text('problem = "logreg_digits"\noptimizer = "sgd"\nbatch_repeats = 2\n')
    assert main(["train", "--config", str(toml), "--epochs", "1", "--quiet"]) == 0
    assert f"({2 * math.ceil(n / 64)} steps)" in capsys.readouterr().out
