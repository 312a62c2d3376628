"""The batch-norm fixes as regularization options: batch statistics at evaluation, and
freezing at the training set's statistics for the rest of training."""

import dataclasses

import pytest
import torch

from optimlab import problems
from optimlab.data.splits import Split
from optimlab.errors import OptimlabError
from optimlab.nn.bn_stats import batch_norms
from optimlab.regularize import options
from optimlab.train.callback import Callback
from optimlab.train.trainer import fit


def bn_problem():
    problem = problems.build("digits_mlp", seed=0, hidden=(16,), batch_norm=True)
    train = problem.splits.train
    problem.splits = dataclasses.replace(problem.splits, train=Split(train.x[:64], train.y[:64]))
    return problem


def test_bn_finetune_freezes_population_statistics_after_the_given_fraction():
    problem = bn_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.05)
    problem, kw = options.apply({"bn_finetune": 0.5}, problem, {"seed": 0}, optimizer=opt,
                                total_steps=32)  # fmt: skip
    norm = batch_norms(problem.model)[0]
    seen, at_switch = [], []

    class Record(Callback):
        order = 100  # after the switch of the same step

        def on_batch_end(self, step, logs):
            seen.append(norm.running_mean.clone())
            if step == 16:  # the training set's mean at the switch, in float64
                with torch.no_grad():
                    at_switch.append(problem.model[:2](problem.splits.train.x).double().mean(0))

    kw["callbacks"].append(Record())
    fit(problem, opt, epochs=2, batch_size=4, **kw)  # 16 steps an epoch: switch after 16
    assert len(seen) == 32
    assert not torch.equal(seen[13], seen[14])  # moving before the switch
    frozen = seen[15]  # after step 16
    assert all(torch.equal(s, frozen) for s in seen[15:])  # fixed afterwards
    torch.testing.assert_close(frozen.double(), at_switch[0], rtol=0, atol=1e-5)


def test_bn_test_mode_batch_evaluates_with_batch_statistics():
    problem = bn_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.05)
    problem, kw = options.apply({"bn_test_mode": "batch"}, problem, {"seed": 0})
    fit(problem, opt, epochs=1, batch_size=4, **kw)
    model = problem.model.eval()
    xt = problem.splits.test.x[:8]
    buffers = [b.clone() for b in model.buffers()]
    kept = model(xt)
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    plain = torch.nn.functional.batch_norm
    z = model[:2](xt)
    expected = model[3:](plain(z, None, None, model[2].weight, model[2].bias, training=True))
    torch.testing.assert_close(kept, expected)


def test_bad_bn_options():
    with pytest.raises(OptimlabError, match="invalid bn_test_mode 'test'; valid: running, batch"):
        options.validate({"bn_test_mode": "test"})
    with pytest.raises(OptimlabError, match="bn_finetune"):
        options.validate({"bn_finetune": 1.0})
    plain = problems.build("digits_mlp", seed=0)
    with pytest.raises(OptimlabError, match="need a model with batch norm"):
        options.apply({"bn_test_mode": "batch"}, plain, {}, total_steps=10)


def test_run_settings_reach_the_fixes(tmp_path, capsys):
    from torch import nn

    from optimlab.cli import main
    from optimlab.run import RunConfig, build_run

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Linear(16, 10))  # fmt: skip
    config = RunConfig(problem="digits_mlp", optimizer="sgd", epochs=2, batch_size=64,
                       regularize={"bn_finetune": 0.5, "bn_test_mode": "batch"})  # fmt: skip
    run = build_run(config, model=model)
    run.fit()
    steps = run.trainer.step
    assert steps > 4
    # Batch statistics were tracked up to the switch and never after it.
    assert int(model[2].num_batches_tracked) == max(1, int(0.5 * steps))
    base = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--quiet"]
    assert main([*base, "--bn-test-mode", "batch"]) != 0
    assert "need a model with batch norm; 'digits_mlp' has none" in capsys.readouterr().err
    assert main([*base, "--bn-test-mode", "test"]) != 0
    assert "invalid bn_test_mode 'test'; valid: running, batch" in capsys.readouterr().err


def test_a_resumed_fine_tuning_hooks_the_checkpointed_statistics_without_recomputing():
    from types import SimpleNamespace

    from optimlab.regularize.bn_fixes import FineTuneFrozen

    problem = bn_problem()
    norm = batch_norms(problem.model)[0]
    with torch.no_grad():
        norm.running_mean.fill_(0.25)  # as a checkpoint would restore them
    callback = FineTuneFrozen(5, problem.splits.train.x)
    callback.set_trainer(SimpleNamespace(model=problem.model))
    callback.load_state_dict({"frozen": True})
    assert callback.state_dict() == {"frozen": True}
    assert torch.equal(norm.running_mean, torch.full((16,), 0.25))  # not recomputed
    problem.model.train()
    x = problem.splits.train.x[:4]
    out = problem.model(x)
    assert torch.equal(out, problem.model.eval()(x))  # frozen: training uses the running ones
