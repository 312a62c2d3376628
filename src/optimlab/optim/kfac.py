"""K-FAC: natural gradient with a Kronecker-factored Fisher per layer (Martens & Grosse
2015), for ``nn.Linear`` and, by KFC (Grosse & Martens 2016), ``nn.Conv2d`` layers."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.curvature import kfac as factors
from optimlab.curvature.capture import Call, Recorder, module_names
from optimlab.curvature.graph import backward_retains_graph
from optimlab.curvature.likelihood import NAMES as LIKELIHOODS
from optimlab.curvature.likelihood import check_output_gradient, sampled_loss
from optimlab.errors import OptimlabError
from optimlab.optim.closure import Closure, ClosureOptimizer, check_choice, check_float, check_int

FISHERS = ("true", "empirical")
#: the optimizer-state key of the true Fisher's generator state
DRAWS = "draws"
#: the factor-update and inverse-refresh intervals the docs recommend (Martens & Grosse's
#: T3 = 20 for the inverses; docs/benchmarks.md measures both)
COV_INTERVAL, INV_INTERVAL = 10, 20


class KFAC(ClosureOptimizer):
    """K-FAC: precondition each layer's gradient with the inverse of a Kronecker-factored
    approximation of its Fisher block, ``w <- w - lr nu G^-1 dW A^-1``.

    .. code-block:: text

        input: lr, damping (lambda), fisher, likelihood, decay (beta), cov_interval (T1),
               inv_interval (T3), kl_clip (kappa), seed
        per step k = 0, 1, ... (the closure's pass recorded, see below):
            f <- the closure's loss; for every known layer l:
                a_it <- its inputs with a homogeneous 1 (patches by unfold for Conv2d)
                e_it <- dL/ds_it, the gradient the closure's backward pass sent into
                        its outputs s (N examples, T positions each)
            if k % T1 == 0, for every layer (j = its factor updates so far + 1):
                g_it <- N dL/ds_it: for fisher "true" from one more backward pass, of
                        the loss at targets drawn from the model's own distribution
                        (one draw per example); for "empirical", N e_it
                A <- b A + (1 - b) 1/N sum_i sum_t a_it a_it^T    b = min(beta, 1 - 1/j)
                G <- b G + (1 - b) 1/(N T) sum_i sum_t g_it g_it^T
            if k % T3 == 0, for every layer:
                pi <- sqrt((tr A / dim A) / (tr G / dim G))
                A^-1 <- (A + pi sqrt(lambda) I)^-1;  G^-1 <- (G + sqrt(lambda)/pi I)^-1
            for every layer with inverses:
                V_l <- sum_it e_it a_it^T       the gradient through its outputs
                R_l <- [dW | db] - V_l          the rest of .grad (a penalty on W)
                D_l <- G^-1 V_l A^-1 + R_l
            D_p <- g_p for every other parameter (a plain SGD step, warned once)
            nu <- min(1, sqrt(kappa / (lr^2 sum_l (G^-1 V_l A^-1) . V_l)))   (else 1)
            w <- w - lr nu D

    The factors and the Kronecker form, with their conventions (the homogeneous
    coordinate last, the spatial sum in ``A`` and mean in ``G`` for convolutions, the
    row-major ``G (x) A``), are in ``optimlab.curvature.kfac``; the damping is the
    factored Tikhonov damping of Martens & Grosse, sec. 6.3. The defaults update the
    factors every 10 steps and refresh the inverses every 20, as Martens & Grosse do
    (``T3``): on ``fmnist_mlp`` factors every step cost 1.4x the CPU time per step for
    the same loss after 400 steps (``docs/benchmarks.md``). The factors' average moves
    on while the inverses stay, and ``kl_clip`` keeps that from blowing up the step: it
    bounds the step's predicted change of the model's distribution, ``lr^2 D^T F D / 2``
    (Ba, Grosse & Martens 2017, sec. 5). Without it the default ``lr`` diverged within
    10 steps on ``digits_mlp``.

    Only the gradient that reaches a layer through its outputs, ``V_l``, is what the
    Fisher describes and is preconditioned; whatever else ``.grad`` holds (the
    gradient of a penalty on the weights added to the loss, such as ``--l2``) steps
    plainly, which decouples weight decay from the preconditioner (Zhang, Wang, Xu &
    Grosse 2019). Without a penalty ``R_l`` is 0, and where ``.grad`` is the very
    tensor ``V_l`` it is not formed. ``G^-1 V_l A^-1`` is computed as ``(E G^-1)^T
    (Abar A^-1)`` from the rows ``E`` and ``Abar`` when that is cheaper
    (``optimlab.curvature.kfac.precondition_gradient``, into buffers kept from step to
    step), and ``V_l`` is the gradient the closure's backward pass sent through the
    layer's call, as autograd computed it (``optimlab.curvature.capture``; no copy), or
    ``E^T Abar`` where its graph has another form or a later backward call in the
    closure has accumulated into it.

    How it sees the layers: like the other closure optimizers it takes
    ``step(closure)``, built from parameters alone (the registry, the Trainer and the
    command line need nothing more). While the closure runs, module hooks
    (``optimlab.curvature.capture.Recorder``) catch every call of an ``nn.Linear`` or
    ``nn.Conv2d`` whose weight it optimizes, with its input and the gradient of its
    output, and the model's output for the draws. A layer called more than once per
    closure is refused. Parameters of other modules (normalization, embeddings, a
    grouped convolution) take plain SGD steps with the same ``lr`` (and ``nu``), and a
    warning names their module once. A layer first met between factor updates steps
    plainly until its first update.

    Cost per step: the closure; with the true Fisher on factor-update steps one more
    backward pass. Per layer with ``d`` inputs (channels x kernel size for a
    convolution), ``o`` outputs and ``R = N T`` rows: ``R (d^2 + o^2)`` for the factors
    (every ``T1`` steps); ``R o d`` where ``V_l`` is formed from the rows, and
    ``min(o d (o + d), R (o^2 + d^2 + o d))`` for the preconditioning (every step);
    ``d^3 + o^3`` for the inverses (every ``T3`` steps). Memory: ``A``, ``G`` and their
    inverses, ``2 (d^2 + o^2)`` floats per layer, and the preconditioning's buffers,
    ``o d + R (o + d)`` floats (``2 o d`` in the other order).

    Args:
        params: the model's parameters, one group.
        lr: the step size.
        damping: ``lambda > 0``, the Tikhonov damping of the Fisher.
        fisher: ``"true"`` (sampled targets, Martens & Grosse) or ``"empirical"``.
        likelihood: the distribution whose negative log-likelihood the loss is
            (``"cross_entropy"``, ``"logistic"``, ``"mse"``), for the true Fisher's draws;
            the loss's gradient in the outputs is checked against it.
        decay: ``beta`` in ``[0, 1)``, the factors' running-average decay.
        cov_interval: ``T1``, steps between factor updates.
        inv_interval: ``T3``, steps between inverse refreshes.
        kl_clip: ``kappa > 0`` bounds the step's predicted KL divergence; None: no bound.
        seed: seeds the generator of the true Fisher's draws (kept in the state).

    State, per layer (under its weight): ``A``, ``G``, ``A_inv``, ``G_inv``,
    ``factor_updates``; under the first parameter: ``n_iter``; ``draws`` (the state of
    the draws' generator); ``counts`` (closure calls).

    References: Martens & Grosse 2015, "Optimizing neural networks with
    Kronecker-factored approximate curvature", ICML; Grosse & Martens 2016, "A
    Kronecker-factored approximate Fisher matrix for convolution layers", ICML;
    Ba, Grosse & Martens 2017, "Distributed second-order optimization using
    Kronecker-factored approximations", ICLR.
    """

    registry_name = "kfac"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.1,
        damping: float = 1e-2,
        fisher: str = "true",
        likelihood: str = "cross_entropy",
        decay: float = 0.95,
        cov_interval: int = COV_INTERVAL,
        inv_interval: int = INV_INTERVAL,
        kl_clip: float | None = 1e-2,
        seed: int = 0,
    ) -> None:
        check_float("lr", lr, 0, open_low=True)
        check_float("damping", damping, 0, open_low=True)
        check_choice("fisher", fisher, FISHERS)
        check_choice("likelihood", likelihood, LIKELIHOODS)
        check_float("decay", decay, 0, 1, open_high=True)
        check_int("cov_interval", cov_interval, 1)
        check_int("inv_interval", inv_interval, 1)
        if kl_clip is not None:
            check_float("kl_clip", kl_clip, 0, open_low=True)
        check_int("seed", seed, 0)
        defaults = dict(lr=lr, damping=damping, fisher=fisher, likelihood=likelihood,
                        decay=decay, cov_interval=cov_interval, inv_interval=inv_interval,
                        kl_clip=kl_clip, seed=seed)  # fmt: skip
        super().__init__(params, defaults, None)
        self._ids = {id(p) for p in self._params}
        self._recorder = Recorder(self._params, factors.LAYER_TYPES)
        self._warned: set[str] = set()
        self._generator: torch.Generator | None = None
        self._space = factors.Workspace()

    # -- the layers -------------------------------------------------------------------

    def _layers(self) -> dict[int, Call]:
        """The recorded calls of the layers K-FAC handles, by ``id`` of their weight;
        a layer called more than once is refused."""
        by_weight: dict[int, Call] = {}
        for call in self._recorder.layers:
            if factors.unsupported(call.module):
                continue
            key = id(call.module.weight)
            if key in by_weight:
                raise OptimlabError(
                    f"KFAC: the layer {self._name(call.module)} was called more than once in "
                    f"one closure (shared weights); K-FAC here takes one call per layer"
                )
            by_weight[key] = call
        return by_weight

    def _name(self, module: nn.Module) -> str:
        model = self._recorder.model
        names = module_names(model.module) if model is not None else {}
        return f"{type(module).__name__} {names.get(id(module), '(outside the model)')!r}"

    def _bias(self, module: nn.Module) -> Tensor | None:
        """The layer's bias when it is optimized here (then ``A`` has the 1 appended)."""
        bias = getattr(module, "bias", None)
        return bias if bias is not None and id(bias) in self._ids else None

    def _warn_plain(self, plain: list[Tensor]) -> None:
        """Warn once per module whose parameters take plain SGD steps."""
        ids = {id(p) for p in plain}
        model = self._recorder.model
        found: set[int] = set()
        messages: dict[str, str] = {}
        for name, module in model.module.named_modules() if model is not None else ():
            own = [n for n, p in module.named_parameters(recurse=False) if id(p) in ids]
            found.update(id(p) for p in module.parameters(recurse=False) if id(p) in ids)
            if own:
                label = f"{type(module).__name__} {name or '(the model)'!r}"
                why = factors.unsupported(module) or "its weight is not optimized here"
                messages[label] = f"{label} ({why}); its parameters ({', '.join(own)})"
        outside = [i for i, p in enumerate(self._params) if id(p) in ids - found]
        if outside:
            messages["outside"] = f"parameters {outside} (by position; outside the model)"
        for label, what in messages.items():
            if label not in self._warned:
                self._warned.add(label)
                warnings.warn(
                    f"KFAC has no Kronecker factors for {what} take plain SGD steps, w <- w - lr g",
                    stacklevel=4,
                )

    # -- the step ---------------------------------------------------------------------

    def _rng(self, group: dict[str, Any], device: torch.device) -> torch.Generator:
        """The draws' generator, seeded by ``seed`` and continued from the state (kept
        under a key of its own: torch would cast a parameter's state to its dtype)."""
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(int(group["seed"]))
        if DRAWS in self.state:
            self._generator.set_state(self.state[DRAWS])
        return self._generator

    def _sample_gradients(self, group: dict[str, Any], layers: dict[int, Call]) -> None:
        """The backward pass at sampled targets; the layers' hooks catch its gradients
        (after the closure's)."""
        model = self._recorder.model
        if model is None or not isinstance(model.output, Tensor):
            raise OptimlabError(
                "KFAC with fisher='true' draws targets from the model's output: the loss "
                "must be computed inside the closure from an nn.Module's output tensor"
            )
        z = model.output
        if model.output_grads:
            check_output_gradient(group["likelihood"], z, model.output_grads[0], "KFAC")
        gen = self._rng(group, z.device)
        # ask for the gradients of the layers' outputs, which the pass reaches without
        # computing weight gradients; of the weight where an in-place operation has
        # changed an output since (the hooks catch the pre-activation's either way)
        targets = [c.output if c.output_intact else c.module.weight for c in layers.values()]
        with torch.enable_grad():
            loss = sampled_loss(group["likelihood"], z, gen)
            torch.autograd.grad(loss, targets, allow_unused=True)
        self.state[DRAWS] = gen.get_state()

    def _update_factors(self, decay: float, layers: dict[int, Call], passes: dict) -> None:
        for key, call in layers.items():
            grads = passes[key].factor_grads
            if grads is None:  # the layer's output did not reach the loss
                continue
            s = self.state[call.module.weight]
            examples = call.input.shape[0]
            rows = passes[key].in_rows
            if self._bias(call.module) is not None:  # the homogeneous coordinate
                rows = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
            a = factors.input_factor(rows, examples)
            g = factors.output_factor(factors.output_rows(call.module, grads), examples)
            j = s.get("factor_updates", 0) + 1
            beta = min(decay, 1.0 - 1.0 / j)
            s["A"] = a if j == 1 else s["A"].lerp_(a, 1 - beta)
            s["G"] = g if j == 1 else s["G"].lerp_(g, 1 - beta)
            s["factor_updates"] = j

    def _refresh_inverses(self, damping: float, layers: dict[int, Call]) -> None:
        for call in layers.values():
            s = self.state[call.module.weight]
            if "A" in s:
                s["A_inv"], s["G_inv"] = factors.damped_inverses(
                    s["A"], s["G"], damping, self._name(call.module)
                )

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """One K-FAC step; return the loss before it."""
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        k = state.get("n_iter", 0)
        update = k % group["cov_interval"] == 0
        sampled = update and group["fisher"] == "true"
        if closure is None:
            self._call(None)  # raises, naming what the closure must do
        try:
            # V without a copy: the version counters tell where it was changed since
            with self._recorder.recording(layers=True, param_grads=True, copy=False):
                # the sampled pass runs backward through the closure's graph once more
                with backward_retains_graph() if sampled else nullcontext():
                    loss = self._call(closure)
            self._start_loss(loss)
            layers = self._layers()
            closure_grads = {key: len(call.output_grads) for key, call in layers.items()}
            if sampled and layers:
                self._sample_gradients(group, layers)
            passes = {
                key: _LayerPass.of(call, self._bias(call.module), closure_grads[key], sampled)
                for key, call in layers.items()
            }
            if update:
                self._update_factors(float(group["decay"]), layers, passes)
            if k % group["inv_interval"] == 0:
                self._refresh_inverses(float(group["damping"]), layers)
            self._apply(group, layers, passes)
        finally:
            self._recorder.clear()  # frees the graph and the recorded tensors
        state["n_iter"] = k + 1
        return loss

    def _apply(self, group: dict[str, Any], layers: dict[int, Call], passes: dict) -> None:
        """``w <- w - lr nu D`` (see the class docstring)."""
        lr = float(group["lr"])
        steps: list[tuple[Tensor, Tensor]] = []
        known: set[int] = set()  # a layer not inverted yet: plain steps, unwarned
        kl = 0.0
        for key, call in layers.items():
            weight, bias = call.module.weight, self._bias(call.module)
            known.update((key, id(bias)))
            s, lp = self.state.get(weight, {}), passes[key]
            if "A_inv" not in s or weight.grad is None or lp.out_rows is None:
                continue
            # the gradient through the layer's outputs V: as the closure's backward pass
            # computed it where the recorder caught it (and nothing has changed it since),
            # else from the rows
            caught = call.intact_param_grads()
            v_w = caught.get("weight")
            v_b = caught.get("bias") if bias is not None else None
            if v_w is None or (bias is not None and v_b is None):
                v_w = lp.out_rows.T @ lp.in_rows
                v_b = lp.out_rows.sum(0) if bias is not None else None
            v_w = v_w.reshape(v_w.shape[0], -1)
            d_w, d_b = factors.precondition_gradient(
                lp.out_rows, lp.in_rows, s["A_inv"], s["G_inv"], v_w, v_b, self._space, key
            )
            kl += float(torch.dot(d_w.view(-1), v_w.reshape(-1)))
            # D = G^-1 V A^-1 + ([dW | db] - V): what else .grad holds steps plainly; where
            # .grad is V itself (autograd handed the caught tensor on and nothing else
            # reached it), that rest is exactly 0
            grad = weight.grad.reshape(d_w.shape)
            if not _same(grad, v_w):
                d_w.add_(grad).sub_(v_w)
            steps.append((weight, d_w.view(weight.shape)))
            if bias is not None and d_b is not None and v_b is not None:
                kl += float(torch.dot(d_b, v_b))
                if bias.grad is None:
                    d_b.sub_(v_b)
                elif not _same(bias.grad, v_b):
                    d_b.add_(bias.grad).sub_(v_b)
                steps.append((bias, d_b))
        handled = {id(p) for p, _ in steps}
        for p in self._params:
            if id(p) not in handled and p.grad is not None:
                steps.append((p, p.grad))
        unknown = [p for p in self._params if id(p) not in known and p.grad is not None]
        if unknown:
            self._warn_plain(unknown)
        nu = 1.0
        kappa = group["kl_clip"]
        if kappa is not None and kl > 0:
            nu = min(1.0, math.sqrt(kappa / (lr * lr * kl)))
        for p, d in steps:
            p.add_(d, alpha=-lr * nu)


def _same(grad: Tensor, v: Tensor) -> bool:
    """Whether ``grad`` is the very memory of ``v``, element for element."""
    return (
        grad.data_ptr() == v.data_ptr()
        and grad.shape == v.shape
        and grad.stride() == v.stride()
        and grad.dtype == v.dtype
    )


class _LayerPass:
    """One layer's rows in this step: its inputs (without the 1 for the bias), the
    closure's output gradients, and the gradients its factor ``G`` takes (sampled or the
    closure's)."""

    def __init__(self, in_rows: Tensor, out_rows: Tensor | None, factor_grads: Tensor | None):
        self.in_rows, self.out_rows, self.factor_grads = in_rows, out_rows, factor_grads

    @classmethod
    def of(cls, call: Call, bias: Tensor | None, closure_grads: int, sampled: bool) -> _LayerPass:
        in_rows = factors.input_rows(call.module, call.input, False)
        grads = call.output_grads
        own = grads[0] if closure_grads else None
        out_rows = None if own is None else factors.output_rows(call.module, own)
        drawn = grads[closure_grads] if sampled and len(grads) > closure_grads else None
        return cls(in_rows, out_rows, drawn if sampled else own)
