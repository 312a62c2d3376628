"""Test-time augmentation: average the softmax outputs over fixed views of each image
(Krizhevsky et al. 2012 averaged ten crops and their flips), at one scale or several."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from optimlab.data.augment import crop_at, flip
from optimlab.data.scale_crop import multiscale_ten_crops
from optimlab.errors import check_range


def tta_views(x: Tensor, flips: bool = True, crop_padding: int = 0) -> list[Tensor]:
    """The views: the image, its left-right flip (``flips``), and with ``crop_padding``
    p > 0 the four corner crops of the p-padded image shifted by p pixels (and their
    flips)."""
    check_range("crop_padding", crop_padding, 0)
    n = x.shape[0]
    views = [x]
    p = int(crop_padding)
    if p:
        for top, left in ((0, 0), (0, 2 * p), (2 * p, 0), (2 * p, 2 * p)):
            views.append(crop_at(x, p, torch.full((n,), top), torch.full((n,), left)))
    if flips:
        views += [flip(v, torch.ones(n, dtype=torch.bool)) for v in list(views)]
    return views


@torch.no_grad()
def tta_predict(
    model: nn.Module, x: Tensor, flips: bool = True, crop_padding: int = 0, batch_size: int = 1024
) -> Tensor:
    """Mean softmax probabilities of ``model`` (in eval mode) over :func:`tta_views`."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        views = tta_views(x[i : i + batch_size], flips, crop_padding)
        out.append(torch.stack([model(v).softmax(dim=-1) for v in views]).mean(dim=0))
    model.train(was)
    return torch.cat(out)


@torch.no_grad()
def multiscale_predict(
    model: nn.Module,
    x: Tensor,
    short_sides: tuple[int, ...],
    size: tuple[int, int] | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Mean softmax probabilities of ``model`` (in eval mode) over ten crops of ``size``
    (the four corners, the centre, and their mirror images) at each shorter side in
    ``short_sides``: ResNet's multi-scale testing (He et al. 2016 used sides 224, 256,
    384, 480 and 640 with 224 x 224 crops). ``size`` defaults to the input's (H, W)."""
    was = model.training
    model.eval()
    out = []
    try:
        for i in range(0, x.shape[0], batch_size):
            views = multiscale_ten_crops(x[i : i + batch_size], tuple(short_sides), size)
            out.append(torch.stack([model(v).softmax(dim=-1) for v in views]).mean(dim=0))
    finally:
        model.train(was)
    return torch.cat(out)
