"""Batch norm at small batch sizes: exact population statistics, the two fixes of the
lecture (keep batch statistics at test time; freeze them and fine-tune), the gaps."""

import itertools

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.nn import bn_stats
from optimlab.nn.norm import BatchRenorm


def mlp(renorm: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    second = BatchRenorm(7, rmax=1.0, dmax=0.0) if renorm else nn.BatchNorm1d(7)
    model = nn.Sequential(
        nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 7), second, nn.ReLU(),
        nn.Linear(7, 3),
    ).double()  # fmt: skip
    with torch.no_grad():  # affine parameters away from (1, 0), so they matter
        for m in (model[1], model[4]):
            m.weight.uniform_(0.5, 2.0)
            m.bias.uniform_(-1.0, 1.0)
    return model


def data(n: int = 37) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 5, generator=g, dtype=torch.float64) * 3 + 2


def test_population_statistics_are_the_data_sets_mean_and_variance():
    model, x = nn.Sequential(nn.BatchNorm1d(5)).double(), data()
    ((mean, var),) = bn_stats.population_statistics(model, x, batch_size=8)  # 37 = 4*8 + 5
    torch.testing.assert_close(model[0].running_mean, x.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(model[0].running_var, x.var(0, unbiased=False), rtol=0, atol=1e-12)
    bn_stats.population_statistics(model, x, batch_size=8, unbiased=True)
    torch.testing.assert_close(model[0].running_var, x.var(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(mean, x.mean(0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("renorm", [False, True])
def test_after_population_statistics_eval_equals_training_on_the_whole_set(renorm):
    # Layer 2's statistics must be those of its inputs with layer 1 already fixed: a
    # single pass with batch statistics would not give this equality.
    model, x = mlp(renorm), data()
    bn_stats.population_statistics(model, x, batch_size=10)
    assert model.training  # the mode is restored
    got = model.eval()(x)
    expected = model.train()(x)  # (this moves the running statistics; measured last)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_keep_batch_statistics_evaluates_with_the_batch_and_changes_nothing():
    model, x = mlp(), data()
    bn_stats.population_statistics(model, x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_out = model.train()(x[:4])
    for k, v in before.items():  # put back what that training forward moved
        model.state_dict()[k].copy_(v)
    model.eval()
    running_out = model(x[:4])
    with bn_stats.keep_batch_statistics(model):
        kept = model(x[:4])
        assert not model.training and not model[1].training
    torch.testing.assert_close(kept, train_out, rtol=0, atol=0)
    assert not torch.allclose(kept, running_out)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    torch.testing.assert_close(model(x[:4]), running_out, rtol=0, atol=0)  # removed
    with bn_stats.keep_batch_statistics(model):  # one example: the running statistics
        torch.testing.assert_close(model(x[:1]), running_out[:1], rtol=0, atol=0)


def test_frozen_statistics_train_with_the_running_ones_and_keep_them():
    model, x = mlp(), data()
    bn_stats.population_statistics(model, x)
    eval_out = model.eval()(x[:3])
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    handle = bn_stats.freeze_batch_statistics(model)
    model.train()
    out = model(x[:3])
    torch.testing.assert_close(out, eval_out, rtol=0, atol=0)
    out.sum().backward()  # gradients flow through the fixed normalization
    assert model[1].weight.grad is not None and model[0].weight.grad.abs().sum() > 0
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k
    assert model.training and model[1].training
    handle.remove()
    assert not torch.allclose(model(x[:3]), eval_out)


def test_at_batch_two_batch_norm_keeps_only_the_sign_of_the_difference():
    # The extreme of the mismatch: with two examples (eps -> 0) every normalized value is
    # +-1, whatever the inputs; a test on one image sees its real value instead.
    bn = nn.BatchNorm1d(5, eps=1e-30, affine=False).double().train()
    x = data(2)
    out = bn(x)
    torch.testing.assert_close(out.abs(), torch.ones_like(out), rtol=0, atol=1e-12)
    torch.testing.assert_close(out[0].sign(), (x[0] - x[1]).sign(), rtol=0, atol=0)


def test_batch_variance_averages_to_m_minus_one_over_m_of_the_population_variance():
    # Averaged over all 720 orders of N = 6 examples (each split into pairs equally
    # often) the variance ratio is exactly E[var_B] / var = (m - 1) / m * N / (N - 1).
    model, x = nn.Sequential(nn.BatchNorm1d(5)).double(), data(6)
    bn_stats.population_statistics(model, x)
    ratios = [
        bn_stats.statistics_gap(model, x[list(perm)], batch_size=2)[0].var_ratio
        for perm in itertools.permutations(range(6))
    ]
    assert sum(ratios) / len(ratios) == pytest.approx(0.5 * 6 / 5, rel=1e-12)


def test_mode_gap_vanishes_for_one_full_batch_and_not_for_batches_of_two():
    model, x = mlp(), data(36)
    y = torch.arange(36) % 3
    bn_stats.population_statistics(model, x)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    full = bn_stats.mode_gap(model, x, y, batch_size=36)
    assert full.train_mode_loss == pytest.approx(full.eval_mode_loss, rel=1e-12)
    assert full.train_mode_accuracy == full.eval_mode_accuracy
    small = bn_stats.mode_gap(model, x, y, batch_size=2)
    assert small.eval_mode_loss == pytest.approx(full.eval_mode_loss, rel=1e-12)
    assert abs(small.train_mode_loss - small.eval_mode_loss) > 1e-3
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k


def test_statistics_gap_shrinks_with_the_batch():
    model, x = mlp(), data(400)
    bn_stats.population_statistics(model, x)
    g2, g32 = (bn_stats.statistics_gap(model, x, b)[0] for b in (2, 32))
    assert g2.mean_gap > 2 * g32.mean_gap
    assert g2.var_ratio < g32.var_ratio < 1.0


def test_bad_input_is_one_line_error():
    with pytest.raises(OptimlabError, match="no batch norm"):
        bn_stats.population_statistics(nn.Linear(2, 2), torch.zeros(3, 2))
    with pytest.raises(OptimlabError, match="batch_size"):
        bn_stats.statistics_gap(mlp(), data(), batch_size=1)
    with pytest.raises(OptimlabError, match="exceeds"):
        bn_stats.mode_gap(mlp(), data(5), torch.zeros(5, dtype=torch.long), batch_size=6)


def test_at_batch_one_training_mode_output_is_the_shift_whatever_the_input():
    # x - mu_B = 0 for a single example: training-mode batch norm outputs beta for every
    # input (batch renorm at rmax = 1, dmax = 0 is batch norm; torch's BatchNorm1d refuses
    # batch 1), so in training mode the network predicts one class for every example.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), BatchRenorm(6, rmax=1.0, dmax=0.0), nn.ReLU(),
                          nn.Linear(6, 3)).double()  # fmt: skip
    with torch.no_grad():
        model[1].bias.copy_(torch.linspace(-1.0, 2.0, 6))
    x = data(40)
    y = torch.arange(40) % 3
    bn_stats.population_statistics(model, x)
    constant = int(model[2:](model[1].bias.detach()[None]).argmax())
    gap = bn_stats.mode_gap(model, x, y, batch_size=1)
    assert gap.train_mode_accuracy == float((y == constant).double().mean())
    assert gap.eval_mode_accuracy != gap.train_mode_accuracy
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4).train()(torch.ones(1, 4))
