"""SOAP (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"), in the
form of the pytorch-optimizer package's ``SOAP``: ``ScaleBySoap``, ``DecayMovedWeights``
and ``Soap``.

Adam run in the eigenbasis of Shampoo's preconditioner: each dimension ``i`` of a tensor
keeps a running average ``GG_i`` of the gradient's outer products along it, and an
orthogonal basis ``Q_i`` of its eigenvectors, refreshed every ``f`` steps by one step
of power iteration and a QR decomposition. The second moment lives in the rotated
coordinates; the first moment stays in the original ones and is rotated each step.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import DecoupledWeightDecay
from optimlab.optim.lamb import check_flag
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.shampoo import check_positive_int, refuse_fast
from optimlab.optim.transform import Hyper, Transform, learning_rate, step_of


def _rotate(x: Tensor, bases: list[Tensor | None], inverse: bool = False) -> Tensor:
    """``x`` multiplied along each dimension ``i`` by ``Q_i^T`` (``Q_i`` when
    ``inverse``); a dimension without a basis (None) is left as it is.

    Each contraction takes the leading dimension and appends the result last, so after
    all of them the dimensions are back in order.
    """
    for basis in bases:
        if basis is None:
            x = x.permute(*range(1, x.dim()), 0)
        else:
            x = torch.tensordot(x, basis, dims=([0], [1 if inverse else 0]))
    return x


def _eigenbasis(matrix: Tensor) -> Tensor:
    """The eigenvectors of a symmetric matrix, by decreasing eigenvalue (a 1e-30 shift of
    the diagonal, as the reference and the authors' code, keeps ``eigh`` off an exact
    zero matrix)."""
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    _, vectors = torch.linalg.eigh(matrix + 1e-30 * eye)
    return torch.flip(vectors, dims=[1])


class ScaleBySoap(Transform):
    """SOAP's direction: Adam's ratio computed in the eigenbasis of Shampoo's
    preconditioner and rotated back.

    .. code-block:: text

        t = 1 (statistics only, no move):
            GG_i <- lerp(GG_i, U_(i) U_(i)^T, 1 - b_s);   Q_i = eigh(GG_i), descending
            u <- 0
        t >= 2, s = t - 1:
            m <- lerp(m, u, 1 - b1)                          (original coordinates)
            v <- lerp(v, rot(u)^2, 1 - b2)                   (rotated: rot(x) = x x_i Q_i^T)
            d = rot^-1( rot(m) / (sqrt(v) + eps) )
            d <- d / (sqrt(mean(d^2)) + eps)                 (if normalize_gradient)
            u <- d sqrt(1 - b2^s) / (1 - b1^s)               (1 if not correct_bias)
            GG_i <- lerp(GG_i, U_(i) U_(i)^T, 1 - b_s)
            every f-th s: Q_i <- QR(GG_i Q_i) with the columns ordered by the estimated
                          eigenvalues diag(Q_i^T GG_i Q_i), v permuted to match

    ``U_(i)`` is the incoming update unfolded along dimension ``i``. A dimension larger
    than ``max_precondition_dim``, a 1-D tensor unless ``precondition_1d``, and a scalar
    keep the identity basis (plain Adam there).

    Hyperparameters:
        betas: ``(b1, b2)`` (default (0.95, 0.95), the reference's and the authors').
        shampoo_beta: ``b_s`` in [0, 1), or None for ``b2`` (the default).
        eps: ``eps`` >= 0, added to ``sqrt(v)`` (default 1e-8).
        precondition_frequency: ``f`` >= 1 (default 10).
        max_precondition_dim: the largest dimension given a basis (default 10000).
        precondition_1d: give 1-D tensors a basis too (default False).
        correct_bias: Adam's bias correction (default True).
        normalize_gradient: divide the direction by its RMS (default False).
        float32_qr: compute the QR decomposition in float32 whatever the dtype, as the
            reference and the authors' code do (default True); False keeps the
            parameter's dtype (a float64 run then refreshes its bases in float64).

    State:
        exp_avg: ``m``.
        exp_avg_sq: ``v``, in the rotated coordinates.

    Each dimension ``i`` with a basis adds two numbered ``n_i x n_i`` entries,
    ``GG_i`` and ``Q_i`` (the reference keeps them as lists ``GG`` and ``Q``).

    The bias correction counts ``s = t - 1`` moves (the first step only collects
    statistics). Bases act on whole dimensions, so the rule is not elementwise.

    References:
        Vyas et al. 2024, Algorithm 3; pytorch-optimizer's SOAP.
    """

    elementwise = False
    defaults = {
        "betas": (0.95, 0.95),
        "shampoo_beta": None,
        "eps": 1e-8,
        "precondition_frequency": 10,
        "max_precondition_dim": 10000,
        "precondition_1d": False,
        "correct_bias": True,
        "normalize_gradient": False,
        "float32_qr": True,
    }
    state_keys = ("exp_avg", "exp_avg_sq")

    def validate(self, hp: Hyper) -> None:
        betas = hp["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise OptimlabError(f"invalid betas: {betas!r}; expected a pair (b1, b2)")
        check_range("betas[0]", float(betas[0]), 0.0, 1.0, high_open=True)
        check_range("betas[1]", float(betas[1]), 0.0, 1.0, high_open=True)
        if hp["shampoo_beta"] is not None:
            check_range("shampoo_beta", float(hp["shampoo_beta"]), 0.0, 1.0, high_open=True)
        check_range("eps", float(hp["eps"]), 0.0)
        check_positive_int(hp, "precondition_frequency")
        check_positive_int(hp, "max_precondition_dim")
        for key in ("precondition_1d", "correct_bias", "normalize_gradient", "float32_qr"):
            check_flag(hp, key)

    @staticmethod
    def _has_basis(u: Tensor, hp: Hyper) -> list[bool]:
        if u.dim() == 1 and not hp["precondition_1d"]:
            return [False]
        return [n <= hp["max_precondition_dim"] for n in u.shape]

    def _accumulate(self, u: Tensor, state: dict, hp: Hyper) -> None:
        beta = hp["shampoo_beta"]
        beta = hp["betas"][1] if beta is None else beta
        for i, _ in enumerate(u.shape):
            stat = state.get(f"GG_{i}")
            if stat is None:
                continue
            others = [*chain(range(i), range(i + 1, u.dim()))]
            stat.lerp_(torch.tensordot(u, u, dims=[others, others]), 1.0 - beta)

    def _bases(self, state: dict, dims: int) -> list[Tensor | None]:
        return [state.get(f"Q_{i}") for i in range(dims)]

    def _refresh(self, state: dict, hp: Hyper) -> None:
        """One power-iteration step and QR for every basis, the columns (and ``v``'s
        entries along that dimension) ordered by the estimated eigenvalues."""
        v = state["exp_avg_sq"]
        for i in range(v.dim()):
            stat, basis = state.get(f"GG_{i}"), state.get(f"Q_{i}")
            if stat is None:
                continue
            product = stat @ basis
            order = torch.argsort((basis * product).sum(dim=0), descending=True)
            v = v.index_select(i, order)
            power = product.index_select(1, order)
            qr_dtype = torch.float32 if hp["float32_qr"] else power.dtype
            q, _ = torch.linalg.qr(power.to(qr_dtype))
            state[f"Q_{i}"] = q.to(power.dtype)
        state["exp_avg_sq"] = v

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        t = int(step_of(state))
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(u)
            state["exp_avg_sq"] = torch.zeros_like(u)
            for i, (n, on) in enumerate(zip(u.shape, self._has_basis(u, hp))):
                if on:
                    state[f"GG_{i}"] = u.new_zeros(n, n)
            self._accumulate(u, state, hp)
            for i in range(u.dim()):
                if f"GG_{i}" in state:
                    state[f"Q_{i}"] = _eigenbasis(state[f"GG_{i}"])
            return torch.zeros_like(u)
        beta1, beta2 = hp["betas"]
        eps = hp["eps"]
        s = t - 1
        bases = self._bases(state, u.dim())
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(u, 1.0 - beta1)
        v.lerp_(_rotate(u, bases).square(), 1.0 - beta2)
        direction = _rotate(_rotate(m, bases) / (v.sqrt() + eps), bases, inverse=True)
        if hp["normalize_gradient"]:
            direction = direction / (direction.square().mean().sqrt() + eps)
        if hp["correct_bias"]:
            direction = direction * ((1.0 - beta2**s) ** 0.5 / (1.0 - beta1**s))
        self._accumulate(u, state, hp)
        if s % hp["precondition_frequency"] == 0:
            self._refresh(state, hp)
        return direction


class DecayMovedWeights(DecoupledWeightDecay):
    """Decoupled weight decay applied to the weights after the move, skipped on the
    first step (SOAP's, which only collects statistics).

    .. code-block:: text

        u <- u - lr_t * wd * (w + u)         (t >= 2; w <- (w + u)(1 - lr_t wd))

    Hyperparameters:
        weight_decay: ``wd`` >= 0 (default 1e-2, the reference's).
        lr: ``lr_t``, the group's learning rate.

    The reference shrinks the weights after the step, not before (AdamW's order):
    the two differ by ``lr^2 wd`` times the step, hence a transform of its own.

    References:
        pytorch-optimizer's SOAP; Vyas et al. 2024's code.
    """

    # the hyperparameters, their defaults and checks are DecoupledWeightDecay's

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        wd = hp["weight_decay"]
        if wd == 0 or int(step_of(state)) == 1:
            return u
        return u - (learning_rate(hp, state) * wd) * (p + u)


class Soap(ChainOptimizer):
    """SOAP: Adam in the eigenbasis of Shampoo's preconditioner, the basis refreshed every
    ``precondition_frequency`` steps.

    .. code-block:: text

        input: lr, betas (b1, b2), shampoo_beta (b_s), eps, weight_decay (wd),
               precondition_frequency (f)
        t = 1: GG_i = (1 - b_s) G_(i) G_(i)^T, Q_i = eigenvectors of GG_i; no move
        t >= 2, s = t - 1:
            m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) (g x_i Q_i^T)^2
            d = (m x_i Q_i^T) / (sqrt(v) + eps), rotated back by x_i Q_i
            w <- w - lr sqrt(1 - b2^s) / (1 - b1^s) d
            w <- w (1 - lr wd)
            GG_i <- b_s GG_i + (1 - b_s) G_(i) G_(i)^T
            Q_i <- QR(GG_i Q_i) when s % f == 0   (v's entries reordered with Q_i's columns)

    Defaults are pytorch-optimizer's SOAP (lr 3e-3, betas (0.95, 0.95), shampoo_beta
    None = b2, eps 1e-8, weight_decay 1e-2, f 10, 1-D tensors unrotated, dimensions up
    to 10000 rotated), which follows the authors' code: the first step collects
    statistics only, the bias correction counts moves, the decay shrinks the weights
    after the move, and the QR runs in float32 (``float32_qr``). Not offered: the
    reference's ``merge_dims`` and ``data_format`` (reshaping a tensor before its
    bases are taken).

    Memory: two parameter-sized moments plus ``2 n_i^2`` numbers for each rotated
    dimension of size ``n_i``.
    """

    supports_fast = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        precondition_frequency: int = 10,
        max_precondition_dim: int = 10000,
        precondition_1d: bool = False,
        correct_bias: bool = True,
        normalize_gradient: bool = False,
        float32_qr: bool = True,
        **options: Any,
    ) -> None:
        refuse_fast("SOAP", options)
        hp = dict(
            lr=lr,
            betas=betas,
            shampoo_beta=shampoo_beta,
            eps=eps,
            weight_decay=weight_decay,
            precondition_frequency=precondition_frequency,
            max_precondition_dim=max_precondition_dim,
            precondition_1d=precondition_1d,
            correct_bias=correct_bias,
            normalize_gradient=normalize_gradient,
            float32_qr=float32_qr,
        )
        chain = [ScaleBySoap(), ScaleByLearningRate(), DecayMovedWeights()]
        super().__init__(params, chain, hp, **options)
