"""Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks"),
in torch.optim.Muon's form, with an auxiliary AdamW for the parameters Muon does not
take: ``newton_schulz``, ``ScaleByMuon``, ``Muon`` and ``muon_param_groups``.

Muon replaces the momentum of a weight matrix by the nearest semi-orthogonal matrix (its
polar factor ``U V^T``), approximated by a few Newton-Schulz iterations of a quintic
polynomial tuned for speed rather than exactness: the singular values land roughly in
[0.7, 1.2] instead of at 1. It suits the 2-D weights of hidden layers; embeddings, the
output layer, biases and gains go to AdamW.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.adam import ScaleByAdam
from optimlab.optim.adaptive import check_betas
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import DecoupledWeightDecay
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer

#: Keller Jordan's quintic coefficients, which torch.optim.Muon uses
QUINTIC = (3.4445, -4.7750, 2.0315)
ROUTES = ("auto", True, False)
ADJUSTMENTS = ("original", "match_rms_adamw")
NS_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, None: None}
OTHERS = ("adamw", "nesterov")


def newton_schulz(
    g: Tensor,
    steps: int = 5,
    coefficients: tuple[float, float, float] = QUINTIC,
    eps: float = 1e-7,
    dtype: torch.dtype | None = torch.bfloat16,
) -> Tensor:
    """The approximate polar factor of a matrix by the quintic Newton-Schulz iteration.

    .. code-block:: text

        X <- G / max(||G||_F, eps)             (transposed first if G is tall)
        repeat steps times:
            A <- X X^T
            X <- a X + (b A + c A^2) X

    Each step maps every singular value ``s`` to ``a s + b s^3 + c s^5`` and keeps the
    singular vectors. The operations are torch.optim.Muon's, in the same order, so that
    in the same dtype the results agree bit for bit.

    Args:
        g: a 2-D tensor.
        steps: the number of iterations.
        coefficients: ``(a, b, c)``.
        eps: the floor of the Frobenius norm.
        dtype: the dtype the iteration runs in (bfloat16, torch's); None for ``g``'s own.

    Returns:
        A tensor shaped as ``g``, in ``dtype``.
    """
    a, b, c = coefficients
    x = g if dtype is None else g.to(dtype)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)
    return x.T if tall else x


def lr_ratio(shape: torch.Size, adjust_lr_fn: str | None) -> float:
    """torch.optim.Muon's shape-based scale of the learning rate for an ``A x B`` matrix:
    ``sqrt(max(1, A/B))`` ("original", Jordan's) or ``0.2 sqrt(max(A, B))``
    ("match_rms_adamw", Moonshot's: the update's RMS then matches AdamW's)."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))


def uses_muon(route: Any, p: Tensor, flatten: bool = False) -> bool:
    """Whether a parameter of a group with ``muon=route`` is orthogonalised: with "auto",
    2-D parameters, and with ``flatten`` those of more dimensions too."""
    return route is True or (route == "auto" and (p.dim() == 2 or (flatten and p.dim() > 2)))


def as_matrix(p: Tensor, flatten: bool) -> Tensor:
    """``p`` as the matrix Muon orthogonalises: itself if 2-D, with ``flatten`` a
    convolution filter bank ``(out, in, k, k)`` as ``(out, in k k)`` (Jordan's reference
    code does this for CIFAR-10), else an error naming the shape."""
    if p.dim() == 2:
        return p
    if flatten and p.dim() > 2:
        return p.reshape(p.shape[0], -1)
    raise OptimlabError(
        f"Muon cannot orthogonalise a parameter of shape {tuple(p.shape)}: it needs a "
        "2-D matrix; valid: put it in a group with muon=False or muon='auto', or pass "
        "flatten=True to treat a convolution filter bank as (out, in*k*k)"
    )


class ScaleByMuon(Transform):
    """Muon's direction for the 2-D parameters a group routes to it, AdamW's (Adam's
    direction) for the others.

    .. code-block:: text

        Muon parameters (muon=True, or "auto" and 2-D):
            b <- mu * b + (1 - mu) * u                    (b starts at 0)
            u <- NS((1 - mu) * u + mu * b if nesterov else b) * ratio(A x B)
        the others (muon=False, or "auto" and not 2-D):
            u <- Adam's direction of u, with adam_betas and adam_eps (other="adamw")
            u <- u + m * c, c <- m * c + u (other="nesterov", m = other_momentum)

    Hyperparameters:
        muon: "auto" (default: 2-D parameters to Muon, the rest to AdamW), True (every
            parameter to Muon; one that is not 2-D is refused) or False (all AdamW).
        momentum: ``mu`` in [0, 1) (default 0.95, torch's).
        nesterov: the look-ahead form (default True, torch's).
        ns_coefficients: the quintic's ``(a, b, c)`` (default (3.4445, -4.7750, 2.0315)).
        ns_steps: Newton-Schulz iterations, 1 to 99 (default 5).
        eps: the floor of the Frobenius norm in NS (default 1e-7, torch's).
        ns_dtype: "bfloat16" (default, torch's: the iteration always runs in bfloat16),
            "float32", or None for the parameter's own dtype.
        adjust_lr_fn: ``ratio``: None or "original" (``sqrt(max(1, A/B))``, the default)
            or "match_rms_adamw" (``0.2 sqrt(max(A, B))``).
        adam_betas: AdamW's ``(b1, b2)`` (default (0.9, 0.999), torch.optim.AdamW's).
        adam_eps: AdamW's ``eps`` (default 1e-8).
        flatten: orthogonalise a parameter of more than two dimensions (a convolution's
            ``(out, in, k, k)`` filters) as the ``(out, in k k)`` matrix, and let "auto"
            route such parameters to Muon (default False: torch's rule, 2-D only).
        other: the rule for the parameters Muon does not take: "adamw" (default,
            torch's) or "nesterov" (SGD with Nesterov momentum, which Jordan's CIFAR-10
            speedrun uses for the norm layers' parameters and the head).
        other_momentum: the momentum of ``other="nesterov"``, in [0, 1) (default 0.9).

    State:
        momentum_buffer: ``b`` (Muon parameters), ``c`` (other="nesterov").
        exp_avg: Adam's first moment (AdamW parameters).
        exp_avg_sq: Adam's second moment (AdamW parameters).

    Orthogonalisation acts on whole matrices, so the rule is not elementwise.

    References:
        Jordan et al. 2024; Liu et al. 2025, "Muon is Scalable for LLM Training"
        (match_rms_adamw); torch.optim.Muon and torch.optim.AdamW.
    """

    elementwise = False
    defaults = {
        "muon": "auto",
        "momentum": 0.95,
        "nesterov": True,
        "ns_coefficients": QUINTIC,
        "ns_steps": 5,
        "eps": 1e-7,
        "ns_dtype": "bfloat16",
        "adjust_lr_fn": None,
        "adam_betas": (0.9, 0.999),
        "adam_eps": 1e-8,
        "flatten": False,
        "other": "adamw",
        "other_momentum": 0.9,
    }
    state_keys = ("momentum_buffer", "exp_avg", "exp_avg_sq")

    _adam = ScaleByAdam()

    def validate(self, hp: Hyper) -> None:
        if hp["muon"] not in ROUTES or not isinstance(hp["muon"], (str, bool)):
            raise OptimlabError(f"invalid muon: {hp['muon']!r}; valid: 'auto', True, False")
        check_range("momentum", float(hp["momentum"]), 0.0, 1.0, high_open=True)
        coefficients = hp["ns_coefficients"]
        if not isinstance(coefficients, (tuple, list)) or len(coefficients) != 3:
            raise OptimlabError(
                f"invalid ns_coefficients: {coefficients!r}; expected three numbers (a, b, c)"
            )
        steps = hp["ns_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps < 100:
            raise OptimlabError(f"invalid ns_steps: {steps!r}; valid: an integer in [1, 99]")
        check_range("eps", float(hp["eps"]), 0.0)
        if hp["ns_dtype"] not in NS_DTYPES:
            raise OptimlabError(
                f"invalid ns_dtype: {hp['ns_dtype']!r}; valid: 'bfloat16', 'float32', None"
            )
        if hp["adjust_lr_fn"] not in (None, *ADJUSTMENTS):
            raise OptimlabError(
                f"invalid adjust_lr_fn: {hp['adjust_lr_fn']!r}; "
                "valid: None, 'original', 'match_rms_adamw'"
            )
        check_betas({"betas": hp["adam_betas"]})
        check_range("adam_eps", float(hp["adam_eps"]), 0.0)
        if not isinstance(hp["flatten"], bool):
            raise OptimlabError(f"invalid flatten: {hp['flatten']!r}; valid: True, False")
        if hp["other"] not in OTHERS:
            raise OptimlabError(f"invalid other: {hp['other']!r}; valid: {', '.join(OTHERS)}")
        check_range("other_momentum", float(hp["other_momentum"]), 0.0, 1.0, high_open=True)

    def update_one(self, g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        flatten = hp["flatten"]
        if not uses_muon(hp["muon"], p, flatten):
            if hp["other"] == "nesterov":
                m = hp["other_momentum"]
                c = buffer(state, "momentum_buffer", p)
                c.mul_(m).add_(g)
                return g.add(c, alpha=m)
            adam = {
                "betas": hp["adam_betas"],
                "eps": hp["adam_eps"],
                "eps_root": 0.0,
                "amsgrad": False,
                "bias_correction": True,
            }
            return self._adam.update_one(g, p, state, adam)
        as_matrix(p, flatten)  # refuses, naming the shape, what it cannot take
        mu = hp["momentum"]
        b = buffer(state, "momentum_buffer", p)
        b.lerp_(g, 1 - mu)
        d = as_matrix(g.lerp(b, mu) if hp["nesterov"] else b, flatten)
        o = newton_schulz(
            d, hp["ns_steps"], tuple(hp["ns_coefficients"]), hp["eps"], NS_DTYPES[hp["ns_dtype"]]
        )
        return o.to(p.dtype).reshape(p.shape) * lr_ratio(d.shape, hp["adjust_lr_fn"])


def _label(group: dict[str, Any], index: int, position: int, p: Tensor) -> str:
    names = group.get("param_names")
    name = f"{names[position]!r} " if names else ""
    return f"parameter {name}(group {index}, position {position}, shape {tuple(p.shape)})"


class Muon(ChainOptimizer):
    """Muon for 2-D hidden weights, with AdamW for every other parameter.

    .. code-block:: text

        input: lr, weight_decay, momentum (mu), nesterov, ns_coefficients, ns_steps,
               eps, ns_dtype, adjust_lr_fn, muon routing, adam_betas, adam_eps
        for t = 1, 2, ...:
            Muon parameters (A x B):
                b <- mu b + (1 - mu) g
                O <- NS(nesterov ? (1 - mu) g + mu b : b)
                w <- w - lr * weight_decay * w - lr * ratio(A, B) * O
            AdamW parameters:
                w <- w - lr * weight_decay * w - lr * Adam direction (adam_betas, adam_eps)

    Defaults are torch.optim.Muon's (lr 1e-3, weight_decay 0.1, momentum 0.95, Nesterov,
    the quintic, 5 steps in bfloat16, eps 1e-7, the "original" lr adjustment); the AdamW
    parameters take torch.optim.AdamW's betas and eps, and the group's lr and weight
    decay. Which parameters go where is the group's ``muon``: "auto" (the default) sends
    2-D parameters to Muon and the rest to AdamW with the same lr; True refuses, naming
    it, a parameter that is not 2-D. ``muon_param_groups(model)`` applies the usual rule
    (hidden 2-D weights to Muon; embeddings, the output layer and all other parameters to
    AdamW, at their own lr). ``flatten=True`` lets Muon take convolution filters as
    ``(out, in k k)`` matrices (with "auto" or True); ``other="nesterov"`` gives the
    parameters Muon does not take SGD with Nesterov momentum instead of AdamW.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = QUINTIC,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        muon: bool | str = "auto",
        ns_dtype: str | None = "bfloat16",
        adam_betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        flatten: bool = False,
        other: str = "adamw",
        other_momentum: float = 0.9,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=tuple(ns_coefficients),
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
            muon=muon,
            ns_dtype=ns_dtype,
            adam_betas=adam_betas,
            adam_eps=adam_eps,
            flatten=flatten,
            other=other,
            other_momentum=other_momentum,
        )
        chain = [ScaleByMuon(), ScaleByLearningRate(), DecoupledWeightDecay()]
        super().__init__(params, chain, hp, **options)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        index = len(self.param_groups) - 1
        group = self.param_groups[index]
        if group["muon"] is True:
            for position, p in enumerate(group["params"]):
                if p.dim() != 2 and not (group["flatten"] is True and p.dim() > 2):
                    raise OptimlabError(
                        f"Muon cannot orthogonalise {_label(group, index, position, p)}: it "
                        "needs a 2-D matrix; valid: put it in a group with muon=False "
                        "(AdamW), build the groups with muon_param_groups(model), or pass "
                        "flatten=True for a convolution's (out, in, k, k) filters"
                    )


def muon_param_groups(
    model: nn.Module,
    *,
    lr: float = 0.02,
    adam_lr: float = 3e-4,
    weight_decay: float = 0.0,
    adam_weight_decay: float = 0.0,
    exclude: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Param groups for ``Muon`` by the usual rule: the 2-D weights of hidden layers to
    Muon; embeddings, the output layer, biases, gains and every other parameter to AdamW.

    The output layer is the last ``nn.Linear`` registered in ``model`` (the head);
    ``nn.Embedding`` weights are the embeddings; convolution kernels (4-D) go to AdamW, as
    torch.optim.Muon takes 2-D parameters only. The defaults are Jordan's (Muon at lr
    0.02, AdamW at 3e-4).

    Args:
        model: the network.
        lr: the Muon group's learning rate.
        adam_lr: the AdamW group's learning rate.
        weight_decay: the Muon group's decoupled weight decay.
        adam_weight_decay: the AdamW group's.
        exclude: names of further parameters to send to AdamW (as ``named_parameters``
            gives them).

    Returns:
        Up to two groups, each with ``param_names``: ``muon=True`` and ``muon=False``.
    """
    excluded = set(exclude)
    named = dict(model.named_parameters())
    unknown = excluded - set(named)
    if unknown:
        raise OptimlabError(
            f"exclude names {sorted(unknown)}, which are not parameters of the model; "
            f"valid: names from model.named_parameters(), e.g. {sorted(named)[:3]}"
        )
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears:
        head = linears[-1][0]
        excluded.add(f"{head}.weight" if head else "weight")
    for name, m in model.named_modules():
        if isinstance(m, nn.Embedding):
            excluded.add(f"{name}.weight" if name else "weight")
    hidden, rest = [], []
    for name, p in named.items():
        if not p.requires_grad:
            continue
        (hidden if p.dim() == 2 and name not in excluded else rest).append((name, p))
    groups = []
    for members, route, group_lr, decay in (
        (hidden, True, lr, weight_decay),
        (rest, False, adam_lr, adam_weight_decay),
    ):
        if members:
            groups.append(
                {
                    "params": [p for _, p in members],
                    "param_names": [n for n, _ in members],
                    "muon": route,
                    "lr": group_lr,
                    "weight_decay": decay,
                }
            )
    return groups
