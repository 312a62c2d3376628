"""ResNet's scale augmentation and multi-scale crops, batched on (N, C, H, W) tensors.

Training (He et al. 2016, after Simonyan & Zisserman 2015): resize each image so that
its shorter side is L, drawn uniformly from a range (ResNet: L in [256, 480]), then cut
a fixed-size crop (224 x 224) at a random position. Testing: resize to a few shorter
sides and take ten crops at each, the four corners and the centre and their mirror
images (:func:`optimlab.regularize.tta.multiscale_predict` averages over them).

Resizing is bilinear with ``align_corners=False`` and no antialiasing, the same
sampling as ``F.interpolate(..., mode="bilinear")``: the resized image of side
(Hs, Ws) has pixel i at source row ``(i + 0.5) * H / Hs - 0.5``, clamped to the image.
Each image is resized and cropped in one ``grid_sample`` call for the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from optimlab.data.augment import _check_images, flip
from optimlab.errors import OptimlabError, check_range


def resized_shape(h: int, w: int, short_side: int) -> tuple[int, int]:
    """(Hs, Ws) of an (h, w) image resized so that its shorter side is ``short_side``."""
    if h <= w:
        return short_side, max(short_side, round(w * short_side / h))
    return max(short_side, round(h * short_side / w)), short_side


def _axis(start: Tensor, length: int, resized: Tensor) -> Tensor:
    """grid_sample coordinates of ``length`` pixels from ``start`` of a resized axis."""
    idx = start.to(torch.float64)[:, None] + torch.arange(length, dtype=torch.float64) + 0.5
    return 2.0 * idx / resized.to(torch.float64)[:, None] - 1.0


def scale_crop(
    x: Tensor, short_side: Tensor, top: Tensor, left: Tensor, size: tuple[int, int]
) -> Tensor:
    """Resize image i so its shorter side is ``short_side[i]``, then cut the (h, w) =
    ``size`` window whose corner is (``top[i]``, ``left[i]``) in the resized image."""
    _check_images(x)
    n, _, h, w = x.shape
    ch, cw = size
    shapes = [resized_shape(h, w, int(s)) for s in short_side.tolist()]
    hs = torch.tensor([s[0] for s in shapes])
    ws = torch.tensor([s[1] for s in shapes])
    if bool(((top < 0) | (left < 0) | (top + ch > hs) | (left + cw > ws)).any()):
        raise OptimlabError(f"a {ch}x{cw} crop falls outside a resized image; check the offsets")
    gy = _axis(top, ch, hs)[:, :, None].expand(n, ch, cw)
    gx = _axis(left, cw, ws)[:, None, :].expand(n, ch, cw)
    grid = torch.stack([gx, gy], dim=-1).to(x.device, x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RandomScaleCrop:
    """Shorter side L ~ uniform over the integers of ``short_side`` = (low, high), then a
    ``size`` crop at a uniformly drawn position (ResNet's training augmentation).

    ``size`` None keeps the input's (H, W); ``low`` must be at least the crop's larger
    side, so every crop fits. ``draw(n, h, w, gen)`` returns the drawn (L, top, left).
    """

    def __init__(self, short_side: tuple[int, int], size: tuple[int, int] | None = None) -> None:
        low, high = (int(v) for v in short_side)
        if not 1 <= low <= high:
            raise OptimlabError(
                f"invalid short_side range {tuple(short_side)}; need 1 <= low <= high"
            )
        if size is not None:
            check_range("crop height", size[0], 1)
            check_range("crop width", size[1], 1)
        self.short_side, self.size = (low, high), None if size is None else tuple(size)

    def crop_size(self, h: int, w: int) -> tuple[int, int]:
        size = (h, w) if self.size is None else self.size
        if self.short_side[0] < max(size):
            raise OptimlabError(
                f"invalid short_side range {self.short_side} for {size[0]}x{size[1]} crops: "
                f"the shorter side must be at least {max(size)}"
            )
        return size

    def draw(self, n: int, h: int, w: int, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        ch, cw = self.crop_size(h, w)
        low, high = self.short_side
        sides = torch.randint(low, high + 1, (n,), generator=gen)
        shapes = [resized_shape(h, w, int(s)) for s in sides.tolist()]
        room_y = torch.tensor([s[0] - ch + 1 for s in shapes], dtype=torch.float64)
        room_x = torch.tensor([s[1] - cw + 1 for s in shapes], dtype=torch.float64)
        top = (torch.rand(n, generator=gen, dtype=torch.float64) * room_y).long()
        left = (torch.rand(n, generator=gen, dtype=torch.float64) * room_x).long()
        return sides, top, left

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        sides, top, left = self.draw(n, h, w, gen)
        return scale_crop(x, sides, top, left, self.crop_size(h, w))

    def __repr__(self) -> str:
        return f"RandomScaleCrop(short_side={self.short_side}, size={self.size})"


def ten_crops(x: Tensor, size: tuple[int, int]) -> list[Tensor]:
    """The four corner crops and the centre crop of ``size``, then their left-right
    mirror images: ten views, in that order."""
    _check_images(x)
    h, w = x.shape[-2:]
    ch, cw = size
    if ch > h or cw > w:
        raise OptimlabError(f"a {ch}x{cw} crop does not fit a {h}x{w} image")
    corners = ((0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2))
    views = [x[..., t : t + ch, l : l + cw] for t, l in corners]
    every = torch.ones(x.shape[0], dtype=torch.bool)
    return views + [flip(v, every) for v in views]


def resize_short_side(x: Tensor, short_side: int) -> Tensor:
    """The whole batch resized (bilinear) so that the images' shorter side is ``short_side``."""
    check_range("short_side", short_side, 1)
    h, w = x.shape[-2:]
    if (h, w) == resized_shape(h, w, short_side):
        return x
    return F.interpolate(x, size=resized_shape(h, w, short_side), mode="bilinear",
                         align_corners=False)  # fmt: skip


def multiscale_ten_crops(
    x: Tensor, short_sides: tuple[int, ...], size: tuple[int, int] | None = None
) -> list[Tensor]:
    """Ten crops of ``size`` (default: the input's) at every shorter side in
    ``short_sides``: ``10 * len(short_sides)`` views of equal shape."""
    _check_images(x)
    if not short_sides:
        raise OptimlabError("multi-scale crops need at least one shorter side")
    size = tuple(x.shape[-2:]) if size is None else tuple(size)
    for s in short_sides:
        if s < max(size):
            raise OptimlabError(
                f"invalid shorter side {s} for {size[0]}x{size[1]} crops; valid: >= {max(size)}"
            )
    return [v for s in short_sides for v in ten_crops(resize_short_side(x, s), size)]
