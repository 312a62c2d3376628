"""Radial (lens) distortion as an augmentation, batched with ``grid_sample``.

The radial model of a lens: a point at ``x_u`` (pixel offset from the image centre,
divided by half the shorter side, so r = 1 at the middle of the nearer edges) appears
at ``x_d = x_u (1 + k1 r^2 + k2 r^4)``, ``r = |x_u|``. Each output pixel at ``x_u``
takes the input's value at ``x_d`` (bilinear, edges repeated beyond the border): with
k1 > 0 the content is pulled toward the centre, more so far from it (barrel), with
k1 < 0 pushed outward (pincushion); k1 = k2 = 0 is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from optimlab.data.augment import _check_images, _uniform
from optimlab.errors import check_range


def lens_grid(n: int, h: int, w: int, k1: Tensor, k2: Tensor) -> Tensor:
    """(N, H, W, 2) grid_sample coordinates of ``x_d`` for every output pixel, float64."""
    scale = min(h, w) / 2.0
    ys = (torch.arange(h, dtype=torch.float64) + 0.5 - h / 2.0) / scale
    xs = (torch.arange(w, dtype=torch.float64) + 0.5 - w / 2.0) / scale
    uy, ux = torch.meshgrid(ys, xs, indexing="ij")
    r2 = (ux * ux + uy * uy)[None]
    k1 = k1.to(torch.float64).view(n, 1, 1)
    k2 = k2.to(torch.float64).view(n, 1, 1)
    factor = 1.0 + k1 * r2 + k2 * r2 * r2
    # Offset in pixels (u * scale) -> grid units (align_corners=False: 2 * offset / size).
    gx = ux[None] * factor * scale * 2.0 / w
    gy = uy[None] * factor * scale * 2.0 / h
    return torch.stack([gx, gy], dim=-1)


def lens_distort(x: Tensor, k1: Tensor, k2: Tensor | None = None) -> Tensor:
    """Distort image i with coefficients (``k1[i]``, ``k2[i]``); ``k2`` None means 0."""
    _check_images(x)
    n, _, h, w = x.shape
    k2 = torch.zeros_like(k1) if k2 is None else k2
    grid = lens_grid(n, h, w, k1, k2).to(x.device, x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RandomLens:
    """Radial distortion with k1 ~ U(-k1_range, k1_range) and k2 ~ U(-k2_range, k2_range)
    per image."""

    def __init__(self, k1_range: float = 0.2, k2_range: float = 0.0) -> None:
        check_range("k1_range", k1_range, 0.0)
        check_range("k2_range", k2_range, 0.0)
        self.k1_range, self.k2_range = float(k1_range), float(k2_range)

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        n = x.shape[0]
        k1 = _uniform(n, -self.k1_range, self.k1_range, gen)
        k2 = _uniform(n, -self.k2_range, self.k2_range, gen)
        return lens_distort(x, k1, k2)

    def __repr__(self) -> str:
        return f"RandomLens(k1_range={self.k1_range:g}, k2_range={self.k2_range:g})"
