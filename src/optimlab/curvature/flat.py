"""Parameters as one flat vector and back.

Curvature matrices act on the concatenation of all parameters, in the order the
parameters are given (a module's ``named_parameters`` order for a dict). A parameter
collection is either a mapping name -> tensor (what ``torch.func.functional_call``
takes) or a sequence of tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from optimlab.errors import OptimlabError

Params = Mapping[str, Tensor] | Sequence[Tensor]


def leaves(params: Params) -> list[Tensor]:
    """The tensors of ``params``, in order."""
    if isinstance(params, Mapping):
        return list(params.values())
    return list(params)


def numel(params: Params) -> int:
    """The number of scalars in ``params``: the side of its curvature matrices."""
    return sum(t.numel() for t in leaves(params))


def flatten(params: Params) -> Tensor:
    """All tensors of ``params`` concatenated into one vector."""
    tensors = leaves(params)
    if not tensors:
        return torch.zeros(0)
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: Tensor, like: Params) -> Params:
    """``vector`` cut into tensors shaped like ``like``, in the same structure (a dict
    for a mapping, a list otherwise). The pieces are views of ``vector``."""
    size = numel(like)
    if vector.shape != (size,):
        raise OptimlabError(
            f"invalid vector: shape {tuple(vector.shape)} for parameters of {size} entries"
        )
    pieces: list[Tensor] = []
    offset = 0
    for t in leaves(like):
        pieces.append(vector[offset : offset + t.numel()].view_as(t))
        offset += t.numel()
    if isinstance(like, Mapping):
        return dict(zip(like.keys(), pieces, strict=True))
    return pieces
