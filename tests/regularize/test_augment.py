"""Batched augmentation: hand-computed tiny cases, identities at zero strength, shapes,
dtypes and labels preserved, seeds reproducible."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.data.augment import (
    Augment,
    ColorJitter,
    PCALighting,
    RandomAffine,
    RandomCrop,
    RandomErasing,
    RandomFlip,
    RandomResizedCrop,
    adjust,
    affine,
    affine_matrices,
    crop_at,
    erase,
    fit_pca_lighting,
    flip,
    pca_lighting,
    step_generator,
)
from optimlab.data.augment_presets import from_spec, image_data_generator, parse_spec
from optimlab.errors import OptimlabError

D = torch.float64
IMG = torch.arange(16.0).view(1, 1, 4, 4)


def _batch(n=6, c=3, h=8, w=10, dtype=torch.float32):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0), dtype=dtype)


def test_flip_by_hand():
    x = torch.cat([IMG, IMG])
    out = flip(x, torch.tensor([True, False]))
    assert torch.equal(out[0, 0, 0], torch.tensor([3.0, 2.0, 1.0, 0.0]))
    assert torch.equal(out[1], IMG[0])
    v = flip(IMG, torch.tensor([True]), dim=-2)
    assert torch.equal(v[0, 0, :, 0], torch.tensor([12.0, 8.0, 4.0, 0.0]))


def test_crop_by_hand():
    out = crop_at(IMG, 1, torch.tensor([0]), torch.tensor([2]))
    expected = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 0.0], [5.0, 6.0, 7.0, 0.0], [9.0, 10.0, 11.0, 0.0]]
    )
    assert torch.equal(out[0, 0], expected)
    # centre offset = identity; nearest fill repeats the edge
    assert torch.equal(crop_at(IMG, 2, torch.tensor([2]), torch.tensor([2])), IMG)
    edge = crop_at(IMG, 1, torch.tensor([0]), torch.tensor([1]), fill_mode="nearest")
    assert torch.equal(edge[0, 0, 0], IMG[0, 0, 0])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotation_multiple_of_90_matches_rot90(k):
    m = affine_matrices(1, angle=torch.tensor([90.0 * k], dtype=D))
    out = affine(IMG, m, "constant")
    torch.testing.assert_close(out, torch.rot90(IMG, k, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_shift_by_one_pixel():
    m = affine_matrices(1, shift=(torch.tensor([1.0], dtype=D), torch.tensor([0.0], dtype=D)))
    out = affine(IMG, m, "constant", cval=-1.0)
    assert torch.equal(out[0, 0, :, 1:], IMG[0, 0, :, :3])
    assert torch.equal(out[0, 0, :, 0], torch.full((4,), -1.0))


def test_identity_at_zero_strength():
    x = _batch()
    gen = torch.Generator().manual_seed(1)
    assert torch.equal(RandomFlip(0.0)(x, gen), x)
    assert torch.equal(RandomCrop(0)(x, gen), x)
    assert torch.equal(RandomAffine()(x, gen), x)
    torch.testing.assert_close(affine(x, affine_matrices(6), "constant"), x)
    torch.testing.assert_close(RandomResizedCrop(scale=(1, 1), ratio=(1, 1))(x, gen), x)
    torch.testing.assert_close(ColorJitter()(x, gen), x)
    assert torch.equal(RandomErasing(0.0)(x, gen), x)
    ev, vec = fit_pca_lighting(x)
    assert torch.equal(PCALighting(ev, vec, std=0.0)(x, gen), x)


def test_colour_by_hand():
    x = torch.tensor([[[[0.2, 0.6]], [[0.4, 0.4]], [[1.0, 0.0]]]])  # (1, 3, 1, 2)
    torch.testing.assert_close(adjust(x, brightness=torch.tensor([2.0])), 2 * x)
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    out = adjust(x, saturation=torch.tensor([0.0]))
    torch.testing.assert_close(out, gray[:, None].expand_as(x))
    out = adjust(x, contrast=torch.tensor([0.0]))
    torch.testing.assert_close(out, torch.full_like(x, gray.mean().item()))


def test_pca_lighting_by_hand():
    g = torch.Generator().manual_seed(0)
    # colours along one direction: one nonzero eigenvalue, eigenvector +-(1, 2, 2)/3
    t = torch.randn(200, generator=g, dtype=D)
    direction = torch.tensor([1.0, 2.0, 2.0], dtype=D) / 3
    x = (t[:, None] * direction).view(200, 3, 1, 1).repeat(1, 1, 2, 2)
    values, vectors = fit_pca_lighting(x)
    torch.testing.assert_close(values[:2], torch.zeros(2, dtype=D), atol=1e-10, rtol=0)
    # 4 pixels per image: the sample variance of the 800 pixel values
    torch.testing.assert_close(values[2], t.repeat_interleave(4).var(), rtol=1e-9, atol=0)
    assert abs(abs(float(vectors[:, 2] @ direction)) - 1.0) < 1e-9
    alpha = torch.tensor([[0.0, 0.0, 0.5]], dtype=D)
    out = pca_lighting(x[:1], alpha, values, vectors)
    shift = 0.5 * values[2] * vectors[:, 2]
    torch.testing.assert_close(out - x[:1], shift.view(1, 3, 1, 1).expand(1, 3, 2, 2))


def test_erase_by_hand():
    out = erase(
        IMG, torch.tensor([True]), torch.tensor([1]), torch.tensor([2]), torch.tensor([2]),
        torch.tensor([1]), value=-5.0,
    )  # fmt: skip
    expected = IMG.clone()
    expected[0, 0, 1:3, 2] = -5.0
    assert torch.equal(out, expected)


OPS = [
    RandomFlip(),
    RandomFlip(dim=-2),
    RandomCrop(2),
    RandomResizedCrop(),
    RandomAffine(20, 0.1, 0.1, 10, 0.2),
    RandomAffine(20, fill_mode="constant", cval=0.5),
    RandomAffine(20, fill_mode="reflect"),
    ColorJitter(0.3, 0.3, 0.3),
    RandomErasing(1.0),
]


@pytest.mark.parametrize("op", OPS, ids=lambda o: type(o).__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_seed(op, dtype):
    x = _batch(dtype=dtype)
    y = torch.arange(6)
    aug = Augment([op], seed=3)
    a, ya = aug(x, y, step=5)
    b, _ = aug(x, y, step=5)
    c, _ = aug(x, y, step=6)
    assert a.shape == x.shape and a.dtype == dtype and torch.equal(ya, y)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(x, _batch(dtype=dtype))  # input untouched


def test_keras_preset_and_spec():
    aug = image_data_generator(
        rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
        zoom_range=0.2, horizontal_flip=True, fill_mode="nearest",
    )  # fmt: skip
    assert [type(o).__name__ for o in aug.ops] == ["RandomAffine", "RandomFlip"]
    assert aug.ops[0].zoom == pytest.approx((0.8, 1.2))
    assert image_data_generator().ops == []
    assert parse_spec("flip,crop:4") == [("flip", 0.5), ("crop", 4.0)]
    names = [type(o).__name__ for o in from_spec("flip,crop:4,rotate:10,erase").ops]
    assert names == ["RandomCrop", "RandomAffine", "RandomFlip", "RandomErasing"]


@pytest.mark.parametrize(
    "spec, match",
    [("flip,blur", "unknown augmentation 'blur'"), ("crop:x", "crop"), ("", "empty"),
     ("crop:1.5", "crop padding"), ("pca", "training images")],
)  # fmt: skip
def test_spec_errors(spec, match):
    with pytest.raises(OptimlabError, match=match):
        from_spec(spec)


def test_bad_arguments():
    with pytest.raises(OptimlabError, match="fill_mode"):
        RandomAffine(10, fill_mode="wrap")
    with pytest.raises(OptimlabError, match="flip probability"):
        RandomFlip(1.5)
    with pytest.raises(OptimlabError, match="float images"):
        Augment([RandomFlip()])(torch.zeros(2, 4, 4), torch.zeros(2), 0)


def test_flip_probability_monte_carlo():
    x = torch.arange(4.0).view(1, 1, 1, 4).repeat(4000, 1, 1, 1)
    out = RandomFlip(0.3)(x, step_generator(0, 0))
    frac = (out[:, 0, 0, 0] == 3.0).float().mean().item()
    assert abs(frac - 0.3) <= 5 * math.sqrt(0.3 * 0.7 / 4000)
