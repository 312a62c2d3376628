"""Bad input to the optimizers that came after the lectures: a one-line error naming the
argument and what is valid."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo
from optimlab.errors import OptimlabError


def params():
    return [torch.zeros(3, requires_grad=True)]


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: oo.RAdam(params(), betas=(0.9, 1.0)), r"betas\[1\].*\[0, 1\)"),
        (lambda: oo.RAdam(params(), eps=-1.0), r"invalid eps"),
        (lambda: oo.RAdam(params(), rho_threshold=3.0), r"rho_threshold: 3.0; valid range is \[4"),
        (
            lambda: oo.RAdam(
                [{"params": params()}, {"params": params(), "decoupled_weight_decay": True}]
            ),
            r"invalid decoupled_weight_decay=True in a param group of RAdam.*valid: False",
        ),
    ],
)
def test_invalid_input_raises_naming_the_argument(build, match):
    with pytest.raises(OptimlabError, match=match):
        build()
