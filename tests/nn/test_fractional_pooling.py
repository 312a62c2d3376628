"""Fractional max pooling (Graham 2014): Graham's random and pseudorandom sequences, the
pooling over the regions they cut, and what torch.nn.FractionalMaxPool2d does instead."""

import math

import pytest
import torch

from optimlab.errors import OptimlabError
from optimlab.nn.pooling import FractionalMaxPool2d, boundaries, fractional_max_pool2d


def loop_pool(x, rows, cols, overlapping):
    """The regions [a_{i-1}, a_i - 1] x [b_{j-1}, b_j - 1] (disjoint) or
    [a_{i-1}, a_i] x [b_{j-1}, b_j] (overlapping), one max per region, by loops."""
    extra = 1 if overlapping else 0
    n, c = x.shape[:2]
    out = torch.empty(n, c, rows.shape[1] - 1, cols.shape[1] - 1, dtype=x.dtype)
    for k in range(n):
        for i in range(rows.shape[1] - 1):
            r0, r1 = int(rows[k, i]), int(rows[k, i + 1]) + extra
            for j in range(cols.shape[1] - 1):
                c0, c1 = int(cols[k, j]), int(cols[k, j + 1]) + extra
                out[k, :, i, j] = x[k, :, r0:r1, c0:c1].amax(dim=(1, 2))
    return out


@pytest.mark.parametrize("sequence", ["pseudorandom", "random"])
@pytest.mark.parametrize("overlapping", [False, True])
def test_sequences_start_at_0_end_at_the_edge_with_steps_of_1_or_2(sequence, overlapping):
    gen = torch.Generator().manual_seed(0)
    a = boundaries(32, 22, 50, sequence=sequence, overlapping=overlapping, generator=gen)
    end = 31 if overlapping else 32
    assert a.shape == (50, 23)
    assert (a[:, 0] == 0).all() and (a[:, -1] == end).all()
    steps = a.diff(dim=1)
    assert set(steps.unique().tolist()) == {1, 2}
    assert ((steps == 2).sum(1) == end - 22).all()  # as many 2s as the length needs
    assert len({tuple(row) for row in a.tolist()}) > 10  # the draws differ


def test_pseudorandom_is_grahams_ceiling_formula():
    u = torch.tensor([0.0, 0.25, 0.5, 0.999])
    a = boundaries(25, 18, 4, sequence="pseudorandom", overlapping=False, u=u)
    alpha = 25 / 18
    for k, uk in enumerate(u.tolist()):
        # a_i = ceil(alpha (i + u)), shifted to start at 0
        expected = [math.ceil(alpha * (i + uk)) - math.ceil(alpha * uk) for i in range(19)]
        assert a[k].tolist() == expected


def test_random_sequence_puts_the_2s_anywhere_with_equal_chance():
    gen = torch.Generator().manual_seed(1)
    a = boundaries(32, 22, 4000, sequence="random", overlapping=False, generator=gen)
    share = (a.diff(dim=1) == 2).double().mean(0)  # 10 of the 22 steps are 2s
    assert torch.allclose(share, torch.full_like(share, 10 / 22), atol=0.04)


@pytest.mark.parametrize("overlapping", [False, True])
def test_pooling_is_the_max_over_the_regions(overlapping):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, 13, 11, generator=gen, dtype=torch.float64)
    rows = boundaries(13, 9, 3, sequence="random", overlapping=overlapping, generator=gen)
    cols = boundaries(11, 7, 3, sequence="pseudorandom", overlapping=overlapping, generator=gen)
    got = fractional_max_pool2d(x, rows, cols, overlapping=overlapping)
    assert torch.equal(got, loop_pool(x, rows, cols, overlapping))


@pytest.mark.parametrize("sequence", ["pseudorandom", "random", "torch"])
def test_output_ratio_one_over_root_two(sequence):
    torch.manual_seed(0)
    pool = FractionalMaxPool2d(sequence=sequence)
    assert pool.output_ratio == pytest.approx(1 / math.sqrt(2))
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    y = pool(x)
    assert y.shape == (2, 3, 22, 22)  # int(32 / sqrt 2); area ratio ~ 1/2
    y.sum().backward()
    assert int((x.grad != 0).sum()) >= 22 * 22 * 3 * 2 * 0.5  # gradient reaches the maxima
    assert FractionalMaxPool2d(sequence=sequence)(torch.randn(1, 1, 25, 45)).shape == (
        1, 1, 17, 31,
    )  # fmt: skip
    assert FractionalMaxPool2d(output_size=(20, 17), sequence=sequence)(x).shape == (2, 3, 20, 17)


def torch_starts(n_in, n_out, kernel, u):
    """torch's rule (aten's fractional_max_pool2d_generate_intervals), transcribed:
    fixed windows starting at floor(alpha (i + u)) - floor(alpha u), the last at n - k."""
    alpha = (n_in - kernel) / (n_out - 1)
    return [int((i + u) * alpha) - int(u * alpha) for i in range(n_out - 1)] + [n_in - kernel]


def test_what_torch_implements():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 10, 10, generator=gen, dtype=torch.float64)
    samples = torch.tensor([[[0.3, 0.7], [0.1, 0.9]]], dtype=torch.float64)  # (N, C, 2)
    pool = torch.nn.FractionalMaxPool2d(2, output_size=(7, 6), _random_samples=samples)
    got = pool(x)
    expected = torch.empty_like(got)
    for ch in range(2):
        u_w, u_h = samples[0, ch].tolist()  # one u per channel; [0] is the width's
        for i, r in enumerate(torch_starts(10, 7, 2, u_h)):
            for j, c in enumerate(torch_starts(10, 6, 2, u_w)):
                expected[0, ch, i, j] = x[0, ch, r : r + 2, c : c + 2].max()
    assert torch.equal(got, expected)
    # Graham's regions are the intervals between the a_i, shared by the channels; with
    # torch's starts as boundaries they are not torch's fixed 2x2 windows
    rows = torch.tensor([torch_starts(10, 7, 2, 0.7) + [10]])
    cols = torch.tensor([torch_starts(10, 6, 2, 0.3) + [10]])
    graham = fractional_max_pool2d(x, rows, cols, overlapping=False)
    assert not torch.equal(graham[0, 0], got[0, 0])


def test_bad_arguments():
    with pytest.raises(OptimlabError, match="output_ratio"):
        FractionalMaxPool2d(0.4)
    with pytest.raises(OptimlabError, match="unknown sequence"):
        FractionalMaxPool2d(sequence="uniform")
    with pytest.raises(OptimlabError, match="increments of 1 or 2"):
        boundaries(32, 12, 1)
    with pytest.raises(OptimlabError, match=r"\(N, C, H, W\)"):
        FractionalMaxPool2d()(torch.randn(3, 32, 32))
