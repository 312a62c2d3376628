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
        (lambda: oo.Lion(params(), betas=(1.2, 0.99)), r"betas\[0\]"),
        (lambda: oo.Lion(params(), lr=0.0, decoupled_weight_decay=True), r"invalid init_lr: 0.0"),
        (lambda: oo.Lamb(params(), trust_clip=0.0), r"trust_clip: 0.0; valid range is \(0"),
        (lambda: oo.Lamb(params(), weight_decouple="yes"), r"weight_decouple: 'yes'; expected"),
        (lambda: oo.Lamb(params(), eps=-1e-6), r"invalid eps"),
        (lambda: oo.Lars(params(), trust_coefficient=-1.0), r"invalid trust_coefficient"),
        (lambda: oo.Lars(params(), exclude_1d=1), r"exclude_1d: 1; expected True or False"),
        (lambda: oo.Lars(params(), momentum=1.0), r"momentum: 1.0; valid range is \[0, 1\)"),
        (lambda: oo.Adafactor(params(), beta2_decay=0.5), r"beta2_decay: 0.5; valid range is"),
        (lambda: oo.Adafactor(params(), eps=1e-3), r"invalid eps: 0.001; expected a pair"),
        (lambda: oo.Adafactor(params(), eps=(-1.0, 1e-3)), r"invalid eps\[0\]: -1.0"),
        (lambda: oo.Adafactor(params(), d=0.5), r"invalid d: 0.5; valid range is \[1, inf\]"),
        (lambda: oo.ScheduleFreeSGD(params(), momentum=1.0), r"momentum: 1.0; valid range is \(0"),
        (lambda: oo.ScheduleFreeSGD(params(), warmup_steps=-1), r"warmup_steps: -1; valid: an"),
        (lambda: oo.ScheduleFreeSGD(params(), warmup_steps=2.5), r"warmup_steps: 2.5"),
        (lambda: oo.ScheduleFreeSGD(params(), r=-1.0), r"invalid r: -1.0"),
        (lambda: oo.ScheduleFreeAdamW(params(), betas=(0.0, 0.999)), r"betas\[0\]: 0.0"),
        (lambda: oo.ScheduleFreeAdamW(params(), weight_lr_power=-2), r"weight_lr_power: -2"),
        (lambda: oo.Prodigy(params(), d0=0.0), r"invalid d0: 0.0; valid range is \(0"),
        (lambda: oo.Prodigy(params(), growth_rate=0.5), r"growth_rate: 0.5; valid range is \[1"),
        (lambda: oo.Prodigy(params(), eps=0.0), r"invalid eps: 0.0"),
        (lambda: oo.Prodigy(params(), beta3=1.5), r"invalid beta3: 1.5"),
        (lambda: oo.Prodigy(params(), decouple=None), r"decouple: None; expected True or False"),
        (lambda: oo.Prodigy(params(), fast=True), r"invalid fast=True for Prodigy.*valid: False"),
        (lambda: oo.Prodigy(params(), lr=lambda step: 1.0), r"invalid lr for Prodigy: a sched"),
        (lambda: oo.create("prodigy", params(), fast=True), r"unknown hyperparameter.*'fast'"),
        (lambda: oo.Shampoo(params(), matrix_eps=0.0), r"invalid matrix_eps: 0.0; valid range"),
        (lambda: oo.Shampoo(params(), momentum=1.0), r"momentum: 1.0; valid range is \[0, 1\)"),
        (
            lambda: oo.Shampoo(params(), precondition_frequency=0),
            r"invalid precondition_frequency: 0; valid: an integer >= 1",
        ),
        (lambda: oo.Shampoo(params(), precondition_at_start=1), r"precondition_at_start: 1; exp"),
        (lambda: oo.Shampoo(params(), fast=True), r"invalid fast=True for Shampoo.*valid: False"),
        (lambda: oo.Soap(params(), betas=(0.9, 1.0)), r"betas\[1\]: 1.0"),
        (lambda: oo.Soap(params(), shampoo_beta=-0.1), r"invalid shampoo_beta: -0.1"),
        (lambda: oo.Soap(params(), max_precondition_dim=2.5), r"max_precondition_dim: 2.5; va"),
        (lambda: oo.Soap(params(), float32_qr="no"), r"invalid float32_qr: 'no'; expected"),
        (lambda: oo.Soap(params(), fast=True), r"invalid fast=True for SOAP.*valid: False"),
        (lambda: oo.create("soap", params(), fast=True), r"unknown hyperparameter.*'fast'"),
    ],
)
def test_invalid_input_raises_naming_the_argument(build, match):
    with pytest.raises(OptimlabError, match=match):
        build()


def test_prodigy_groups_with_their_own_lr_step_by_it_and_frozen_ones_stay():
    """With equal lrs the groups share d as in the reference (test_reference_parity); a
    group's own lr scales its step, and at lr 0 it does not move."""
    a, b, c = params(), params(), params()
    opt = oo.Prodigy([{"params": a}, {"params": b, "lr": 0.5}, {"params": c, "lr": 0.0}])
    for p in a + b + c:
        p.grad = torch.ones_like(p)
    opt.step()
    assert torch.equal(c[0], torch.zeros(3)) and "exp_avg_sq" not in opt.state[c[0]]
    torch.testing.assert_close(b[0], a[0] * 0.5, rtol=1e-12, atol=0)
