"""Kronecker factors of a layer's Fisher block: K-FAC (Martens & Grosse 2015) for
``nn.Linear`` and KFC (Grosse & Martens 2016) for ``nn.Conv2d``.

A layer computes ``s = W_bar a_bar`` at each of its ``T`` positions (``T = 1`` for a
dense layer on ``(B, d)`` inputs; the output pixels for a convolution, whose input
vectors are the patches ``torch.nn.functional.unfold`` extracts; the middle dimensions
for a dense layer on ``(B, ..., d)``), with ``W_bar = [W | b]`` (the weight as an
``out x d`` matrix, the bias as its last column) and ``a_bar = [a; 1]`` (the
homogeneous coordinate last; no bias, no coordinate). Example ``i``'s gradient is
``sum_t g_it a_it^T`` with ``g_it = N dL/ds_it`` (the derivative of its own loss term,
``L`` the mean over the ``N`` examples). The Fisher block of ``W_bar`` is approximated
by a Kronecker product of two small matrices::

    A = 1/N  sum_i sum_t a_it a_it^T         (d+1) x (d+1), a sum over positions
    G = 1/(N T) sum_i sum_t g_it g_it^T       out x out, a mean over positions
    F_W ~ G (x) A   for W_bar flattened row by row (torch's order; A (x) G for
                    the column-major vec of the papers)

which is exact for one example at one position (then ``F_W = vec(g a^T) vec(g a^T)^T``);
for convolutions it is KFC's ``Omega (x) Gamma`` (spatial sum in ``A``, spatial mean in
``G``: spatially uncorrelated derivatives). Then ``F_W^-1 vec(V) = vec(G^-1 V A^-1)``.

Factored Tikhonov damping (Martens & Grosse, sec. 6.3): ``F + lambda I`` is replaced by
``(G + sqrt(lambda)/pi I) (x) (A + pi sqrt(lambda) I)`` with
``pi = sqrt((tr A / dim A) / (tr G / dim G))``, which splits the damping between the
factors in proportion to their average eigenvalues.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from optimlab.errors import OptimlabError

LAYER_TYPES = (nn.Linear, nn.Conv2d)


def unsupported(module: nn.Module) -> str:
    """Why the factors here do not apply to ``module`` ('' if they do)."""
    if not isinstance(module, LAYER_TYPES):
        return f"a {type(module).__name__} (K-FAC knows nn.Linear and nn.Conv2d)"
    if isinstance(module, nn.Conv2d) and module.groups != 1:
        return f"a Conv2d with groups={module.groups} (K-FAC here takes groups=1)"
    return ""


def input_rows(module: nn.Module, a: Tensor, bias: bool) -> Tensor:
    """``(N T, d [+1])``: the layer's input vectors ``a_it`` (patches for a convolution)
    with the homogeneous coordinate 1 appended when ``bias``."""
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            # as the layer pads: its own mode, or 'same' (possibly uneven)
            mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
            a = F.pad(a, module._reversed_padding_repeated_twice, mode=mode)
            padding: tuple[int, ...] | int = 0
        else:
            padding = module.padding
        patches = F.unfold(a, module.kernel_size, module.dilation, padding, module.stride)
        rows = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    else:
        rows = a.reshape(-1, a.shape[-1])
    if bias:
        rows = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
    return rows


def output_rows(module: nn.Module, grad: Tensor) -> Tensor:
    """``(N T, out)``: the gradients at the layer's output, one row per position."""
    if isinstance(module, nn.Conv2d):
        return grad.flatten(2).transpose(1, 2).reshape(-1, grad.shape[1])
    return grad.reshape(-1, grad.shape[-1])


def input_factor(rows: Tensor, examples: int) -> Tensor:
    """``A = 1/N sum_rows a a^T`` (a sum over positions)."""
    return rows.T @ rows / examples


def output_factor(rows: Tensor, examples: int) -> Tensor:
    """``G = 1/(N T) sum_rows g g^T`` with ``g = N * row``: the rows are gradients of the
    mean loss, ``N`` times which is each example's own (a mean over positions)."""
    return rows.T @ rows * (examples * examples / rows.shape[0])


def damping_split(a: Tensor, g: Tensor) -> float:
    """``pi = sqrt((tr A / dim A) / (tr G / dim G))``; 1 where a trace is 0."""
    mean_a = float(a.diagonal().mean())
    mean_g = float(g.diagonal().mean())
    if mean_a > 0 and mean_g > 0 and math.isfinite(mean_a / mean_g):
        return math.sqrt(mean_a / mean_g)
    return 1.0


def spd_inverse(m: Tensor, what: str) -> Tensor:
    """The inverse of a symmetric positive-definite matrix, through its Cholesky factor."""
    factor, info = torch.linalg.cholesky_ex(m)
    if int(info) != 0:
        raise OptimlabError(
            f"K-FAC: the damped factor {what} is not positive definite (non-finite "
            f"statistics?); check the loss, or raise damping"
        )
    return torch.cholesky_inverse(factor)


def damped_inverses(a: Tensor, g: Tensor, damping: float, name: str) -> tuple[Tensor, Tensor]:
    """``((A + pi sqrt(lambda) I)^-1, (G + sqrt(lambda)/pi I)^-1)`` (factored Tikhonov)."""
    pi = damping_split(a, g)
    root = math.sqrt(damping)
    eye_a = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    eye_g = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
    return (
        spd_inverse(a + (pi * root) * eye_a, f"A of {name}"),
        spd_inverse(g + (root / pi) * eye_g, f"G of {name}"),
    )


def precondition(matrix: Tensor, a_inv: Tensor, g_inv: Tensor) -> Tensor:
    """``G^-1 V A^-1``: ``(G (x) A)^-1`` applied to ``V`` flattened row by row."""
    return g_inv @ matrix @ a_inv


class Workspace:
    """Buffers that the per-step products write into, kept from step to step, so that
    a step allocates no weight-sized matrices of its own."""

    def __init__(self) -> None:
        self._buffers: dict[object, Tensor] = {}

    def get(self, key: object, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """An uninitialized ``shape`` tensor of ``like``'s dtype and device, the same one
        for the same key while those stay."""
        buf = self._buffers.get(key)
        if (
            buf is None
            or buf.shape != shape
            or buf.dtype != like.dtype
            or buf.device != like.device
        ):
            buf = self._buffers[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf

    def clear(self) -> None:
        """Drop the buffers."""
        self._buffers.clear()


def precondition_gradient(
    out_rows: Tensor,
    in_rows: Tensor,
    a_inv: Tensor,
    g_inv: Tensor,
    v_weight: Tensor,
    v_bias: Tensor | None,
    workspace: Workspace | None = None,
    key: object = None,
) -> tuple[Tensor, Tensor | None]:
    """``G^-1 V A^-1`` for ``V = [v_weight | v_bias] = out_rows^T [in_rows | 1]`` (the
    gradient a layer's outputs send back to ``[W | b]``), as ``(o x d, o or None)``, with
    the products in the cheaper order: ``(out_rows G^-1)^T ([in_rows | 1] A^-1)`` costs
    ``R (o^2 + d^2 + o d)`` for ``R`` rows, ``o`` outputs and ``d`` inputs, ``G^-1 V A^-1``
    costs ``o d (o + d)``. The column of 1s is never formed: it contributes the last row
    of ``A^-1``. The products go into ``workspace``'s buffers under ``key`` (so the
    result is overwritten by the next call with the same key), or new tensors."""
    rows, o = out_rows.shape
    d = a_inv.shape[0]
    space = workspace if workspace is not None else Workspace()
    d_w = space.get((key, "D"), (o, v_weight.shape[1]), v_weight)
    if rows * (o * o + d * d + o * d) < o * d * (o + d):
        # E G^-1 (R x o), used transposed
        left = torch.mm(out_rows, g_inv, out=space.get((key, "EG"), (rows, o), out_rows)).T
        if v_bias is None:
            right = torch.mm(in_rows, a_inv, out=space.get((key, "AA"), (rows, d), in_rows))
            return torch.mm(left, right, out=d_w), None
        # [in_rows | 1] A^-1, its weight columns and its bias column
        right_w = torch.addmm(a_inv[-1, :-1], in_rows, a_inv[:-1, :-1],
                              out=space.get((key, "AA"), (rows, d - 1), in_rows))  # fmt: skip
        right_b = torch.addmv(a_inv[-1, -1], in_rows, a_inv[:-1, -1])
        return torch.mm(left, right_w, out=d_w), left @ right_b
    if v_bias is None:
        va = torch.mm(v_weight, a_inv, out=space.get((key, "VA"), tuple(v_weight.shape), v_weight))
        return torch.mm(g_inv, va, out=d_w), None
    # [v_weight | v_bias] A^-1, its weight columns and its bias column
    va_w = torch.mm(v_weight, a_inv[:-1, :-1],
                    out=space.get((key, "VA"), tuple(v_weight.shape), v_weight))  # fmt: skip
    va_w.addr_(v_bias, a_inv[-1, :-1])
    va_b = torch.addmv(v_bias * a_inv[-1, -1], v_weight, a_inv[:-1, -1])
    return torch.mm(g_inv, va_w, out=d_w), g_inv @ va_b
