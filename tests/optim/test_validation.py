"""Invalid hyperparameters raise ValueError at construction, naming the argument
and the valid range or names."""

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
        (lambda: oo.SGD(params(), lr=-0.1), r"lr: -0.1; valid range is \[0, inf\]"),
        (lambda: oo.Adam(params(), lr=-1e-3), r"invalid lr"),
        (lambda: oo.Adam(params(), betas=(1.0, 0.999)), r"betas\[0\].*\[0, 1\)"),
        (lambda: oo.Adam(params(), betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda: oo.Adam(params(), betas=0.9), r"betas.*pair"),
        (lambda: oo.Adam(params(), eps=-1e-8), r"invalid eps: "),
        (lambda: oo.Adagrad(params(), eps=-1.0), r"invalid eps: "),
        (lambda: oo.RMSprop(params(), eps=-1.0), r"invalid eps: "),
        (lambda: oo.RMSprop(params(), alpha=1.5), r"invalid alpha"),
        (lambda: oo.Adadelta(params(), rho=-0.1), r"invalid rho"),
        (lambda: oo.SGD(params(), momentum=1.0), r"momentum.*\[0, 1\)"),
        (lambda: oo.SGD(params(), nesterov=True), r"nesterov"),
        (lambda: oo.SGD(params(), weight_decay=-1.0), r"weight_decay"),
        (lambda: oo.SGD(params(), convention="keras"), r"convention.*torch.*lecture"),
        (lambda: oo.Adamax(params(), eps_mode="inside"), r"eps_mode.*max.*denominator"),
        (lambda: oo.Adagrad(params(), lr_decay=-1.0), r"lr_decay"),
        (lambda: oo.Adam(params(), clip_norm=0.0), r"clip_norm: 0.0; valid range is \(0"),
        (lambda: oo.Adam(params(), clip_value=-1.0), r"clip_value"),
        (lambda: oo.Adam(params(), clip_global_norm=-1.0), r"clip_global_norm"),
        (lambda: oo.SGD(params(), grad_noise=-0.3), r"grad_noise"),
        (lambda: oo.create("adamm", params()), r"unknown optimizer 'adamm'; valid.*adam"),
        (lambda: oo.create("adam", params(), beta1=0.9), r"unknown hyperparameter.*betas"),
        (lambda: oo.Chain(params(), oo.ScaleByAdam(), oo.ScaleByAdamax()), r"exp_avg"),
        (lambda: oo.Chain(params()), r"at least one transform"),
    ],
)
def test_invalid_input_raises(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_errors_are_optimlab_errors():
    with pytest.raises(OptimlabError):
        oo.Adam(params(), lr=-1)


def test_unknown_keyword_is_a_type_error_like_python():
    with pytest.raises(TypeError, match="clipnorm"):
        oo.Adam(params(), clipnorm=1.0)


def test_invalid_group_value_rejected_on_add_param_group():
    opt = oo.SGD(params(), lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], "momentum": 2.0})
