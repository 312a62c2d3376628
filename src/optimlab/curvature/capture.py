"""What a closure's forward and backward passes carry through a model's modules.

A ``torch.optim`` closure leaves the batch gradient in ``.grad``; a preconditioner built
from the Fisher needs more: the model's outputs and the gradient of the loss in them
(per-example gradients, the true Fisher), or each layer's input and the gradient of
its output (K-FAC's Kronecker factors). ``Recorder`` watches a closure's passes
through process-wide module hooks (``torch.nn.modules.module``'s
``register_module_forward_pre_hook`` and ``register_module_forward_hook``) that exist
only while the closure runs, so an optimizer built from parameters alone, as the
registry builds every optimizer, learns what it needs:

* the *model*: the outermost module called that owns one of the parameters, with its
  positional arguments, its output ``z`` (graph kept) and the gradients that backward
  passes send into ``z``;
* the *layers*: every call of a module of the watched types whose ``weight`` is one of
  the parameters, with its input and the gradients sent into its output.

Gradients are caught by tensor hooks on the outputs. A tensor hook fires with the
gradient of the value the module produced even when a later in-place operation
(``ReLU(inplace=True)``) overwrites the tensor, so the gradient of a layer's
pre-activation is what is caught.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules import module as module_hooks
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd


@dataclass
class Call:
    """One call of a watched module.

    Attributes:
        module: the module called.
        args: its positional arguments.
        output: what it returned (with its graph).
        output_grads: the gradients backward passes sent into ``output``, in order.
        param_grads: when asked for, the gradients of the module's ``weight`` and ``bias``
            (by name, shaped like them) that the first backward pass computed through this
            call; empty where the pass's graph is not of a recognized form. Copies, or
            when asked for, the tensors autograd computed (no copy; autograd may hand one
            on as ``.grad`` and accumulate into it later: ``intact_param_grads`` tells).
        param_versions: the version counters of ``param_grads`` when they were caught.
        version: the output's version counter at the call.
    """

    module: nn.Module
    args: tuple[Any, ...]
    output: Any
    output_grads: list[Tensor] = field(default_factory=list)
    param_grads: dict[str, Tensor] = field(default_factory=dict)
    param_versions: dict[str, int] = field(default_factory=dict)
    version: int = field(init=False, default=-1)
    hooks: list[Any] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.output, Tensor):
            self.version = self.output._version

    @property
    def input(self) -> Tensor:
        """The first positional argument, detached."""
        return self.args[0].detach()

    @property
    def output_intact(self) -> bool:
        """Whether no in-place operation has changed the output since the call (then a
        gradient asked for it is the gradient of what the module returned)."""
        return isinstance(self.output, Tensor) and self.output._version == self.version

    def release(self) -> None:
        """Remove the call's gradient hooks and drop its tensors. The hooks refer to the
        call and the call to the output, whose autograd node holds the hooks: a cycle
        through C++ that Python's garbage collector cannot see, which would keep each
        recorded pass's graph and tensors alive for good."""
        for handle in self.hooks:
            handle.remove()
        self.hooks.clear()
        self.args, self.output = (), None
        self.output_grads, self.param_grads, self.param_versions = [], {}, {}

    def intact_param_grads(self) -> dict[str, Tensor]:
        """The ``param_grads`` that no in-place operation has changed since they were
        caught (all of them where they are copies)."""
        return {
            name: grad
            for name, grad in self.param_grads.items()
            if grad._version == self.param_versions.get(name)
        }


class Recorder:
    """Records a closure's model call and layer calls (see the module docstring).

    Args:
        params: the parameters whose modules are watched.
        layer_types: the module types recorded as layers (e.g. ``(nn.Linear, nn.Conv2d)``).
    """

    def __init__(self, params: Iterable[Tensor], layer_types: tuple[type, ...] = ()) -> None:
        self._ids = {id(p) for p in params}
        self.layer_types = layer_types
        self.model: Call | None = None
        #: further calls of modules that own parameters, beyond the first
        self.other_model_calls = 0
        self.layers: list[Call] = []

    def clear(self) -> None:
        """Drop the records (and with them the graph they hold)."""
        for call in [*self.layers, *([self.model] if self.model is not None else [])]:
            call.release()
        self.model, self.other_model_calls, self.layers = None, 0, []

    def owns(self, module: nn.Module) -> bool:
        """Whether ``module`` (or a submodule) holds one of the parameters."""
        return any(id(p) in self._ids for p in module.parameters())

    def _is_layer(self, module: nn.Module) -> bool:
        weight = getattr(module, "weight", None)
        return isinstance(module, self.layer_types) and id(weight) in self._ids

    @contextmanager
    def recording(
        self, *, layers: bool = False, param_grads: bool = False, copy: bool = True
    ) -> Iterator[Recorder]:
        """Record the model call (always) and the layer calls (when ``layers``) of the
        code run inside, with the layers' own parameter gradients (when ``param_grads``,
        copies unless ``copy`` is false; see ``Call``); earlier records are dropped on
        entry."""
        self.clear()
        depth = 0

        def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            nonlocal depth
            depth += 1

        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            nonlocal depth
            depth -= 1
            if layers and self._is_layer(module):
                call = self._watch(Call(module, args, output))
                if param_grads:
                    _watch_params(call, copy)
                self.layers.append(call)
            if depth == 0 and self.owns(module):
                if self.model is None:
                    self.model = self._watch(Call(module, args, output))
                else:
                    self.other_model_calls += 1

        handles = [
            module_hooks.register_module_forward_pre_hook(pre_hook),
            module_hooks.register_module_forward_hook(hook),
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    @staticmethod
    def _watch(call: Call) -> Call:
        out = call.output
        if isinstance(out, Tensor) and out.requires_grad:
            call.hooks.append(
                out.register_hook(lambda grad: call.output_grads.append(grad.detach()))
            )
        return call


def _param_slots(node: Any, module: nn.Module) -> dict[str, tuple[int, bool]]:
    """Where the gradients of ``module``'s ``weight`` and ``bias`` are among the outputs
    of its call's autograd node: ``name -> (index, transposed)``, for a node whose inputs
    are the parameters themselves (a convolution) or the weight transposed (``addmm``
    and ``mm`` of a dense layer on a matrix); other forms give no slots."""
    slots: dict[str, tuple[int, bool]] = {}
    for i, (fn, _) in enumerate(node.next_functions):
        transposed = False
        if fn is not None and fn.name() == "TBackward0" and len(fn.next_functions) == 1:
            fn, transposed = fn.next_functions[0][0], True
        variable = getattr(fn, "variable", None)
        for name in ("weight", "bias"):
            param = getattr(module, name, None)
            if variable is not None and variable is param:
                slots[name] = (i, transposed and name == "weight")
    return slots


def _watch_params(call: Call, copy: bool = True) -> None:
    """Keep, on the first backward pass through ``call``, the gradients its node sends to
    the module's weight and bias: the part of their ``.grad`` that came through this
    call's output. A copy is what a later pass or penalty does not change (autograd may
    hand the tensor on as ``.grad`` and accumulate into it); without one, the version
    counters recorded tell whether it still holds (a copy of a dense layer's weight
    gradient costs as much as a pass over the weights, in a fresh allocation)."""
    node = getattr(call.output, "grad_fn", None)
    if node is None:
        return
    slots = _param_slots(node, call.module)
    if "weight" not in slots:
        return

    def hook(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
        # the first pass only, and only when it is the pass whose output gradient was
        # caught first (the output's tensor hook runs before its node)
        if call.param_grads or len(call.output_grads) != 1:
            return
        for name, (i, transposed) in slots.items():
            grad = grad_inputs[i]
            if grad is not None:
                grad = grad.T if transposed else grad
                if copy:
                    grad = grad.clone(memory_format=torch.contiguous_format)
                call.param_grads[name] = grad
                call.param_versions[name] = grad._version

    call.hooks.append(node.register_hook(hook))


def example_mixing_modules(model: nn.Module) -> list[str]:
    """Names (and types) of the submodules whose training-mode forward pass is not one
    function applied to each example alone: batch normalization (it mixes the
    examples of a batch) and dropout with ``p > 0`` (it draws random masks, which a
    second pass would draw anew). Per-example gradients computed by running the model
    again differ from the batch's for these."""
    found = []
    for name, m in model.named_modules():
        mixing = isinstance(m, _BatchNorm) and m.training
        random = isinstance(m, _DropoutNd) and m.training and m.p > 0
        if mixing or random:
            found.append(f"{type(m).__name__} {name or '(the model)'!r}")
    return found


def module_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> qualified name`` for the submodules of ``model``."""
    return {id(m): name or "(the model)" for name, m in model.named_modules()}


def parameter_names(model: nn.Module) -> dict[int, str]:
    """``id(parameter) -> qualified name`` for the parameters of ``model``."""
    return {id(p): name for name, p in model.named_parameters()}
