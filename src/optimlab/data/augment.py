"""Batched image augmentation on (N, C, H, W) tensors, on whatever device they live.

Every random op is a pair: a deterministic function of explicit per-image parameters
(``flip``, ``crop_at``, ``affine``, ...) and a class that draws those parameters from a
``torch.Generator`` and applies them. Parameters are drawn on the CPU (a few numbers per
image), so the same seed gives the same output on any device. :class:`Augment` chains
ops and is a ``Trainer(batch_transform=...)``: it seeds a generator from
``(seed, step)``, so a resumed run augments its batches exactly as before. Labels pass
through unchanged; dtype and shape are kept.

Geometric conventions: the affine warp maps each output pixel to the input point it
samples, in pixel units about the image centre, x to the right and y down. A positive
``angle`` turns the picture counter-clockwise as displayed (90 degrees equals
``torch.rot90(x, 1, dims=(-2, -1))``). ``fill_mode`` names Keras' modes: "constant"
(fill with ``cval``), "nearest" (repeat the edge), "reflect" (mirror).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from optimlab.errors import OptimlabError, check_range

FILL_MODES = {"constant": "zeros", "nearest": "border", "reflect": "reflection"}


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator seeded from (seed, step)."""
    gen = torch.Generator()
    gen.manual_seed((int(seed) & 0xFFFFFFFF) << 32 | (int(step) & 0xFFFFFFFF))
    return gen


def _check_images(x: Tensor) -> None:
    if x.ndim != 4 or not x.is_floating_point():
        raise OptimlabError(
            f"augmentation needs float images (N, C, H, W); got {x.dtype} {tuple(x.shape)}"
        )


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, dtype=torch.float64)


def _per_image(mask: Tensor, x: Tensor) -> Tensor:
    return mask.to(x.device).view(-1, *([1] * (x.ndim - 1)))


# --- flips ---------------------------------------------------------------------------


def flip(x: Tensor, which: Tensor, dim: int = -1) -> Tensor:
    """Flip the images where ``which`` (bool, (N,)) is true along ``dim`` (-1: left-right)."""
    return torch.where(_per_image(which, x), x.flip(dim), x)


class RandomFlip:
    """Flip each image with probability ``p``: horizontally (``dim=-1``) or vertically."""

    def __init__(self, p: float = 0.5, dim: int = -1) -> None:
        check_range("flip probability", p, 0.0, 1.0)
        if dim not in (-1, -2):
            raise OptimlabError(f"invalid flip dim {dim}; valid: -1 (horizontal), -2 (vertical)")
        self.p, self.dim = float(p), dim

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        which = torch.rand(x.shape[0], generator=gen) < self.p
        return flip(x, which, self.dim)


# --- crops ---------------------------------------------------------------------------


def crop_at(
    x: Tensor, padding: int, top: Tensor, left: Tensor, fill_mode: str = "constant"
) -> Tensor:
    """Pad by ``padding`` on every side, then cut each image's (H, W) window whose corner
    is (``top[i]``, ``left[i]``) in the padded image (0 <= top, left <= 2 * padding)."""
    n, c, h, w = x.shape
    if padding:
        mode = {"constant": "constant", "nearest": "replicate", "reflect": "reflect"}[fill_mode]
        x = F.pad(x, (padding,) * 4, mode=mode)
    rows = top.to(x.device).long()[:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = left.to(x.device).long()[:, None] + torch.arange(w, device=x.device)  # (N, W)
    idx = torch.arange(n, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


class RandomCrop:
    """Pad by ``padding`` pixels and crop back to the original size at a random offset
    (the CIFAR recipe: padding 4); zero-filled by default."""

    def __init__(self, padding: int, fill_mode: str = "constant") -> None:
        check_range("crop padding", padding, 0)
        _fill_mode(fill_mode)
        self.padding, self.fill_mode = int(padding), fill_mode

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        n = x.shape[0]
        top = torch.randint(0, 2 * self.padding + 1, (n,), generator=gen)
        left = torch.randint(0, 2 * self.padding + 1, (n,), generator=gen)
        return crop_at(x, self.padding, top, left, self.fill_mode)


# --- affine warps --------------------------------------------------------------------


def _fill_mode(fill_mode: str) -> str:
    if fill_mode not in FILL_MODES:
        raise OptimlabError(
            f"invalid fill_mode {fill_mode!r}; valid fill modes: {', '.join(FILL_MODES)}"
        )
    return FILL_MODES[fill_mode]


def affine_matrices(
    n: int,
    angle: Tensor | None = None,
    shear: Tensor | None = None,
    zoom: tuple[Tensor, Tensor] | None = None,
    shift: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """(N, 2, 3) output-to-input maps in pixel units about the centre, composed as in
    Keras' ImageDataGenerator: rotation, then shift, then shear, then zoom (applied to
    the output coordinates right to left). Angles in degrees; ``zoom`` (zx, zy) scales
    the sampled area (> 1 shows more of the image, smaller); ``shift`` (tx, ty) in
    pixels moves the content right/down."""
    m = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    if angle is not None:
        # With y pointing down, this sampling map turns the content counter-clockwise
        # on screen.
        a = torch.deg2rad(angle)
        r = torch.zeros(n, 3, 3, dtype=torch.float64)
        r[:, 0, 0], r[:, 0, 1] = torch.cos(a), -torch.sin(a)
        r[:, 1, 0], r[:, 1, 1] = torch.sin(a), torch.cos(a)
        r[:, 2, 2] = 1.0
        m = m @ r
    if shift is not None:
        t = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
        t[:, 0, 2], t[:, 1, 2] = -shift[0], -shift[1]
        m = m @ t
    if shear is not None:
        s = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
        s[:, 0, 1] = -torch.sin(torch.deg2rad(shear))
        s[:, 1, 1] = torch.cos(torch.deg2rad(shear))
        m = m @ s
    if zoom is not None:
        z = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
        z[:, 0, 0], z[:, 1, 1] = zoom[0], zoom[1]
        m = m @ z
    return m[:, :2]


def affine(
    x: Tensor,
    matrices: Tensor,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    interpolation: str = "bilinear",
) -> Tensor:
    """Warp each image by its (2, 3) output-to-input map in centred pixel units
    (see :func:`affine_matrices`) with ``F.affine_grid``/``F.grid_sample``."""
    padding = _fill_mode(fill_mode)
    n, c, h, w = x.shape
    # Pixel units -> grid_sample's [-1, 1] units (align_corners=False: x_norm = 2x/W).
    to_norm = torch.tensor([[2.0 / w, 0, 0], [0, 2.0 / h, 0], [0, 0, 1]], dtype=torch.float64)
    from_norm = torch.tensor([[w / 2.0, 0, 0], [0, h / 2.0, 0], [0, 0, 1]], dtype=torch.float64)
    full = torch.cat([matrices, torch.tensor([[[0.0, 0.0, 1.0]]]).double().expand(n, 1, 3)], 1)
    theta = (to_norm @ full @ from_norm)[:, :2].to(x.device, x.dtype)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    out = F.grid_sample(x, grid, mode=interpolation, padding_mode=padding, align_corners=False)
    if fill_mode == "constant" and cval != 0.0:
        inside = F.grid_sample(
            torch.ones_like(x[:, :1]), grid, mode=interpolation, padding_mode="zeros",
            align_corners=False,
        )  # fmt: skip
        out = out + cval * (1.0 - inside)
    return out


def _range(name: str, value: float | Sequence[float], symmetric_about: float) -> tuple:
    if isinstance(value, int | float):
        check_range(name, value, 0.0)
        return (symmetric_about - value, symmetric_about + value)
    low, high = (float(v) for v in value)
    if low > high:
        raise OptimlabError(f"invalid {name}: ({low}, {high}); need low <= high")
    return low, high


class RandomAffine:
    """Rotation, shift, shear and zoom as one warp (Keras ImageDataGenerator's meanings):
    angle ~ U(-rotation, rotation) degrees; shift ~ U(-s, s) * size (a fraction of the
    width/height); shear ~ U(-shear, shear) degrees; zoom (zx, zy) each ~ U(1 - z, 1 + z)
    (or a (low, high) pair), drawn independently as Keras does."""

    def __init__(
        self,
        rotation: float = 0.0,
        width_shift: float = 0.0,
        height_shift: float = 0.0,
        shear: float = 0.0,
        zoom: float | Sequence[float] = 0.0,
        fill_mode: str = "nearest",
        cval: float = 0.0,
    ) -> None:
        for name, v in (("rotation_range", rotation), ("shear_range", shear)):
            check_range(name, v, 0.0)
        check_range("width_shift_range", width_shift, 0.0, 1.0)
        check_range("height_shift_range", height_shift, 0.0, 1.0)
        self.zoom = _range("zoom_range", zoom, 1.0)
        if self.zoom[0] <= 0:
            raise OptimlabError(f"invalid zoom_range {zoom!r}: zoom factors must stay > 0")
        _fill_mode(fill_mode)
        self.rotation, self.shear = float(rotation), float(shear)
        self.width_shift, self.height_shift = float(width_shift), float(height_shift)
        self.fill_mode, self.cval = fill_mode, float(cval)

    def is_identity(self) -> bool:
        return (
            self.rotation == self.shear == self.width_shift == self.height_shift == 0.0
            and self.zoom == (1.0, 1.0)
        )

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        if self.is_identity():
            return x
        n, _, h, w = x.shape
        angle = _uniform(n, -self.rotation, self.rotation, gen)
        tx = _uniform(n, -self.width_shift, self.width_shift, gen) * w
        ty = _uniform(n, -self.height_shift, self.height_shift, gen) * h
        shear = _uniform(n, -self.shear, self.shear, gen)
        zx, zy = _uniform(n, *self.zoom, gen), _uniform(n, *self.zoom, gen)
        m = affine_matrices(n, angle, shear, (zx, zy), (tx, ty))
        return affine(x, m, self.fill_mode, self.cval)


def resized_crop_matrices(scale: Tensor, ratio: Tensor, cx: Tensor, cy: Tensor, h: int, w: int):
    """Maps for crops of area fraction ``scale``, aspect ``ratio`` (width/height, relative
    to the image's), centred at (cx, cy) pixels from the image centre, resized to (H, W)."""
    fw = torch.sqrt(scale * ratio).clamp(max=1.0)
    fh = torch.sqrt(scale / ratio).clamp(max=1.0)
    m = torch.zeros(scale.shape[0], 2, 3, dtype=torch.float64)
    m[:, 0, 0], m[:, 1, 1] = fw, fh
    m[:, 0, 2], m[:, 1, 2] = cx, cy
    return m


class RandomResizedCrop:
    """Crop a random box of area fraction ~ U(scale) and log-uniform aspect ratio, and
    resize it to the full image (Szegedy et al. 2015's "Inception" crop; a random zoom-in).
    The box stays inside the image."""

    def __init__(
        self,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
    ) -> None:
        lo, hi = (float(s) for s in scale)
        if not 0 < lo <= hi <= 1:
            raise OptimlabError(f"invalid crop scale {tuple(scale)}; need 0 < low <= high <= 1")
        rlo, rhi = (float(r) for r in ratio)
        if not 0 < rlo <= rhi:
            raise OptimlabError(f"invalid crop ratio {tuple(ratio)}; need 0 < low <= high")
        self.scale, self.ratio = (lo, hi), (rlo, rhi)

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        scale = _uniform(n, *self.scale, gen)
        log_r = _uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), gen)
        ratio = torch.exp(log_r)
        fw = torch.sqrt(scale * ratio).clamp(max=1.0)
        fh = torch.sqrt(scale / ratio).clamp(max=1.0)
        # Centre anywhere that keeps the box inside: |c| <= (1 - f) * size / 2.
        cx = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * (1 - fw) * w / 2
        cy = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * (1 - fh) * h / 2
        return affine(x, resized_crop_matrices(scale, ratio, cx, cy, h, w), "nearest")


# --- colour --------------------------------------------------------------------------


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
        return (x * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def adjust(
    x: Tensor,
    brightness: Tensor | None = None,
    contrast: Tensor | None = None,
    saturation: Tensor | None = None,
) -> Tensor:
    """Per-image colour changes, each factor (N,) with 1 = unchanged: brightness scales
    the pixels, contrast blends with the image's mean grey level, saturation blends with
    the image's grey version (ITU-R 601 luma for RGB; a no-op for one channel)."""
    if brightness is not None:
        x = x * _per_image(brightness, x).to(x.dtype)
    if contrast is not None:
        mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
        f = _per_image(contrast, x).to(x.dtype)
        x = f * x + (1 - f) * mean
    if saturation is not None and x.shape[1] > 1:
        f = _per_image(saturation, x).to(x.dtype)
        x = f * x + (1 - f) * _gray(x)
    return x


class ColorJitter:
    """Brightness, contrast and saturation factors each ~ U(1 - s, 1 + s)."""

    def __init__(
        self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0
    ) -> None:
        for name, v in (("brightness", brightness), ("contrast", contrast)):
            check_range(name, v, 0.0)
        check_range("saturation", saturation, 0.0)
        self.b, self.c, self.s = float(brightness), float(contrast), float(saturation)

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        n = x.shape[0]
        factors = [_uniform(n, 1 - v, 1 + v, gen) if v else None for v in (self.b, self.c, self.s)]
        return adjust(x, *factors)


def fit_pca_lighting(x: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (C,) and eigenvectors (C, C; columns) of the covariance of the pixel
    colours of ``x`` (N, C, H, W): what PCA colour augmentation needs, computed on the
    training set (Krizhevsky et al. 2012, section 4.1)."""
    _check_images(x)
    pixels = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]).double()
    cov = torch.cov(pixels.T).reshape(x.shape[1], x.shape[1])
    values, vectors = torch.linalg.eigh(cov)
    return values.clamp_min(0.0), vectors


def pca_lighting(x: Tensor, alpha: Tensor, eigvals: Tensor, eigvecs: Tensor) -> Tensor:
    """Add ``sum_i alpha[n, i] * lambda_i * p_i`` to every pixel of image n."""
    shift = (alpha.double() * eigvals.double()) @ eigvecs.double().T  # (N, C)
    return x + shift.to(x.device, x.dtype)[:, :, None, None]


class PCALighting:
    """Krizhevsky's "fancy PCA" colour noise: alpha_i ~ N(0, std^2) per image (std 0.1)."""

    def __init__(self, eigvals: Tensor, eigvecs: Tensor, std: float = 0.1) -> None:
        check_range("pca std", std, 0.0)
        self.eigvals, self.eigvecs, self.std = eigvals, eigvecs, float(std)

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        c = self.eigvals.shape[0]
        if x.shape[1] != c:
            raise OptimlabError(f"PCA lighting fitted on {c} channels, images have {x.shape[1]}")
        alpha = torch.randn(x.shape[0], c, generator=gen, dtype=torch.float64) * self.std
        return pca_lighting(x, alpha, self.eigvals, self.eigvecs)


# --- erasing -------------------------------------------------------------------------


def erase(
    x: Tensor, which: Tensor, top: Tensor, left: Tensor, height: Tensor, width: Tensor, value=0.0
) -> Tensor:
    """Set the box [top, top + height) x [left, left + width) to ``value`` in the images
    where ``which`` is true."""
    _, _, h, w = x.shape
    rows = torch.arange(h)[None, :]
    cols = torch.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])  # (N, W)
    box = (in_rows[:, :, None] & in_cols[:, None, :] & which[:, None, None]).to(x.device)
    return torch.where(box[:, None], torch.as_tensor(value, dtype=x.dtype, device=x.device), x)


class RandomErasing:
    """Random erasing (Zhong et al., AAAI 2020): with probability ``p`` blank a box of area
    fraction ~ U(scale) and log-uniform aspect ratio at a uniform position."""

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float = 0.0,
    ) -> None:
        check_range("erasing probability", p, 0.0, 1.0)
        self.p, self.value = float(p), float(value)
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        if not 0 < self.scale[0] <= self.scale[1] <= 1 or not 0 < self.ratio[0] <= self.ratio[1]:
            raise OptimlabError(f"invalid erasing scale {scale} or ratio {ratio}")

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        which = torch.rand(n, generator=gen) < self.p
        area = _uniform(n, *self.scale, gen) * h * w
        ratio = torch.exp(_uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), gen))
        bh = torch.sqrt(area / ratio).round().clamp(1, h).long()
        bw = torch.sqrt(area * ratio).round().clamp(1, w).long()
        top = (torch.rand(n, generator=gen, dtype=torch.float64) * (h - bh + 1)).long()
        left = (torch.rand(n, generator=gen, dtype=torch.float64) * (w - bw + 1)).long()
        return erase(x, which, top, left, bh, bw, self.value)


# --- pipelines -----------------------------------------------------------------------


class Augment:
    """A chain of ops, usable as ``Trainer(batch_transform=Augment([...], seed))``.

    ``aug(x, y, step)`` draws every op's parameters from one generator seeded by
    ``(seed, step)`` and returns ``(augmented x, y)``; ``aug.images(x, gen)`` applies
    the chain with a generator of your own.
    """

    def __init__(self, ops: Sequence, seed: int = 0) -> None:
        self.ops, self.seed = list(ops), int(seed)

    def images(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _check_images(x)
        for op in self.ops:
            x = op(x, gen)
        return x

    def __call__(self, x: Tensor, y: Tensor, step: int) -> tuple[Tensor, Tensor]:
        return self.images(x, step_generator(self.seed, step)), y

    def __repr__(self) -> str:
        return f"Augment({self.ops!r}, seed={self.seed})"
