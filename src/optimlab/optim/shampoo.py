"""Shampoo (Gupta, Koren & Singer 2018, "Shampoo: Preconditioned Stochastic Tensor
Optimization"), in the form of the pytorch-optimizer package's ``Shampoo``:
``ShampooMomentum``, ``ScaleByShampoo`` and ``Shampoo``.

A tensor of order ``k`` keeps one statistic per dimension, ``H_i = eps I + sum_s
G_(i) G_(i)^T`` (``G_(i)`` the gradient unfolded along dimension ``i``), and its step
is the gradient multiplied along every dimension by ``H_i^(-1/(2k))``: for a matrix,
``L^(-1/4) G R^(-1/4)``, for a vector ``H^(-1/2) g`` (full-matrix AdaGrad).

Momentum comes in three conventions (``momentum_form``): the reference's blend of the
gradient with the previous preconditioned step (the default), and the gradient
average of the authors' TensorFlow implementation, as heavy-ball momentum or as an
exponential moving average.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.decay import AddWeightDecay, DecoupledWeightDecay
from optimlab.optim.lamb import check_flag
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, buffer, step_of
from optimlab.optim.variant import ChainVariant


def inverse_root(matrix: Tensor, root: float) -> Tensor:
    """``matrix^(-1/root)`` of a symmetric positive definite matrix, by its singular
    value decomposition, computed in float64 for float64 input and float32 otherwise
    (the reference's method; the singular values of an SPD matrix are its
    eigenvalues)."""
    dtype = torch.float64 if matrix.dtype == torch.float64 else torch.float32
    u, s, vh = torch.linalg.svd(matrix.to(dtype), full_matrices=False)
    return ((u * s.pow(-1.0 / root).unsqueeze(-2)) @ vh).to(matrix.dtype)


def mode_product(x: Tensor, matrix: Tensor, dim: int) -> Tensor:
    """``x`` multiplied along dimension ``dim`` by ``matrix``:
    ``y[.., i, ..] = sum_j matrix[i, j] x[.., j, ..]``."""
    return torch.movedim(torch.tensordot(matrix, x, dims=([1], [dim])), 0, dim)


MOMENTUM_FORMS = ("blend", "heavy_ball", "ema")


class ShampooMomentum(Transform):
    """The reference's momentum (``momentum_form="blend"``): the gradient blended with
    the previous preconditioned step.

    .. code-block:: text

        u <- (1 - mu) u + mu b        (b: the last step ScaleByShampoo returned;
                                       at t = 1, b = u, so nothing changes)

    Hyperparameters:
        momentum: ``mu`` in [0, 1) (0, the default, turns it off).
        momentum_form: ``"blend"`` (this transform, the default), ``"heavy_ball"`` or
            ``"ema"`` (a gradient average kept by ``ScaleByShampoo``; this transform
            then passes ``u`` through).

    State:
        momentum_buffer: ``b``, written by ``ScaleByShampoo`` (kept only when mu > 0).

    This is pytorch-optimizer's convention (inherited from its earlier Shampoo code):
    the buffer holds the preconditioned direction, not a trace of gradients, and the
    blend is an interpolation, not torch's ``mu b + g``. The paper's algorithm box has
    no momentum.

    References:
        pytorch-optimizer's Shampoo.
    """

    defaults = {"momentum": 0.0, "momentum_form": "blend"}
    state_keys = ("momentum_buffer",)

    def validate(self, hp: Hyper) -> None:
        check_range("momentum", float(hp["momentum"]), 0.0, 1.0, high_open=True)
        if hp["momentum_form"] not in MOMENTUM_FORMS:
            raise OptimlabError(
                f"invalid momentum_form: {hp['momentum_form']!r}; valid: "
                + ", ".join(repr(form) for form in MOMENTUM_FORMS)
            )

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        mu = hp["momentum"]
        buf = state.get("momentum_buffer")
        if mu == 0 or buf is None or hp["momentum_form"] != "blend":
            return u
        return torch.lerp(u, buf, mu)


class ScaleByShampoo(Transform):
    """Shampoo's preconditioning: one statistic per dimension, the update multiplied along
    each dimension by its inverse ``2k``-th root.

    .. code-block:: text

        k = order of the tensor
        for each dimension i:  H_i <- H_i + U_(i) U_(i)^T,   H_i initially eps I
        every f-th step:       P_i = H_i^(-1/(2k))             (by SVD, float64 or float32)
        m <- mu m + u  (heavy_ball)  or  mu m + (1 - mu) u  (ema);  m = 0 initially
        u <- d x_1 P_1 x_2 P_2 ... x_k P_k                     (x_i: product along dim i;
                                                                 d = m, or u for blend)

    Hyperparameters:
        matrix_eps: ``eps`` > 0, the statistics' initial ``eps I`` (default 1e-6, the
            reference's; the paper's epsilon plays the same role).
        precondition_frequency: ``f`` >= 1, steps between recomputations of the roots
            (default 1; the reference's ``preconditioning_compute_steps``).
        precondition_at_start: compute the roots at steps ``1, 1+f, ...`` instead of
            ``f, 2f, ...`` (default False, the reference's convention: until step ``f``
            the roots are zero matrices, and the first ``f - 1`` steps do not move).

    Its state is one pair of matrices per dimension ``i`` of size ``n_i``, so its keys
    are numbered: ``pre_cond_i`` (``H_i``) and ``inv_pre_cond_i`` (``P_i``), each
    ``n_i x n_i`` (the reference's names).

    A scalar (order 0) has no statistic: its update is ``u`` itself (or ``m``). The
    statistics are accumulated from the incoming ``u``: after momentum and coupled
    weight decay for ``"blend"``, as the reference does; for ``"heavy_ball"`` and
    ``"ema"`` the gradient (with coupled decay) before it enters the average ``m``
    (state ``momentum_buffer``), which is what gets preconditioned, as in the authors'
    TensorFlow ``ShampooOptimizer`` (its ``gbar``). Roots act on whole matrices, so
    the rule is not elementwise.

    References:
        Gupta, Koren & Singer 2018, Algorithm 2; pytorch-optimizer's Shampoo.
    """

    elementwise = False
    defaults = {"matrix_eps": 1e-6, "precondition_frequency": 1, "precondition_at_start": False}

    def validate(self, hp: Hyper) -> None:
        check_range("matrix_eps", float(hp["matrix_eps"]), 0.0, low_open=True)
        check_positive_int(hp, "precondition_frequency")
        check_flag(hp, "precondition_at_start")

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        order = u.dim()
        t = int(step_of(state))
        frequency = hp["precondition_frequency"]
        offset = 1 if hp["precondition_at_start"] else 0
        recompute = (t - offset) % frequency == 0
        mu, form = hp.get("momentum", 0), hp.get("momentum_form", "blend")
        out = u
        if mu > 0 and form != "blend":
            # the gradient average of the authors' implementation (gbar): preconditioned
            # in place of u, while the statistics below accumulate u itself
            out = buffer(state, "momentum_buffer", u)
            out.mul_(mu).add_(u, alpha=1.0 if form == "heavy_ball" else 1.0 - mu)
            out = out.clone()  # the state stays apart from the update handed on
        for i, n in enumerate(u.shape):
            stat = state.get(f"pre_cond_{i}")
            if stat is None:
                stat = torch.eye(n, dtype=u.dtype, device=u.device).mul_(hp["matrix_eps"])
                state[f"pre_cond_{i}"] = stat
                state[f"inv_pre_cond_{i}"] = u.new_zeros(n, n)
            unfolded = u.movedim(i, 0).reshape(n, u.numel() // n if n else 0)
            stat.addmm_(unfolded, unfolded.t())
            root = state[f"inv_pre_cond_{i}"]
            if recompute:
                root.copy_(inverse_root(stat, 2 * order))
            out = mode_product(out, root, i)
        if mu > 0 and form == "blend":
            # what ShampooMomentum blends into the next step's gradient
            state["momentum_buffer"] = out.clone() if out is u else out
        return out


class Shampoo(ChainVariant):
    """Shampoo: the gradient preconditioned along each dimension by the inverse ``2k``-th
    root of that dimension's accumulated gradient outer products.

    .. code-block:: text

        input: lr, momentum (mu), weight_decay (wd), matrix_eps (eps),
               precondition_frequency (f)
        H_i = eps I for each dimension i of each tensor of order k
        for t = 1, 2, ...:
            g <- (1 - mu) g + mu u_{t-1}     (if mu > 0, blend; u_0 = g_1)
            g <- g + wd w                     (coupled, the default)
            H_i <- H_i + g_(i) g_(i)^T
            P_i <- H_i^(-1/(2k))              (when t % f == 0)
            d = g                             (blend, or mu = 0)
            d = m <- mu m + g                 (heavy_ball; m_0 = 0)
            d = m <- mu m + (1 - mu) g        (ema; m_0 = 0)
            u_t = d x_1 P_1 ... x_k P_k
            w <- w - lr u_t      (- lr wd w when decoupled_weight_decay)

    Defaults are pytorch-optimizer's Shampoo (lr 1e-3, no momentum, no weight decay,
    matrix_eps 1e-6, roots every step), whose conventions it follows: momentum blends
    the previous *preconditioned* step into the gradient (``ShampooMomentum``); the
    statistics see the gradient after momentum and coupled decay; the roots come from
    an SVD; with ``f > 1`` they are zero until step ``f`` (``precondition_at_start=True``
    computes them at step 1 instead, as the paper's every-step algorithm starts). In
    float32 an ``eps`` below the statistic's resolution (about 1e-7 of its largest
    entry) is lost in the sum, and a statistic of deficient rank (equal gradient
    entries, or fewer steps than its size) then has an infinite root and the step is
    NaN, in the reference as here: raise ``matrix_eps`` with the gradients' scale. The
    paper's algorithm box has neither momentum nor weight decay.

    ``momentum_form`` selects the momentum convention: ``"blend"`` (the default, the
    reference's, above); ``"heavy_ball"``, classic momentum ``m <- mu m + g`` (torch's
    SGD form); ``"ema"``, the exponential average ``m <- mu m + (1 - mu) g``, without
    bias correction. The last two are the authors' TensorFlow ``ShampooOptimizer``
    (``gbar = gbar_decay gbar + gbar_weight g``, with ``gbar_weight`` 1 or ``1 - mu``):
    the average, not the gradient, is preconditioned, and the statistics accumulate
    the gradient itself. On a steady gradient ``ema``'s average tends to the gradient
    (its first steps are smaller, by ``1 - mu^t``: no bias correction) and
    ``heavy_ball``'s to ``1 / (1 - mu)`` times it. Not offered: the
    grafting, blocking and Schur-Newton roots of the reference's ``ScalableShampoo``
    (distributed Shampoo); its plain ``Shampoo`` has none of them.

    Memory: ``2 (n_1^2 + ... + n_k^2)`` numbers per tensor (statistic and root), plus one
    parameter-sized buffer with momentum.
    """

    structural = ("decoupled_weight_decay",)
    #: ``fast=True`` is refused: the roots are SVDs, recomputed on a step-count condition
    supports_fast = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        matrix_eps: float = 1e-6,
        precondition_frequency: int = 1,
        precondition_at_start: bool = False,
        momentum_form: str = "blend",
        **options: Any,
    ) -> None:
        refuse_fast("Shampoo", options)
        check_flag({"decoupled_weight_decay": decoupled_weight_decay}, "decoupled_weight_decay")
        hp = dict(
            lr=lr,
            momentum=momentum,
            momentum_form=momentum_form,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            matrix_eps=matrix_eps,
            precondition_frequency=precondition_frequency,
            precondition_at_start=precondition_at_start,
        )
        if decoupled_weight_decay:
            chain = [
                ShampooMomentum(),
                ScaleByShampoo(),
                ScaleByLearningRate(),
                DecoupledWeightDecay(),
            ]
        else:
            chain = [ShampooMomentum(), AddWeightDecay(), ScaleByShampoo(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)


def refuse_fast(name: str, options: dict[str, Any]) -> None:
    """Refuse ``fast=True`` for a rule built on matrix decompositions (and drop the
    option)."""
    if options.pop("fast", False):
        raise OptimlabError(
            f"invalid fast=True for {name}: its preconditioners are matrix decompositions "
            f"recomputed on a step-count condition, which the compiled chain does not run; "
            f"valid: False"
        )


def check_positive_int(hp: Hyper, key: str) -> None:
    """Refuse a count that is not an integer >= 1, naming it."""
    value = hp[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptimlabError(f"invalid {key}: {value!r}; valid: an integer >= 1")
