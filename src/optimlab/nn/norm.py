"""Normalization: torch's norms by name, batch renormalization, and BN folding.

``make_norm("batch", 64, spatial=True)`` builds one of torch's feature normalizations;
``with_norm(layer, name, ...)`` returns ``[layer, norm]`` (or the weight-normalized
layer for ``"weight"``). ``BatchRenorm`` is batch renormalization (Ioffe 2017) with the
rmax/dmax relaxation as a closed-form function of the step. ``fold_batchnorm`` merges
each batch norm into the Linear/Conv before it, for inference.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range
from optimlab.registry import Registry


class Relax:
    """A closed-form ramp of the step t: ``start`` until ``begin``, then linear to ``end``
    at ``until``, then ``end``. Used for batch renorm's rmax and dmax."""

    def __init__(self, start: float, end: float, begin: int, until: int) -> None:
        check_range("begin", begin, 0)
        check_range("until", until, begin)
        self.start, self.end, self.begin, self.until = float(start), float(end), begin, until

    def __call__(self, step: int) -> float:
        if step <= self.begin:
            return self.start
        if step >= self.until:
            return self.end
        frac = (step - self.begin) / (self.until - self.begin)
        return self.start + (self.end - self.start) * frac

    def __repr__(self) -> str:
        return f"Relax({self.start:g} -> {self.end:g}, steps {self.begin}..{self.until})"


# Ioffe 2017, section 4 (Inception on ImageNet): rmax = 1 and dmax = 0 for the first
# 5000 steps, then relaxed to reach rmax = 3 at 40k steps and dmax = 5 at 25k steps. The
# paper says "gradually"; the linear shape of the ramp is our choice.
DEFAULT_RMAX = Relax(1.0, 3.0, 5_000, 40_000)
DEFAULT_DMAX = Relax(0.0, 5.0, 5_000, 25_000)


class BatchRenorm(nn.Module):
    """Batch renormalization (Ioffe 2017) over dim 1 of ``(N, C)`` or ``(N, C, *spatial)`` inputs.

    In training, with batch statistics mu_B and sigma_B = sqrt(Var_B + eps) (biased
    variance, as batch norm) and running mu, sigma::

        r = clip(sigma_B / sigma, 1/rmax, rmax)      (no gradient through r)
        d = clip((mu_B - mu) / sigma, -dmax, dmax)   (no gradient through d)
        y = gamma * ((x - mu_B) / sigma_B * r + d) + beta
        mu <- mu + momentum * (mu_B - mu);  sigma <- sigma + momentum * (sigma_B - sigma)

    In evaluation, ``y = gamma * (x - mu) / sigma + beta``. With rmax = 1 and dmax = 0 the
    training output is batch norm's. ``rmax`` and ``dmax`` are numbers or functions of
    the training step (``num_batches_tracked`` before this batch); the defaults relax them
    as the paper did (``DEFAULT_RMAX``, ``DEFAULT_DMAX``). ``momentum`` follows torch's
    convention (weight of the new batch; default 0.1 as ``nn.BatchNorm``).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        rmax: float | Callable[[int], float] = DEFAULT_RMAX,
        dmax: float | Callable[[int], float] = DEFAULT_DMAX,
    ) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise OptimlabError(f"invalid num_features: {num_features!r}; valid: integers >= 1")
        check_range("eps", eps, 0.0, None, low_open=True)
        check_range("momentum", momentum, 0.0, 1.0)
        if not callable(rmax):
            check_range("rmax", rmax, 1.0)
        if not callable(dmax):
            check_range("dmax", dmax, 0.0)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.rmax, self.dmax = rmax, dmax
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_std", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def limits(self, step: int | None = None) -> tuple[float, float]:
        """(rmax, dmax) at ``step`` (default: the current one)."""
        t = int(self.num_batches_tracked) if step is None else step
        rmax = self.rmax(t) if callable(self.rmax) else self.rmax
        dmax = self.dmax(t) if callable(self.dmax) else self.dmax
        return float(rmax), float(dmax)

    def _shape(self, x: Tensor) -> list[int]:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise OptimlabError(
                f"invalid input shape {tuple(x.shape)} for BatchRenorm({self.num_features}); "
                "expected (N, C) or (N, C, ...) with C = num_features"
            )
        return [1, self.num_features] + [1] * (x.dim() - 2)

    def forward(self, x: Tensor) -> Tensor:
        shape = self._shape(x)
        mean, std = self.running_mean.view(shape), self.running_std.view(shape)
        if self.training:
            dims = [0] + list(range(2, x.dim()))
            mu_b = x.mean(dims, keepdim=True)
            sigma_b = torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + self.eps)
            rmax, dmax = self.limits()
            with torch.no_grad():
                r = (sigma_b / std).clamp(1.0 / rmax, rmax)
                d = ((mu_b - mean) / std).clamp(-dmax, dmax)
                self.running_mean.lerp_(mu_b.flatten(), self.momentum)
                self.running_std.lerp_(sigma_b.flatten(), self.momentum)
                self.num_batches_tracked += 1
            y = (x - mu_b) / sigma_b * r + d
        else:
            y = (x - mean) / std
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"rmax={self.rmax!r}, dmax={self.dmax!r}"
        )


# ----------------------------------------------------------------------- by name


@dataclass(frozen=True)
class NormRecord:
    """A registered normalization: ``builder(num_features, spatial, **kw)``."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    reference: str = ""
    aliases: tuple[str, ...] = ()


def _batch(c: int, spatial: bool, **kw: Any) -> nn.Module:
    return (nn.BatchNorm2d if spatial else nn.BatchNorm1d)(c, **kw)


def _layer(c: int, spatial: bool, **kw: Any) -> nn.Module:
    # On feature maps, GroupNorm with one group normalizes over (C, H, W) like a layer
    # norm but keeps a per-channel scale and shift, and works for any image size.
    return nn.GroupNorm(1, c, **kw) if spatial else nn.LayerNorm(c, **kw)


def _group(c: int, spatial: bool, groups: int | None = None, **kw: Any) -> nn.Module:
    g = math.gcd(32, c) if groups is None else groups
    if isinstance(g, bool) or not isinstance(g, int) or g < 1 or c % g:
        raise OptimlabError(f"invalid groups: {g!r}; valid values divide num_features={c}")
    return nn.GroupNorm(g, c, **kw)


def _instance(c: int, spatial: bool, **kw: Any) -> nn.Module:
    if not spatial:
        raise OptimlabError("instance norm needs spatial inputs (N, C, H, W); use it in conv nets")
    return nn.InstanceNorm2d(c, **{"affine": True, **kw})


def _renorm(c: int, spatial: bool, **kw: Any) -> nn.Module:
    return BatchRenorm(c, **kw)


def _none(c: int, spatial: bool, **kw: Any) -> nn.Module:
    return nn.Identity()


NORMS: Registry[NormRecord] = Registry("normalization")
for _record in (
    NormRecord("batch", _batch, "nn.BatchNorm1d/2d", "Ioffe & Szegedy 2015", ("bn", "batch_norm")),
    NormRecord("layer", _layer, "nn.LayerNorm; GroupNorm(1, C) on maps", "Ba et al. 2016", ("ln",)),
    NormRecord("group", _group, "nn.GroupNorm, gcd(32, C) groups by default", "Wu & He 2018"),
    NormRecord("instance", _instance, "nn.InstanceNorm2d (affine)", "Ulyanov et al. 2016"),
    NormRecord("batch_renorm", _renorm, "BatchRenorm (this module)", "Ioffe 2017", ("brn",)),
    NormRecord(
        "weight",
        _none,
        "weight normalization of the layer itself (torch parametrization)",
        "Salimans & Kingma 2016",
        ("weight_norm",),
    ),
    NormRecord("none", _none, "no normalization", aliases=("identity",)),
):
    NORMS.add(_record)


def make_norm(name: str, num_features: int, spatial: bool = False, **kwargs: Any) -> nn.Module:
    """A normalization module over ``num_features`` channels by name (``NORMS``).

    ``spatial`` picks the variant for (N, C, H, W) feature maps. ``"weight"`` is not a
    separate module: use ``with_norm`` or ``weight_norm``.
    """
    record = NORMS.get(name)
    if record.name == "weight":
        raise OptimlabError("weight norm reparametrizes a layer: use with_norm() or weight_norm()")
    return record.builder(num_features, spatial, **kwargs)


def weight_norm(layer: nn.Module) -> nn.Module:
    """``w = g * v / ||v||`` per output unit (Salimans & Kingma 2016), via torch's
    ``nn.utils.parametrizations.weight_norm`` (norm over all dims but 0)."""
    return nn.utils.parametrizations.weight_norm(layer, name="weight", dim=0)


def with_norm(
    layer: nn.Module, name: str | None, num_features: int, spatial: bool = False, **kwargs: Any
) -> list[nn.Module]:
    """``[layer, norm]`` for a feature norm, ``[weight_norm(layer)]`` for ``"weight"``,
    ``[layer]`` for None or ``"none"``."""
    if name is None:
        return [layer]
    record = NORMS.get(name)
    if record.name == "weight":
        return [weight_norm(layer)]
    if record.name == "none":
        return [layer]
    return [layer, record.builder(num_features, spatial, **kwargs)]


# ----------------------------------------------------------------------- folding

_FOLDABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, BatchRenorm)


def _inference_affine(norm: nn.Module) -> tuple[Tensor, Tensor]:
    """(scale, shift) such that norm(x) = scale * x + shift per channel in eval mode."""
    if isinstance(norm, BatchRenorm):
        mean, std = norm.running_mean, norm.running_std
    else:
        if norm.running_mean is None:
            raise OptimlabError("cannot fold a batch norm without running statistics")
        mean, std = norm.running_mean, torch.sqrt(norm.running_var + norm.eps)
    scale = 1.0 / std
    shift = -mean / std
    if norm.weight is not None:
        scale, shift = scale * norm.weight, shift * norm.weight + norm.bias
    return scale, shift


def fold_pair(layer: nn.Module, norm: nn.Module) -> nn.Module:
    """A copy of ``layer`` whose output equals ``norm(layer(x))`` with ``norm`` in eval mode:
    ``W' = W * s`` (per output channel), ``b' = s * b + t`` where norm(z) = s*z + t."""
    with torch.no_grad():
        scale, shift = _inference_affine(norm)
        folded = copy.deepcopy(layer)
        w = folded.weight
        folded.weight = nn.Parameter(w * scale.reshape([-1] + [1] * (w.dim() - 1)).to(w.dtype))
        bias = layer.bias if layer.bias is not None else torch.zeros_like(scale)
        folded.bias = nn.Parameter((bias * scale + shift).to(w.dtype))
    return folded


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for inference, each batch norm folded into the layer before it.

    Folded are the (Linear or Conv, BatchNorm/BatchRenorm) pairs that sit next to each
    other in an ``nn.Sequential`` (at any depth); the norm is replaced by ``nn.Identity``.
    Other batch norms stay. The copy is in eval mode; its outputs equal the model's
    eval-mode outputs up to rounding.
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for prev, name in zip(names, names[1:], strict=False):
            layer, norm = module._modules[prev], module._modules[name]
            if (
                isinstance(layer, _FOLDABLE)
                and isinstance(norm, _BATCH_NORMS)
                and not nn.utils.parametrize.is_parametrized(layer)
            ):
                module._modules[prev] = fold_pair(layer, norm).eval()
                module._modules[name] = nn.Identity()
    return folded
