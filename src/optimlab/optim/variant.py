"""Optimizers whose chain depends on a constructor flag.

Some conventions change where a transform sits in the chain, not what one transform
computes: coupled L2 decay goes before the adaptive rule, decoupled decay after the
learning-rate scaling (RAdam's ``decoupled_weight_decay``, LAMB's ``weight_decouple``).
One optimizer holds one chain, so such a flag is fixed at construction: it is kept in
every param group (so that ``state_dict`` records it, as torch.optim does), and a group
that asks for the other value is refused rather than silently run with the wrong chain.
"""

from __future__ import annotations

from typing import Any, ClassVar

from optimlab.errors import OptimlabError
from optimlab.optim.base import ChainOptimizer


class ChainVariant(ChainOptimizer):
    """A ``ChainOptimizer`` whose ``structural`` hyperparameters chose its chain.

    Subclasses list them in ``structural``; each param group must keep the
    constructor's value.
    """

    #: hyperparameters that choose the chain, fixed per optimizer
    structural: ClassVar[tuple[str, ...]] = ()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for key in self.structural:
            if group[key] != self.defaults[key]:
                raise OptimlabError(
                    f"invalid {key}={group[key]!r} in a param group of "
                    f"{type(self).__name__}: it chooses the chain, one per optimizer; "
                    f"valid: {self.defaults[key]!r} (the constructor's), or a second optimizer"
                )
