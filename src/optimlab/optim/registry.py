"""The optimizer registry: one record per named optimizer, read by the CLI, docs,
benchmarks and tests. Names follow the lectures; records with other defaults
(``momentum``, ``nesterov``, ``amsgrad``) are separate entries, not flags.

Two kinds of optimizer: chains of transforms fed one gradient per step, and
closure-driven methods (Newton, BFGS, L-BFGS) that call ``step(closure)`` and evaluate
the loss several times per step. The records' capability fields tell them apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab.errors import OptimlabError
from optimlab.optim.accelerated import NAGC, NAGSC
from optimlab.optim.adadelta import Adadelta
from optimlab.optim.adafactor import Adafactor
from optimlab.optim.adagrad import Adagrad
from optimlab.optim.adam import Adam, AdamW
from optimlab.optim.adamax import Adamax
from optimlab.optim.base import COMMON_DEFAULTS, ChainOptimizer
from optimlab.optim.bfgs import BFGS
from optimlab.optim.cg import NonlinearCG
from optimlab.optim.hessian_free import HessianFree
from optimlab.optim.kfac import KFAC
from optimlab.optim.lamb import Lamb
from optimlab.optim.lars import Lars
from optimlab.optim.lbfgs import LBFGS
from optimlab.optim.lion import Lion
from optimlab.optim.lookahead import Lookahead
from optimlab.optim.muon import Muon
from optimlab.optim.nadam import NAdam
from optimlab.optim.natural_gradient import DiagonalNaturalGradient, NaturalGradient
from optimlab.optim.newton import Newton
from optimlab.optim.path_sgd import PathSGD
from optimlab.optim.prodigy import Prodigy
from optimlab.optim.radam import RAdam
from optimlab.optim.rmsprop import RMSprop
from optimlab.optim.sam import SAM
from optimlab.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from optimlab.optim.sgd import SGD
from optimlab.optim.shampoo import Shampoo
from optimlab.optim.soap import Soap
from optimlab.optim.switching import SWATS, AdamThenSGD
from optimlab.optim.wrapper import WrapperOptimizer
from optimlab.registry import Registry


@dataclass(frozen=True)
class OptimizerRecord:
    """A named optimizer: its class, the defaults this name sets, and metadata.

    ``state_slots`` counts parameter-sized state buffers, so a float32 model needs
    ``4 * state_slots`` bytes of optimizer state per parameter; ``state_note`` is what
    the table shows instead where that count does not tell the whole size (an
    ``n x n`` matrix of ``n`` parameters is ``4n`` bytes per parameter).
    ``torch_class`` names torch.optim's implementation of the same rule, if any.

    Capabilities: ``needs_closure``, ``step`` must be given a closure (it evaluates the
    loss several times per step, so it cannot be fed gradients); ``full_batch``, the
    method assumes the closure's loss is the same function at every call (one fixed
    batch, no dropout); ``max_params``, models with more parameters are refused;
    ``elementwise``, each entry's update depends on that entry alone, or on sums over the
    param group (the fast path then runs on flat buffers, and a step's memory traffic,
    which ``optimlab bench optimizers`` compares with the bandwidth floor, is its
    parameter-sized tensors read and written once); a rule with per-tensor norms or
    matrix products is not.
    """

    name: str
    builder: type[torch.optim.Optimizer]
    description: str
    reference: str
    defaults: dict[str, Any] = field(default_factory=dict)
    state_slots: int = 0
    aliases: tuple[str, ...] = ()
    torch_class: str | None = None
    needs_closure: bool = False
    full_batch: bool = False
    max_params: int | None = None
    state_note: str = ""
    elementwise: bool = True

    @property
    def state_bytes_per_param(self) -> int:
        """Bytes of parameter-sized state per float32 parameter (see ``state_note``)."""
        return 4 * self.state_slots

    @property
    def chain(self) -> bool:
        """Whether this is a chain of transforms (with the common options and ``fast``)."""
        return issubclass(self.builder, ChainOptimizer)

    @property
    def fast(self) -> bool:
        """Whether ``fast=True`` (the compiled chain) is available."""
        return self.chain and getattr(self.builder, "supports_fast", True)

    @property
    def wrapper(self) -> bool:
        """Whether this wraps a base optimizer (Lookahead, SAM), named by ``base``."""
        return issubclass(self.builder, WrapperOptimizer)

    def hyperparameters(self, base: Any = None) -> dict[str, Any]:
        """Every hyperparameter this optimizer takes, with the value it gets by default.

        A wrapper's include its base's (``base``, a registry name, or the record's
        default base), and ``fast`` when the base is a chain.
        """
        sig = inspect.signature(self.builder.__init__)
        hp = {
            k: p.default
            for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        common = COMMON_DEFAULTS if self.chain else {}
        own = {**hp, **common, **self.defaults}
        if not self.wrapper:
            return own
        inner_name = own["base"] if base is None else base
        if not isinstance(inner_name, str):
            return own  # an optimizer class: its arguments are its own business
        inner = OPTIMIZERS.get(inner_name)
        inner_hp = inner.hyperparameters() | ({"fast": False} if inner.fast else {})
        return {**inner_hp, **own}

    def capabilities(self) -> str:
        """The capabilities in words, for the table."""
        words = []
        if self.needs_closure:
            words.append("closure")
        if self.full_batch:
            words.append("full batch")
        if self.max_params is not None:
            words.append(f"<= {self.max_params} params")
        return ", ".join(words) or "-"


OPTIMIZERS: Registry[OptimizerRecord] = Registry("optimizer")


def _default(cls: type, name: str) -> Any:
    """The default value of the argument ``name`` of ``cls``."""
    return inspect.signature(cls).parameters[name].default


for _record in [
    OptimizerRecord(
        "sgd",
        SGD,
        "(mini-batch) stochastic gradient descent: w <- w - lr*g",
        "Robbins & Monro 1951",
        {"lr": 0.01},
        0,
        ("gd",),
        "SGD",
    ),
    OptimizerRecord(
        "momentum",
        SGD,
        "heavy-ball momentum: b <- mu*b + g; w <- w - lr*b",
        "Polyak 1964; Qian 1999",
        {"lr": 0.01, "momentum": 0.9},
        1,
        (),
        "SGD",
    ),
    OptimizerRecord(
        "nesterov",
        SGD,
        "Nesterov accelerated gradient (look-ahead momentum)",
        "Nesterov 1983; Sutskever et al. 2013",
        {"lr": 0.01, "momentum": 0.9, "nesterov": True},
        1,
        ("nag",),
        "SGD",
    ),
    OptimizerRecord(
        "adagrad",
        Adagrad,
        "per-coordinate lr / sqrt(sum of squared gradients)",
        "Duchi, Hazan & Singer 2011",
        {},
        1,
        (),
        "Adagrad",
    ),
    OptimizerRecord(
        "rmsprop",
        RMSprop,
        "lr / running RMS of the gradient",
        "Hinton, Srivastava & Swersky 2012",
        {"lr": 1e-3},
        1,
        (),
        "RMSprop",
    ),
    OptimizerRecord(
        "adadelta",
        Adadelta,
        "RMS of updates over RMS of gradients, no lr needed",
        "Zeiler 2012",
        {},
        2,
        (),
        "Adadelta",
    ),
    OptimizerRecord(
        "adam",
        Adam,
        "bias-corrected momentum over bias-corrected RMS",
        "Kingma & Ba 2015",
        {},
        2,
        (),
        "Adam",
    ),
    OptimizerRecord(
        "amsgrad",
        Adam,
        "Adam with a non-decreasing second moment",
        "Reddi, Kale & Kumar 2018",
        {"amsgrad": True},
        3,
        (),
        "Adam",
    ),
    OptimizerRecord(
        "adamw",
        AdamW,
        "Adam with decoupled weight decay",
        "Loshchilov & Hutter 2019",
        {},
        2,
        (),
        "AdamW",
    ),
    OptimizerRecord(
        "adamax",
        Adamax,
        "Adam with an infinity-norm second moment",
        "Kingma & Ba 2015 (sec. 7.1)",
        {},
        2,
        (),
        "Adamax",
    ),
    OptimizerRecord(
        "nadam",
        NAdam,
        "Adam with Nesterov momentum",
        "Dozat 2016",
        {},
        2,
        (),
        "NAdam",
    ),
    OptimizerRecord(
        "newton",
        Newton,
        "exact Hessian: solve (H + lambda I) d = -g by Cholesky; w <- w + t d",
        "Nocedal & Wright 2006 (sec. 3.4)",
        {"line_search_fn": "backtracking"},
        0,
        (),
        None,
        needs_closure=True,
        full_batch=True,
        max_params=_default(Newton, "max_params"),
        state_note="0 (+4n/step)",  # the Hessian, during a step only
    ),
    OptimizerRecord(
        "bfgs",
        BFGS,
        "dense inverse-Hessian estimate from (s, y) pairs, strong-Wolfe line search",
        "BFGS 1970; Nocedal & Wright 2006",
        {},
        0,
        (),
        None,
        needs_closure=True,
        full_batch=True,
        max_params=_default(BFGS, "max_params"),
        state_note="4n (dense H)",
    ),
    OptimizerRecord(
        "lbfgs",
        LBFGS,
        "two-loop recursion over the last m (s, y) pairs, strong-Wolfe line search",
        "Nocedal 1980; Liu & Nocedal 1989",
        {"line_search_fn": "strong_wolfe"},
        2 * _default(LBFGS, "history_size"),  # the m pairs (s, y)
        ("l-bfgs",),
        "LBFGS",
        needs_closure=True,
        full_batch=True,
        state_note=f"{8 * _default(LBFGS, 'history_size')} (m={_default(LBFGS, 'history_size')})",
    ),
    OptimizerRecord(
        "cg",
        NonlinearCG,
        "nonlinear conjugate gradients: d <- -g + beta d (Polak-Ribiere+), restarts, "
        "strong-Wolfe line search",
        "Fletcher & Reeves 1964; Polak & Ribiere 1969",
        {},
        2,  # the previous gradient and direction
        ("nonlinear_cg",),
        None,
        needs_closure=True,
        full_batch=True,
    ),
    OptimizerRecord(
        "hessian_free",
        HessianFree,
        "truncated Newton: CG on (G + lambda I) d = -g with Gauss-Newton products, "
        "Levenberg-Marquardt damping",
        "Martens 2010",
        {},
        1,  # the last CG solution (the warm start); the kept iterates during a step only
        ("hf",),
        None,
        needs_closure=True,
        full_batch=True,
        state_note="4 (+84/step)",  # 20 kept CG iterates and the last at cg_max_iter=250
    ),
]:
    OPTIMIZERS.add(_record)


# Nesterov's method with the momentum of the theory (lecture 003), and switching rules.
for _record in [
    OptimizerRecord(
        "nag_c",
        NAGC,
        "Nesterov for convex f: y <- x - lr*g; x <- y + k/(k+3)*(y - y_prev)",
        "Nesterov 1983; Su, Boyd & Candes 2016",
        {"lr": 0.01},
        1,
    ),
    OptimizerRecord(
        "nag_sc",
        NAGSC,
        "Nesterov for mu-strongly convex f: momentum (1 - sqrt(mu lr))/(1 + sqrt(mu lr))",
        "Nesterov 2004; Su, Boyd & Candes 2016",
        {"lr": 0.01},
        1,
    ),
    OptimizerRecord(
        "swats",
        SWATS,
        "Adam, then SGD with momentum at the lr Adam's steps imply, once that estimate settles",
        "Keskar & Socher 2017",
        {},
        2,
    ),
    OptimizerRecord(
        "adam_then_sgd",
        AdamThenSGD,
        "Adam for switch_step updates (or switch_epoch epochs), then SGD(sgd_lr, sgd_momentum)",
        "Keskar & Socher 2017; lecture 003 (Adam+SGD)",
        {},
        2,
    ),
]:
    OPTIMIZERS.add(_record)

# Path-SGD reads the model's layers: the run builder calls its attach_model(model).
OPTIMIZERS.add(
    OptimizerRecord(
        "path_sgd",
        PathSGD,
        "w <- w - lr*g/gamma, gamma the path norm through w: invariant to node rescaling "
        "(chains of Linear layers)",
        "Neyshabur, Salakhutdinov & Srebro 2015",
        {"lr": 0.01},
        0,
    )
)


# Natural gradient (lecture 000): the Fisher in place of the Hessian. They take a closure,
# whose pass through the model they record, but work on mini-batches (one call per step).
for _record in [
    OptimizerRecord(
        "natural_gradient",
        NaturalGradient,
        "full Fisher (true or empirical): solve (F + lambda I) d = g by Cholesky; w <- w - lr d",
        "Amari 1998",
        {},
        0,
        (),
        None,
        needs_closure=True,
        max_params=_default(NaturalGradient, "max_params"),
        state_note="0 (+4n/step)",  # F, during a step only
    ),
    OptimizerRecord(
        "natural_gradient_diag",
        DiagonalNaturalGradient,
        "diagonal empirical Fisher (mean of squared per-example gradients): "
        "w <- w - lr g / (D + lambda)",
        "Amari 1998; Martens & Grosse 2015 (sec. 5)",
        {},
        1,
        needs_closure=True,
    ),
    OptimizerRecord(
        "kfac",
        KFAC,
        "Kronecker-factored Fisher per Linear/Conv2d layer: w <- w - lr G^-1 dW A^-1",
        "Martens & Grosse 2015; Grosse & Martens 2016",
        {},
        0,
        ("k-fac",),
        None,
        needs_closure=True,
        state_note="A, G + inverses per layer",
    ),
]:
    OPTIMIZERS.add(_record)


# Optimizers that came after the lectures.
for _record in [
    OptimizerRecord(
        "radam",
        RAdam,
        "Adam with its adaptive lr's variance rectified (momentum-SGD steps while rho_t <= 5)",
        "Liu et al. 2020",
        {},
        2,
        (),
        "RAdam",
    ),
    OptimizerRecord(
        "lion",
        Lion,
        "sign of interpolated momentum: w <- w - lr*sign(b1 m + (1-b1) g); m updated after",
        "Chen et al. 2023 (reference: lion-pytorch)",
        {},
        1,
    ),
    OptimizerRecord(
        "lamb",
        Lamb,
        "Adam's ratio scaled per tensor by the trust ratio min(||w||, 10) / ||r||",
        "You et al. 2020 (reference: pytorch-optimizer)",
        {},
        2,
        elementwise=False,
    ),
    OptimizerRecord(
        "lars",
        Lars,
        "momentum SGD, each 2-D+ tensor's step scaled by eta ||w|| / (||g|| + wd ||w||)",
        "You, Gitman & Ginsburg 2017 (reference: pytorch-optimizer)",
        {},
        1,
        elementwise=False,
    ),
    OptimizerRecord(
        "adafactor",
        Adafactor,
        "factored second moment (rows + cols per matrix), relative step, RMS clipping",
        "Shazeer & Stern 2018",
        {},
        1,
        (),
        "Adafactor",
        state_note="4 (0/1-D), 4(r+c)/(rc) (matrices)",
        elementwise=False,
    ),
    OptimizerRecord(
        "schedule_free_sgd",
        ScheduleFreeSGD,
        "SGD at y = (1-beta) z + beta x, x the running average of z; eval() puts x in w",
        "Defazio et al. 2024 (reference: schedulefree)",
        {},
        1,
        ("sf_sgd",),
    ),
    OptimizerRecord(
        "schedule_free_adamw",
        ScheduleFreeAdamW,
        "schedule-free steps on the Adam-normalized gradient, decay at y",
        "Defazio et al. 2024 (reference: schedulefree)",
        {},
        2,
        ("sf_adamw",),
    ),
    OptimizerRecord(
        "muon",
        Muon,
        "2-D weights: momentum orthogonalised by Newton-Schulz; other params: AdamW",
        "Jordan et al. 2024",
        {},
        2,  # AdamW's two moments; a matrix under Muon keeps one momentum buffer
        (),
        "Muon",
        state_note="4 (2-D, Muon), 8 (others, AdamW)",
        elementwise=False,
    ),
    OptimizerRecord(
        "prodigy",
        Prodigy,
        "Adam with lr times d, a running estimate of the distance to a solution (lr=1)",
        "Mishchenko & Defazio 2024 (reference: prodigyopt)",
        {},
        4,  # m, v, s and the initial weights w_0
        elementwise=False,  # d sums over every param group
    ),
    OptimizerRecord(
        "shampoo",
        Shampoo,
        "per-dimension statistics H_i += G_(i) G_(i)^T; step G x_i H_i^(-1/2k) (SVD roots)",
        "Gupta, Koren & Singer 2018 (reference: pytorch-optimizer)",
        {},
        0,
        state_note="8(n1^2+...+nk^2)/(n1...nk), +4 with momentum",
        elementwise=False,
    ),
    OptimizerRecord(
        "soap",
        Soap,
        "Adam in the eigenbasis of Shampoo's statistics, the basis refreshed every 10 steps",
        "Vyas et al. 2024 (reference: pytorch-optimizer)",
        {},
        2,  # the two moments; each rotated dimension adds two n x n matrices
        state_note="8 + 8(n1^2+...+nk^2)/(n1...nk) (rotated dims)",
        elementwise=False,
    ),
    OptimizerRecord(
        "lookahead",
        Lookahead,
        "wraps a base (Adam): every k=5 steps, slow weights move alpha=0.5 towards the fast",
        "Zhang et al. 2019 (reference: pytorch-optimizer)",
        {"base": "adam"},
        3,  # the slow weights and Adam's two moments
    ),
    OptimizerRecord(
        "sam",
        SAM,
        "wraps a base (SGD): its step with the gradient at w + rho g/||g||",
        "Foret et al. 2021 (reference: pytorch-optimizer)",
        {"base": "sgd"},
        0,
        needs_closure=True,
    ),
    OptimizerRecord(
        "asam",
        SAM,
        "SAM in a scale-invariant neighbourhood: e = rho |w|^2 g / || |w| g ||",
        "Kwon et al. 2021 (reference: pytorch-optimizer)",
        {"base": "sgd", "adaptive": True},
        0,
        needs_closure=True,
    ),
]:
    OPTIMIZERS.add(_record)


def available(*, needs_closure: bool | None = None) -> list[str]:
    """The registered optimizer names (without aliases); ``needs_closure`` keeps only
    the closure-driven ones (True) or only those fed one gradient per step (False)."""
    return [
        name
        for name in OPTIMIZERS.names(aliases=False)
        if needs_closure is None or OPTIMIZERS.get(name).needs_closure == needs_closure
    ]


def get(name: str) -> OptimizerRecord:
    return OPTIMIZERS.get(name)


def create(name: str, params: Iterable[Any], **hparams: Any) -> torch.optim.Optimizer:
    """Build the optimizer registered as ``name`` (or an alias) over ``params``.

    ``hparams`` override the record's defaults; an unknown one raises
    ``OptimlabError`` listing the valid hyperparameters. ``fast=True`` selects the
    compiled fast path (chains of transforms only).
    """
    record = OPTIMIZERS.get(name)
    valid = {
        **record.hyperparameters(hparams.get("base")),
        **({"fast": False} if record.fast else {}),
    }
    unknown = sorted(set(hparams) - set(valid))
    if record.wrapper and not isinstance(valid["base"], str) and "base" in hparams:
        unknown = []  # a base given as a class checks its own arguments
    if unknown:
        raise OptimlabError(
            f"unknown hyperparameter(s) {unknown} for optimizer {record.name!r}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    return record.builder(params, **{**record.defaults, **hparams})


def table() -> tuple[list[str], list[list[str]]]:
    """The registry as (headers, rows) for ``optimlab list optimizers``."""
    headers = ["name", "aliases", "lr", "state B/param", "torch.optim", "reference", "rule"]
    rows = []
    for record in OPTIMIZERS:
        needs = record.capabilities()
        rows.append(
            [
                record.name,
                ",".join(record.aliases) or "-",
                f"{record.hyperparameters()['lr']:g}",
                record.state_note or str(record.state_bytes_per_param),
                record.torch_class or "-",
                record.reference,
                record.description + (f" [{needs}]" if needs != "-" else ""),
            ]
        )
    return headers, rows
