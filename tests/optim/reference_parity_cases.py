"""The cases of the reference-parity harness (test_reference_parity.py): each optimizer
that came after the lectures, with the independent implementation it is checked
against.

A case names our optimizer (a registry name and hyperparameters), a factory that builds
the reference over the same param groups, the state entries that mean the same in both,
and the tolerance. Everything else (the model, the gradient stream, the step loop, the
comparison, the mid-run round trip) is the harness's, written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from lion_pytorch import Lion as LionReference
from prodigyopt import Prodigy as ProdigyReference
from pytorch_optimizer import LARS as LarsReference
from pytorch_optimizer import SAM as SAMReference
from pytorch_optimizer import SOAP as SoapReference
from pytorch_optimizer import Lamb as LambReference
from pytorch_optimizer import Lookahead as LookaheadReference
from pytorch_optimizer import Shampoo as ShampooReference
from schedulefree import AdamWScheduleFree, SGDScheduleFree

# The model every case runs on: a matrix, a vector, a 3-D tensor, a scalar, and a matrix
# whose gradient stays None (index 4, see streams.feed_gradients).
SHAPES = [(6, 4), (4,), (2, 3, 4), (), (2, 3)]


def make_params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in SHAPES]


def two_groups(params: list[torch.Tensor], lr: float) -> list[dict]:
    """The first two tensors at ``lr``, the rest at ``lr / 3``."""
    return [{"params": params[:2], "lr": lr}, {"params": params[2:], "lr": lr / 3}]


@dataclass(frozen=True)
class Case:
    """One optimizer configuration checked against its reference.

    ``ours`` and ``hp`` build ours through the registry; ``reference(groups)`` builds the
    reference over the same groups. ``state`` pairs our state keys with the reference's
    (per parameter, compared at the end). ``closure``: step with a closure that feeds the
    next gradients at the current parameters. ``finish`` runs on both optimizers after the
    last step (the parameters are compared before and after it).
    """

    id: str
    ours: str
    hp: dict[str, Any]
    reference: Callable[[list[dict]], Any]
    lr: float
    state: tuple[tuple[str, str], ...] = ()
    groups: Callable[[list[torch.Tensor], float], list[dict]] = two_groups
    dtype: torch.dtype = torch.float64
    rtol: float = 1e-10
    closure: bool = False
    finish: Callable[[Any], None] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _torch(cls: type, **kwargs: Any) -> Callable[[list[dict]], Any]:
    return lambda groups: cls(groups, foreach=False, **kwargs)


MOMENTS = (("exp_avg", "exp_avg"), ("exp_avg_sq", "exp_avg_sq"))

CASES: list[Case] = [
    Case("radam", "radam", {}, _torch(torch.optim.RAdam), 1e-2, MOMENTS),
    Case(
        "radam-wd",
        "radam",
        {"weight_decay": 0.1, "betas": (0.8, 0.99), "maximize": True},
        _torch(torch.optim.RAdam, weight_decay=0.1, betas=(0.8, 0.99), maximize=True),
        1e-2,
        MOMENTS,
    ),
    Case(
        "radam-decoupled",
        "radam",
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        _torch(torch.optim.RAdam, weight_decay=0.1, decoupled_weight_decay=True),
        1e-2,
        MOMENTS,
    ),
]

CASES += [
    Case("lion", "lion", {}, LionReference, 1e-3, (("exp_avg", "exp_avg"),)),
    Case(
        "lion-wd",
        "lion",
        {"weight_decay": 0.5, "betas": (0.95, 0.98)},
        lambda groups: LionReference(groups, lr=1e-3, weight_decay=0.5, betas=(0.95, 0.98)),
        1e-3,
        (("exp_avg", "exp_avg"),),
    ),
    Case(
        # the decay divided by the constructor's lr, for both groups (lion-pytorch)
        "lion-decoupled",
        "lion",
        {"lr": 2e-3, "weight_decay": 1e-3, "decoupled_weight_decay": True},
        lambda groups: LionReference(
            groups, lr=2e-3, weight_decay=1e-3, decoupled_weight_decay=True
        ),
        1e-3,
        (("exp_avg", "exp_avg"),),
    ),
]


def lamb_clipped_at(clip: float, **kwargs: Any) -> Callable[[list[dict]], Any]:
    """pytorch-optimizer's Lamb with its weight-norm bound (a class attribute) at ``clip``."""

    def make(groups: list[dict]) -> Any:
        opt = LambReference(groups, **kwargs)
        opt.clamp = clip
        return opt

    return make


CASES += [
    Case("lamb", "lamb", {}, LambReference, 1e-2, MOMENTS),
    Case(
        "lamb-coupled-wd",
        "lamb",
        {"weight_decay": 0.1, "weight_decouple": False, "grad_averaging": False},
        lambda groups: LambReference(
            groups, weight_decay=0.1, weight_decouple=False, grad_averaging=False
        ),
        1e-2,
        MOMENTS,
    ),
    Case(
        "lamb-decoupled-wd",
        "lamb",
        {"weight_decay": 0.1, "maximize": True, "betas": (0.8, 0.99), "eps": 1e-8},
        lambda groups: LambReference(
            groups, weight_decay=0.1, maximize=True, betas=(0.8, 0.99), eps=1e-8
        ),
        1e-2,
        MOMENTS,
    ),
    Case(
        # no bias correction: the reference's adam_debias; per-tensor path (foreach off)
        "lamb-uncorrected",
        "lamb",
        {"bias_correction": False, "weight_decay": 0.05},
        lambda groups: LambReference(groups, adam_debias=True, weight_decay=0.05, foreach=False),
        1e-2,
        MOMENTS,
    ),
    Case(
        "lamb-trust-clip",
        "lamb",
        {"trust_clip": 1.5},
        lamb_clipped_at(1.5),
        1e-2,
        MOMENTS,
    ),
    Case("lars", "lars", {}, LarsReference, 1.0, (("momentum_buffer", "momentum_buffer"),)),
    Case(
        "lars-wd-nesterov",
        "lars",
        {"weight_decay": 0.01, "nesterov": True, "trust_coefficient": 0.01, "maximize": True},
        lambda groups: LarsReference(
            groups, weight_decay=0.01, nesterov=True, trust_coefficient=0.01, maximize=True
        ),
        1.0,
        (("momentum_buffer", "momentum_buffer"),),
    ),
    Case(
        # dampening: the buffer starts at 0 (torch's SGD starts it at the gradient)
        "lars-dampening",
        "lars",
        {"dampening": 0.3, "momentum": 0.8, "weight_decay": 0.1},
        lambda groups: LarsReference(
            groups, dampening=0.3, momentum=0.8, weight_decay=0.1, foreach=False
        ),
        1.0,
        (("momentum_buffer", "momentum_buffer"),),
    ),
]

ADAFACTOR_STATE = (("row_var", "row_var"), ("col_var", "col_var"), ("variance", "variance"))

CASES += [
    Case("adafactor", "adafactor", {}, _torch(torch.optim.Adafactor), 1e-2, ADAFACTOR_STATE),
    Case(
        # rho_t = min(lr, 1/sqrt(t)) switches from 1/sqrt(t) to lr at t = 100
        "adafactor-wd",
        "adafactor",
        {"weight_decay": 0.1, "beta2_decay": -0.5, "eps": (1e-20, 1e-2), "maximize": True},
        _torch(
            torch.optim.Adafactor,
            weight_decay=0.1,
            beta2_decay=-0.5,
            eps=(1e-20, 1e-2),
            maximize=True,
        ),
        0.1,
        ADAFACTOR_STATE,
    ),
    Case(
        # d = 1.5: the RMS clipping acts on some steps only
        "adafactor-clip",
        "adafactor",
        {"d": 1.5},
        _torch(torch.optim.Adafactor, d=1.5),
        0.3,
        ADAFACTOR_STATE,
    ),
]


def training(cls: type, **kwargs: Any) -> Callable[[list[dict]], Any]:
    """A schedulefree optimizer switched to train mode (it starts in eval mode)."""

    def make(groups: list[dict]) -> Any:
        opt = cls(groups, foreach=False, **kwargs)
        opt.train()
        return opt

    return make


def evaluate(opt: Any) -> None:
    opt.eval()


SF_STATE = (("z", "z"),)

CASES += [
    Case(
        "schedule_free_sgd",
        "schedule_free_sgd",
        {},
        training(SGDScheduleFree),
        0.05,
        SF_STATE,
        finish=evaluate,
    ),
    Case(
        # warmup over 30 steps: lr_max grows, and so do the average's weights
        "schedule_free_sgd-warmup",
        "schedule_free_sgd",
        {"warmup_steps": 30, "r": 1.0, "weight_lr_power": 1.5, "momentum": 0.8},
        training(SGDScheduleFree, warmup_steps=30, r=1.0, weight_lr_power=1.5, momentum=0.8),
        0.05,
        SF_STATE,
        finish=evaluate,
    ),
    Case(
        "schedule_free_sgd-wd",
        "schedule_free_sgd",
        {"weight_decay": 0.1, "warmup_steps": 10},
        training(SGDScheduleFree, weight_decay=0.1, warmup_steps=10),
        0.05,
        SF_STATE,
        finish=evaluate,
    ),
    Case(
        "schedule_free_adamw",
        "schedule_free_adamw",
        {},
        training(AdamWScheduleFree),
        1e-2,
        SF_STATE + (("exp_avg_sq", "exp_avg_sq"),),
        finish=evaluate,
    ),
    Case(
        "schedule_free_adamw-wd-warmup",
        "schedule_free_adamw",
        {"weight_decay": 0.1, "warmup_steps": 20, "betas": (0.95, 0.99), "r": 0.5},
        training(AdamWScheduleFree, weight_decay=0.1, warmup_steps=20, betas=(0.95, 0.99), r=0.5),
        1e-2,
        SF_STATE + (("exp_avg_sq", "exp_avg_sq"),),
        finish=evaluate,
    ),
]


def lookahead_over(base: Callable[[list[dict]], Any], **kwargs: Any) -> Callable:
    return lambda groups: LookaheadReference(base(groups), **kwargs)


def sam_reference(base: type, **kwargs: Any) -> Callable[[list[dict]], Any]:
    return lambda groups: SAMReference(groups, base, **kwargs)


def sam_reference_step(opt: Any, closure: Callable) -> None:
    """pytorch-optimizer's SAM expects the gradient at w before step, which calls the
    closure once, at the perturbed point."""
    closure()
    opt.step(closure)


SLOW = (("wrapper_state:slow_params", "slow_params"),)
SAM_EXTRA = {"reference_step": sam_reference_step}
# pytorch-optimizer's SAM sums the gradient norm in float32 even for float64 parameters;
# ours does so with norm_dtype=float32 (then 1e-10 holds), and by default in float64:
# the reference's perturbation, and so every later gradient, is then off by float32
# rounding (about 1e-8 relative), which 100 steps carry into the parameters (1e-6)
SAM_RTOL = 1e-6

CASES += [
    Case(
        "lookahead-adam",
        "lookahead",
        {"base": "adam"},
        lookahead_over(_torch(torch.optim.Adam)),
        1e-2,
        SLOW + (("exp_avg", "optimizer:exp_avg"),),
    ),
    Case(
        "lookahead-sgd-pullback",
        "lookahead",
        {"base": "momentum", "k": 3, "alpha": 0.8, "pullback_momentum": "pullback"},
        lookahead_over(
            _torch(torch.optim.SGD, momentum=0.9), k=3, alpha=0.8, pullback_momentum="pullback"
        ),
        0.05,
        SLOW
        + (
            ("wrapper_state:slow_momentum", "slow_momentum"),
            ("momentum_buffer", "optimizer:momentum_buffer"),
        ),
    ),
    Case(
        "lookahead-sgd-reset",
        "lookahead",
        {"base": "momentum", "k": 4, "pullback_momentum": "reset"},
        lookahead_over(_torch(torch.optim.SGD, momentum=0.9), k=4, pullback_momentum="reset"),
        0.05,
        SLOW + (("momentum_buffer", "optimizer:momentum_buffer"),),
    ),
    Case(
        "sam-sgd",
        "sam",
        {"base": "momentum", "rho": 0.1},
        sam_reference(torch.optim.SGD, rho=0.1, momentum=0.9, foreach=False),
        0.05,
        (("momentum_buffer", "momentum_buffer"),),
        rtol=SAM_RTOL,
        closure=True,
        extra=SAM_EXTRA,
    ),
    Case(
        "sam-sgd-float32-norm",
        "sam",
        {"base": "momentum", "rho": 0.1, "norm_dtype": torch.float32},
        sam_reference(torch.optim.SGD, rho=0.1, momentum=0.9, foreach=False),
        0.05,
        (("momentum_buffer", "momentum_buffer"),),
        closure=True,
        extra=SAM_EXTRA,
    ),
    Case(
        "asam-adam-float32-norm",
        "asam",
        {"base": "adam", "rho": 0.5, "norm_dtype": torch.float32, "weight_decay": 0.01},
        sam_reference(torch.optim.Adam, rho=0.5, adaptive=True, weight_decay=0.01, foreach=False),
        1e-2,
        MOMENTS,
        closure=True,
        extra=SAM_EXTRA,
    ),
    Case(
        "asam-adam",
        "asam",
        {"base": "adam", "rho": 0.5},
        sam_reference(torch.optim.Adam, rho=0.5, adaptive=True, foreach=False),
        1e-2,
        MOMENTS,
        rtol=SAM_RTOL,
        closure=True,
        extra=SAM_EXTRA,
    ),
]


class MuonAndAdamW:
    """torch.optim.Muon over the groups marked muon=True, torch.optim.AdamW over the rest:
    the reference for one optlab Muon with both kinds of group."""

    def __init__(self, groups: list[dict], muon: dict[str, Any], adamw: dict[str, Any]) -> None:
        strip = [{k: v for k, v in g.items() if k != "muon"} for g in groups]
        self.muon = torch.optim.Muon([g for g, o in zip(strip, groups) if o["muon"]], **muon)
        self.adamw = torch.optim.AdamW(
            [g for g, o in zip(strip, groups) if not o["muon"]], foreach=False, **adamw
        )

    @property
    def state(self) -> dict:
        return {**self.muon.state, **self.adamw.state}

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()


def muon_groups(params: list[torch.Tensor], lr: float) -> list[dict]:
    """The matrices (one whose gradient stays None) to Muon, the rest to AdamW at lr / 10."""
    return [
        {"params": [params[0], params[4]], "lr": lr, "muon": True},
        {"params": params[1:4], "lr": lr / 10, "muon": False},
    ]


MUON_STATE = (("momentum_buffer", "momentum_buffer"),) + MOMENTS

CASES += [
    Case(
        # bfloat16 Newton-Schulz, the same operations as torch: equal to the last bit
        "muon",
        "muon",
        {},
        lambda groups: MuonAndAdamW(groups, {}, {"weight_decay": 0.1}),
        0.02,
        MUON_STATE,
        groups=muon_groups,
    ),
    Case(
        "muon-options",
        "muon",
        {
            "momentum": 0.9,
            "nesterov": False,
            "weight_decay": 0.01,
            "adjust_lr_fn": "match_rms_adamw",
            "ns_steps": 3,
            "adam_betas": (0.8, 0.99),
            "adam_eps": 1e-6,
        },
        lambda groups: MuonAndAdamW(
            groups,
            {
                "momentum": 0.9,
                "nesterov": False,
                "weight_decay": 0.01,
                "adjust_lr_fn": "match_rms_adamw",
                "ns_steps": 3,
            },
            {"weight_decay": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
        ),
        0.02,
        MUON_STATE,
        groups=muon_groups,
    ),
]


def decay_split(params: list[torch.Tensor], lr: float) -> list[dict]:
    """Two groups at one lr (Prodigy's d spans both; the reference refuses two lrs), the
    first with weight decay, the second without, as a decay/no-decay split has it."""
    return [
        {"params": params[:2], "lr": lr, "weight_decay": 0.1},
        {"params": params[2:], "lr": lr},
    ]


def prodigy_estimate(ours: Any, theirs: Any) -> list[tuple[str, Any, Any]]:
    estimate, group = ours.state["prodigy_estimate"], theirs.param_groups[0]
    return [
        ("d", estimate["d"], group["d"]),
        ("d_max", estimate["d_max"], group["d_max"]),
        ("numerator", estimate["numerator"], group["d_numerator"]),
        ("k", estimate["k"], group["k"]),
    ]


PRODIGY_STATE = MOMENTS + (("s", "s"), ("p0", "p0"))
PRODIGY_EXTRA = {"compare": prodigy_estimate}

CASES += [
    Case(
        "prodigy",
        "prodigy",
        {},
        ProdigyReference,
        1.0,
        PRODIGY_STATE,
        groups=decay_split,
        extra=PRODIGY_EXTRA,
    ),
    Case(
        "prodigy-options",
        "prodigy",
        {
            "decouple": False,
            "use_bias_correction": True,
            "safeguard_warmup": True,
            "beta3": 0.95,
            "d_coef": 2.0,
            "growth_rate": 1.05,
            "d0": 1e-4,
        },
        lambda groups: ProdigyReference(
            groups,
            decouple=False,
            use_bias_correction=True,
            safeguard_warmup=True,
            beta3=0.95,
            d_coef=2.0,
            growth_rate=1.05,
            d0=1e-4,
        ),
        0.5,
        PRODIGY_STATE,
        groups=decay_split,
        extra=PRODIGY_EXTRA,
    ),
    Case(
        # b1 = 0: no first moment, the step uses d * g
        "prodigy-no-momentum",
        "prodigy",
        {"betas": (0.0, 0.99)},
        lambda groups: ProdigyReference(groups, betas=(0.0, 0.99)),
        1.0,
        (("exp_avg_sq", "exp_avg_sq"), ("s", "s")),
        groups=decay_split,
        extra=PRODIGY_EXTRA,
    ),
]


# Shampoo keeps one statistic and one root per dimension under the reference's own keys
SHAMPOO_STATE = tuple(
    (f"{kind}_{i}", f"{kind}_{i}") for i in range(3) for kind in ("pre_cond", "inv_pre_cond")
)

CASES += [
    Case("shampoo", "shampoo", {}, ShampooReference, 1e-2, SHAMPOO_STATE),
    Case(
        # roots every 3rd step (zero before step 3); the buffer is the preconditioned
        # step. matrix_eps 1e-2: with 1e-6 the vector's rank-3 statistic at step 3 has a
        # root of 1e3 off its span, and the run (ours and the reference alike) blows up
        "shampoo-momentum-wd",
        "shampoo",
        {"momentum": 0.5, "weight_decay": 0.1, "precondition_frequency": 3, "matrix_eps": 1e-2},
        lambda groups: ShampooReference(
            groups,
            momentum=0.5,
            weight_decay=0.1,
            preconditioning_compute_steps=3,
            matrix_eps=1e-2,
        ),
        1e-2,
        SHAMPOO_STATE + (("momentum_buffer", "momentum_buffer"),),
    ),
    Case(
        "shampoo-decoupled",
        "shampoo",
        {
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
            "matrix_eps": 1e-3,
            "maximize": True,
        },
        lambda groups: ShampooReference(
            groups, weight_decay=0.1, weight_decouple=True, matrix_eps=1e-3, maximize=True
        ),
        1e-2,
        SHAMPOO_STATE,
    ),
]


def soap_bases(ours: Any, theirs: Any) -> list[tuple[str, Any, Any]]:
    """The reference keeps SOAP's statistics and bases as lists (``GG``, ``Q``; an empty
    list for a dimension without a basis); ours as ``GG_i`` and ``Q_i``."""
    pairs = []
    for ours_group, theirs_group in zip(ours.param_groups, theirs.param_groups):
        for a, b in zip(ours_group["params"], theirs_group["params"]):
            if b not in theirs.state:
                continue
            for kind in ("GG", "Q"):
                for i, matrix in enumerate(theirs.state[b][kind]):
                    if len(matrix) == 0:
                        assert f"{kind}_{i}" not in ours.state[a]
                        continue
                    pairs.append((f"{kind}_{i}", ours.state[a][f"{kind}_{i}"], matrix))
    assert pairs  # some dimension has a basis
    return pairs


# Both run the QR of the basis refresh in float32 (the reference casts there, as the
# authors' code does; ours with float32_qr=True): on identical float64 inputs the
# float32 factors are identical, and 1e-10 holds over 9 refreshes.
SOAP_EXTRA = {"compare": soap_bases}

CASES += [
    Case("soap", "soap", {}, SoapReference, 1e-2, MOMENTS, extra=SOAP_EXTRA),
    Case(
        # the (6, 4) matrix's 6 rows and the 3-D tensor's 2 x 3 x 4 all rotated but
        # dimension 6 (> 5); 1-D tensors rotated too
        "soap-options",
        "soap",
        {
            "betas": (0.9, 0.99),
            "shampoo_beta": 0.9,
            "precondition_frequency": 3,
            "precondition_1d": True,
            "max_precondition_dim": 5,
            "normalize_gradient": True,
            "weight_decay": 0.1,
            "maximize": True,
        },
        lambda groups: SoapReference(
            groups,
            betas=(0.9, 0.99),
            shampoo_beta=0.9,
            precondition_frequency=3,
            precondition_1d=True,
            max_precondition_dim=5,
            normalize_gradient=True,
            weight_decay=0.1,
            maximize=True,
        ),
        1e-2,
        MOMENTS,
        extra=SOAP_EXTRA,
    ),
    Case(
        "soap-uncorrected",
        "soap",
        {"correct_bias": False, "weight_decay": 0.0, "eps": 1e-6},
        lambda groups: SoapReference(groups, correct_bias=False, weight_decay=0.0, eps=1e-6),
        3e-3,
        MOMENTS,
        extra=SOAP_EXTRA,
    ),
]
