"""Dropout and noise layers (Srivastava et al., JMLR 2014; Wan et al., ICML 2013;
Huang et al., ECCV 2016).

``rate`` is the drop probability p (as ``torch.nn.Dropout``); the keep probability is
``q = 1 - p``. Every layer is an identity-or-scaling in eval mode and random only in
training mode; randomness comes from torch's global generator unless a
``torch.Generator`` is given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.errors import check_range


def _rate(rate: float) -> float:
    check_range("dropout rate", rate, 0.0, 1.0, high_open=True)
    return float(rate)


def _bernoulli_keep(shape: torch.Size, q: float, like: Tensor, gen: torch.Generator | None):
    return torch.rand(shape, generator=gen, device=like.device, dtype=like.dtype) < q


class InvertedDropout(nn.Module):
    """Inverted dropout: in training ``y = m * x / q`` with ``m ~ Bernoulli(q)``;
    identity at test time. ``E[y] = x`` in both modes (what ``nn.Dropout`` does)."""

    def __init__(self, rate: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.rate = _rate(rate)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        q = 1.0 - self.rate
        return x * _bernoulli_keep(x.shape, q, x, self.generator) / q

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"


class VanillaDropout(nn.Module):
    """The lectures' original dropout: in training ``y = m * x`` (no rescaling); at test
    time ``y = q * x``, the expected training output (Srivastava et al. 2014, fig. 2)."""

    def __init__(self, rate: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.rate = _rate(rate)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        q = 1.0 - self.rate
        if not self.training:
            return x * q
        if self.rate == 0.0:
            return x
        return x * _bernoulli_keep(x.shape, q, x, self.generator)

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"


class DropConnectLinear(nn.Linear):
    """A Linear layer with DropConnect (Wan et al. 2013): in training each weight is
    dropped with probability ``rate`` (one mask per forward pass, shared by the batch)
    and the kept ones scaled by 1/q, so ``E[W_masked] = W``; at test time the plain
    layer (the mean-field inference, not the paper's Gaussian moment matching)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rate: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias)
        self.rate = _rate(rate)
        self.generator = generator

    @classmethod
    def from_linear(cls, layer: nn.Linear, rate: float) -> DropConnectLinear:
        """A DropConnect layer sharing ``layer``'s current weights (copied)."""
        new = cls(layer.in_features, layer.out_features, layer.bias is not None, rate)
        new.to(layer.weight.device, layer.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(layer.weight)
            if layer.bias is not None:
                new.bias.copy_(layer.bias)
        return new

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return super().forward(x)
        q = 1.0 - self.rate
        mask = _bernoulli_keep(self.weight.shape, q, self.weight, self.generator)
        return F.linear(x, self.weight * mask / q, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rate={self.rate:g}"


class GaussianNoise(nn.Module):
    """Additive zero-mean Gaussian noise ``y = x + sigma * eps`` in training (Keras'
    GaussianNoise); identity at test time."""

    def __init__(self, sigma: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        check_range("sigma", sigma, 0.0)
        self.sigma = float(sigma)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.sigma == 0.0:
            return x
        noise = torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return x + self.sigma * noise

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}"


class GaussianDropout(nn.Module):
    """Multiplicative Gaussian noise ``y = x * (1 + sqrt(p/q) * eps)``: same mean and
    variance as inverted dropout at rate p (Srivastava et al. 2014, section 10)."""

    def __init__(self, rate: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.rate = _rate(rate)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        std = (self.rate / (1.0 - self.rate)) ** 0.5
        noise = torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return x * (1.0 + std * noise)

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"


class StochasticDepth(nn.Module):
    """Wrap the residual branch ``f`` of a block ``x + f(x)`` (Huang et al. 2016).

    In training the branch is kept with probability ``q = 1 - rate`` per example
    ("row" mode, as torchvision's ``stochastic_depth``) or for the whole batch
    ("batch" mode), and scaled by 1/q so that the expectation matches test time, where
    the branch always runs unscaled. The wrapper returns ``x + branch``.
    """

    def __init__(
        self,
        branch: nn.Module,
        rate: float,
        mode: str = "row",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.branch = branch
        self.rate = _rate(rate)
        if mode not in ("row", "batch"):
            from optimlab.errors import OptimlabError

            raise OptimlabError(f"invalid stochastic depth mode {mode!r}; valid: row, batch")
        self.mode = mode
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x + self.branch(x)
        q = 1.0 - self.rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1) if self.mode == "row" else (1,) * x.ndim
        keep = _bernoulli_keep(torch.Size(shape), q, x, self.generator)
        # A batch-mode drop skips the branch's compute entirely.
        if self.mode == "batch" and not bool(keep):
            return x
        return x + self.branch(x) * keep / q

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}, mode={self.mode}"


def add_dropout(model: nn.Module, rate: float, after: tuple[type, ...] | None = None) -> int:
    """Insert ``nn.Dropout(rate)`` after every activation of the ``nn.Sequential``
    containers in ``model`` (ReLU-family, tanh, sigmoid, GELU, ... by default) whose next
    module is not already a dropout layer; returns how many were inserted. Used to add
    dropout by name to a registered model."""
    _rate(rate)
    if rate == 0.0:
        return 0
    acts = after or (
        nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Softplus
    )  # fmt: skip
    drops = (nn.Dropout, InvertedDropout, VanillaDropout)
    added = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        children = list(seq)
        out: list[nn.Module] = []
        for i, child in enumerate(children):
            out.append(child)
            nxt = children[i + 1] if i + 1 < len(children) else None
            # No dropout after the last module: that is the output.
            if isinstance(child, acts) and nxt is not None and not isinstance(nxt, drops):
                out.append(nn.Dropout(rate))
                added += 1
        if len(out) != len(children):
            for key in list(seq._modules):
                del seq._modules[key]
            for i, m in enumerate(out):
                seq.add_module(str(i), m)
    return added
