"""ResNet scale augmentation, multi-scale ten-crop views and radial lens distortion:
against F.interpolate and slicing, and exact geometric facts."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from optimlab.data.augment import step_generator
from optimlab.data.augment_presets import from_spec, parse_spec
from optimlab.data.lens import RandomLens, lens_distort
from optimlab.data.scale_crop import (
    RandomScaleCrop,
    multiscale_ten_crops,
    resized_shape,
    scale_crop,
    ten_crops,
)
from optimlab.errors import OptimlabError
from optimlab.regularize.tta import multiscale_predict


def images(n=3, c=2, h=10, w=14, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64)  # fmt: skip


def test_resized_shape_keeps_the_aspect_ratio():
    assert resized_shape(10, 14, 20) == (20, 28)
    assert resized_shape(14, 10, 15) == (21, 15)
    assert resized_shape(8, 8, 8) == (8, 8)


def test_scale_crop_equals_interpolate_then_slice():
    x = images()
    sides = torch.tensor([10, 13, 19])
    top, left = torch.tensor([0, 2, 9]), torch.tensor([0, 5, 14])
    out = scale_crop(x, sides, top, left, (8, 9))
    assert out.shape == (3, 2, 8, 9)
    for i in range(3):
        hs, ws = resized_shape(10, 14, int(sides[i]))
        ref = F.interpolate(x[i : i + 1], size=(hs, ws), mode="bilinear", align_corners=False)
        t, l = int(top[i]), int(left[i])
        torch.testing.assert_close(out[i], ref[0, :, t : t + 8, l : l + 9], rtol=0, atol=1e-12)


def test_scale_crop_at_the_images_own_size_is_the_identity():
    x = images()
    zero = torch.zeros(3, dtype=torch.long)
    out = scale_crop(x, torch.full((3,), 10), zero, zero, (10, 14))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-12)


def test_random_scale_crop_has_a_fixed_shape_and_sides_in_range():
    aug = RandomScaleCrop((9, 20), size=(8, 8))
    gen = step_generator(0, 0)
    sides, top, left = aug.draw(500, 10, 14, gen)
    assert int(sides.min()) == 9 and int(sides.max()) == 20  # both ends reached
    for s, t, l in zip(sides.tolist(), top.tolist(), left.tolist(), strict=True):
        hs, ws = resized_shape(10, 14, s)
        assert 0 <= t <= hs - 8 and 0 <= l <= ws - 8
    out = aug(images(), step_generator(0, 1))
    assert out.shape == (3, 2, 8, 8) and out.dtype == torch.float64
    # The same generator state gives the same crop, applied through scale_crop.
    s, t, l = aug.draw(3, 10, 14, step_generator(0, 1))
    torch.testing.assert_close(out, scale_crop(images(), s, t, l, (8, 8)), rtol=0, atol=0)


def test_scale_crop_refuses_crops_that_do_not_fit():
    with pytest.raises(OptimlabError, match="at least 12"):
        RandomScaleCrop((10, 20), size=(12, 8))(images(), step_generator(0, 0))
    with pytest.raises(OptimlabError, match="low <= high"):
        RandomScaleCrop((20, 10))


def test_ten_crops_are_the_corners_the_centre_and_their_mirrors():
    x = images(h=9, w=11)
    views = ten_crops(x, (5, 6))
    assert len(views) == 10
    expected = [x[..., :5, :6], x[..., :5, 5:], x[..., 4:, :6], x[..., 4:, 5:], x[..., 2:7, 2:8]]
    for got, want in zip(views[:5], expected, strict=True):
        assert torch.equal(got, want)
    for got, want in zip(views[5:], expected, strict=True):
        assert torch.equal(got, want.flip(-1))


def test_multiscale_views_count_and_shape():
    views = multiscale_ten_crops(images(), (10, 12, 16), size=(8, 8))
    assert len(views) == 30 and all(v.shape == (3, 2, 8, 8) for v in views)
    with pytest.raises(OptimlabError, match="valid: >= 8"):
        multiscale_ten_crops(images(), (7,), size=(8, 8))


def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 5)).double()  # fmt: skip


def test_multiscale_tta_of_a_constant_image_is_the_single_prediction():
    model = tiny_net()
    x = torch.full((2, 2, 10, 14), 0.3, dtype=torch.float64)
    x[1] = -1.7
    probs = multiscale_predict(model, x, (10, 13, 20), size=(8, 8))
    single = model.eval()(x[..., :8, :8]).softmax(-1)
    torch.testing.assert_close(probs, single, rtol=0, atol=1e-12)


def test_multiscale_tta_averages_the_views():
    model, x = tiny_net(), images()
    probs = multiscale_predict(model, x, (10, 12), size=(8, 8), batch_size=2)
    views = multiscale_ten_crops(x, (10, 12), (8, 8))
    expected = torch.stack([model(v).softmax(-1) for v in views]).mean(0)
    torch.testing.assert_close(probs, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, dtype=torch.float64))


def test_lens_with_zero_coefficients_is_the_identity():
    x = images()
    zero = torch.zeros(3, dtype=torch.float64)
    torch.testing.assert_close(lens_distort(x, zero, zero), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(RandomLens(0.0)(x, step_generator(0, 0)), x, rtol=0, atol=1e-12)


def test_lens_samples_at_x_times_one_plus_k1_r2_plus_k2_r4():
    # On a ramp linear in the column, bilinear sampling inside the image returns the
    # sampled position itself: out(x_u) = column of x_u * (1 + k1 r^2 + k2 r^4).
    h, w = 12, 16
    ramp = torch.arange(w, dtype=torch.float64).expand(1, 1, h, w).repeat(2, 1, 1, 1)
    k1 = torch.tensor([0.05, -0.08], dtype=torch.float64)
    k2 = torch.tensor([0.01, 0.02], dtype=torch.float64)
    out = lens_distort(ramp, k1, k2)
    s = min(h, w) / 2
    ux = (torch.arange(w, dtype=torch.float64) + 0.5 - w / 2) / s
    uy = (torch.arange(h, dtype=torch.float64) + 0.5 - h / 2) / s
    uy, ux = torch.meshgrid(uy, ux, indexing="ij")
    r2 = ux**2 + uy**2
    for i in range(2):
        col = ux * (1 + k1[i] * r2 + k2[i] * r2**2) * s + w / 2 - 0.5
        inside = (col >= 0) & (col <= w - 1)
        assert inside.float().mean() > 0.8
        torch.testing.assert_close(out[i, 0][inside], col[inside], rtol=0, atol=1e-9)


def test_barrel_distortion_pulls_content_toward_the_centre():
    x = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    x[..., 10, 18] = 1.0  # a dot 8 pixels right of the centre
    out = lens_distort(x, torch.tensor([0.3], dtype=torch.float64))
    col = int(out[0, 0, 10].argmax())
    assert 10 < col < 18 and out[0, 0, 10, 10] == 0.0


def test_the_spec_names_reach_the_pipeline():
    assert dict(parse_spec("scale_crop,lens:0.1")) == {"scale_crop": 2.0, "lens": 0.1}
    aug = from_spec("scale_crop:1.5,lens:0.1,flip", seed=3)
    x = images(n=4, h=12, w=12)
    out, _ = aug(x, torch.zeros(4), step=0)
    assert out.shape == x.shape and not torch.allclose(out, x)
    with pytest.raises(OptimlabError, match="scale_crop"):
        from_spec("scale_crop:0.5")
