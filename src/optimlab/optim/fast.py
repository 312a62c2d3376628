"""The fast path: the same transform chain, compiled into fused kernels.

An optimizer step is elementwise and memory-bound; run eagerly, each line of a
rule is its own pass over memory. ``torch.compile`` fuses the whole chain (every
transform of a param group, and the final ``w <- w + u``) into a few loops that read
each tensor once, with no second copy of the math: it traces ``apply_chain``, the
very function the eager path runs.

What keeps it from recompiling: the values that change during training are
tensors in the graph, not constants. The step count already is one (per-parameter
state, and ``step_of`` hands the tensor to a traced rule); the learning rate, or
the value of a learning-rate schedule at this step, is written into a 0-d tensor
per param group before each call. Other hyperparameters are constants of the
graph: changing one (say, momentum) compiles a new graph, once.

What keeps compile time independent of the number of tensors: the compiled chain
would unroll over every tensor of a group (seconds per tensor). Instead, on its
first fast step a group is moved into flat buffers (``optimlab.optim.flat``): one
contiguous tensor for the parameters and one per state key, the per-parameter
tensors becoming views into them, and the unchanged chain runs compiled on those
single tensors. Gradients are copied into a flat buffer each step (one
foreach copy), unless they already live there. That copy adds 8 B per parameter to
the 12 to 28 B a step moves, so tensors of ``LARGE_NUMEL`` elements or more skip
it: each is stepped in place, as a 1-D view of its memory (the graph is compiled
for the model's sizes), in the same compiled call as the flat buffers, up to
``MAX_BUNDLE`` large tensors per call. Measured on the 14.7M-parameter benchmark
model (2-core CPU): the gather made the compiled SGD step 2.3x slower than with
gradients in place; stepping the large tensors in place removes the difference,
and one call for the group instead of one per tensor saves the fixed cost of a
call, which is large on a step that streams hundreds of megabytes (the call's
Python and guard code then runs with cold caches). The result is
the same because every rule is elementwise; a group is never split while a
group-wide option (``clip_global_norm``) is set, and falls back to the per-tensor
compiled chain when

* a per-tensor option is set: ``clip_norm`` (the norm of each tensor, not of the
  group; ``clip_global_norm`` is the norm of the flat group and stays flat),
* the chain holds a transform from outside optimlab that does not declare
  ``elementwise = True``,
* its tensors mix dtypes or devices or are not dense (contiguous or channels-last),
  or the parameters' step counts differ (some were skipped while their gradient
  was None).

Flattening re-points ``p.data`` (values unchanged): code that keeps the old storage
of a parameter, rather than the parameter, no longer sees its updates.

The first step of every parameter runs eagerly so that state buffers are created
outside the compiled graph, and so does a step with a schedule as the learning rate
while the group's parameters have taken different numbers of updates (some had no
gradient for a while): each reads the schedule at its own count, which one lr
tensor per call cannot give. Inductor caches compiled kernels on disk (its FX graph
cache, on by default), so later processes start faster; ``compile_seconds`` records
the time the first compiled call took in this process.
"""

from __future__ import annotations

import itertools
import operator
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from optimlab.optim.flat import FlatGroup, dense, flat_safe, flatten, group_wide, memory_view
from optimlab.optim.transform import (
    Transform,
    apply_chain,
    compute_dtype,
    init_steps,
    lr_at,
    step_of,
)

# Tensors with at least this many elements are stepped in place as 1-D views, the rest
# on flat buffers (see ``FastPath._large_views``). Gathering a gradient into the flat
# buffer costs 8 B per element, about 0.5 ns per element at its ~17 GB/s on a 2-core
# CPU (0.13 ms at 2^18 elements); a tensor stepped in place costs instead its share of
# a compiled call (its guards, inputs and per-step scalars: tens of us, measured), and
# makes the call's graph larger, which costs compile time.
LARGE_NUMEL = 2**18

# At most this many large tensors share one compiled call (see ``_bundled_steps``). It
# was 8: 14 tensors of 1024x1024 then took two calls, and one call (16) made the Adam
# step 4 to 5% faster against torch's fused kernel (docs/benchmarks.md, "One build").
MAX_BUNDLE = 16


def group_step(
    transforms: Sequence[Transform],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict],
    spread: dict[str, Tensor],
    hp: dict[str, Any],
) -> None:
    """``apply_chain`` on the tensors of one compiled call: large tensors' 1-D views
    and, last, a flattened group (or, for a group that cannot be flattened, its
    tensors as they are). The flat group's scalar state (step, ...) is then copied to
    every parameter's entry (``spread``; empty when there is no flat group)."""
    # a large tensor's gradient may arrive in its own shape (see ``_grad_view``) to
    # be stepped with the 1-D view of its parameter: viewed as 1-D here, inside the
    # graph, where the view costs nothing at run time
    grads = [g.view(-1) if g.dim() != p.dim() else g for p, g in zip(params, grads)]
    apply_chain(transforms, params, grads, states, hp)
    for key, buf in spread.items():
        buf.copy_(states[-1][key].expand_as(buf))


class FastPath:
    """Runs ``apply_chain`` compiled, with the learning rate held in 0-d tensors.

    Groups are stepped on flat buffers when they can be (see the module docstring),
    per tensor otherwise; ``flat_groups`` says which group indices are flat now.
    ``backend`` is handed to ``torch.compile`` (tests inspect the graphs with their own).
    """

    def __init__(
        self,
        large_numel: int | None = LARGE_NUMEL,
        backend: Any = "inductor",
        max_bundle: int = MAX_BUNDLE,
    ) -> None:
        self.large_numel = large_numel
        self.max_bundle = max_bundle
        self.backend = backend
        # ("bundle", group index, large tensors in the call, with the flat group) or
        # ("tensors", group index) for the per-tensor chain -> its compiled function;
        # one code object each, so that one group's variants (dynamo keeps 8 per code
        # object, then runs it eagerly) never evict another's
        self._graphs: dict[tuple, Callable[..., None]] = {}
        self._lr: dict[int, Tensor] = {}
        self._lr_value: dict[int, float | None] = {}  # what each slot holds
        self._flat: dict[int, FlatGroup] = {}
        # group index -> (its parameters, indices of the large ones), checked by identity
        self._large: dict[int, tuple[list[Tensor], list[int]]] = {}
        # parameter id -> its 1-D views, reused while parameter and state are unchanged
        self._views: dict[int, _OneTensor] = {}
        # group index -> the state dicts it could not be flattened with (retry on change)
        self._refused: dict[int, list[dict]] = {}
        # group index -> (parameters, states) last seen with equal update counts
        self._agreed: dict[int, tuple[list[Tensor], list[dict]]] = {}
        self.compile_seconds: float | None = None

    @property
    def flat_groups(self) -> list[int]:
        return sorted(self._flat)

    def _graph(self, *key: Any) -> Callable[..., None]:
        graph = self._graphs.get(key)
        if graph is None:
            # Sizes and hyperparameters are constants of the graph: with ``dynamic=True``
            # every float in the group became a graph input, converted to a tensor on
            # each call and loaded inside the loop, and symbolic sizes (a first fix)
            # still cost a size lookup per large tensor on every call (measured in
            # docs/benchmarks.md, "Static sizes"). ``dynamic=None``: a size that does
            # change compiles once more, with that size symbolic.
            options = None
            if self.backend == "inductor":
                # Inductor's wrapper asserts every input's sizes and strides on every
                # call (77 checks on the 14.7M-parameter mixed model); dynamo's guards
                # have checked the same sizes and strides of every tensor input before
                # the call, so the asserts can never fire (they catch inductor bugs).
                options = {"size_asserts": False}
            graph = torch.compile(
                _own_copy(group_step), dynamic=None, backend=self.backend, options=options
            )
            self._graphs[key] = graph
        return graph

    def _flat_group(
        self,
        params: list[Tensor],
        states: list[dict],
        index: int,
        safe: bool,
    ) -> FlatGroup | None:
        flat = self._flat.get(index)
        if flat is not None and not flat.matches(params, states):
            # new state dicts (load_state_dict), another set of gradients, new storage:
            # build again from the per-parameter tensors, which hold the current values
            del self._flat[index]
            flat = None
        if not safe:
            # per-tensor steps advance each parameter's own scalars: the flat copy
            # of them would go stale, so it is dropped and rebuilt later
            self._flat.pop(index, None)
            return None
        if flat is None:
            refused = self._refused.get(index)
            if refused is not None and _same(refused, states):
                return None
            flat = flatten(params, states)
            if flat is None:
                self._refused[index] = list(states)
                return None
            self._refused.pop(index, None)
            self._flat[index] = flat
        return flat

    def ready(self, states: list[dict]) -> bool:
        """Compiled steps need every parameter's state to exist already."""
        return all(map(operator.contains, states, itertools.repeat("step")))

    def _counts_agree(self, params: list[Tensor], states: list[dict], index: int) -> bool:
        """Whether the group's parameters have all taken the same number of updates.

        Read from the states (a host sync per parameter) only when the parameters or
        their states differ from the last call's: every step of the group passes
        through this object, and one that steps these very parameters together keeps
        their counts equal. Any other step forgets the group's entry."""
        agreed = self._agreed.get(index)
        if agreed is not None and _same(agreed[0], params) and _same(agreed[1], states):
            return True
        if len({float(step_of(state)) for state in states}) == 1:
            self._agreed[index] = (list(params), list(states))
            return True
        self._agreed.pop(index, None)
        return False

    def __call__(
        self,
        transforms: Sequence[Transform],
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict],
        group: dict[str, Any],
        index: int,
    ) -> None:
        """One step of a param group: compiled, or eagerly where it must be."""
        lr = group["lr"]
        schedule = callable(lr) and not isinstance(lr, Tensor)
        if not schedule:
            self._agreed.pop(index, None)
        if not self.ready(states) or (schedule and not self._counts_agree(params, states, index)):
            # eagerly: a parameter's first step (its state buffers are created outside
            # the graph), or a schedule while update counts differ (one lr tensor per
            # call cannot give each parameter the schedule at its own count). The eager
            # chain advances each parameter's own scalars (step): the flat group's copy
            # of them would go stale, so it is built again at the next compiled step.
            self._flat.pop(index, None)
            self._agreed.pop(index, None)
            init_steps(params, states)
            apply_chain(transforms, params, grads, states, group)
            return
        # one lr tensor serves the whole call: read the schedule once, at the update
        # count every parameter shares (apply_chain counts this update inside the call)
        lr = lr_at(lr, step_of(states[0]) + 1)
        # in the dtype the step computes in (float32 for float32 and the half types):
        # the loop then loads and broadcasts it in one instruction, not three
        dtype, device = compute_dtype(params[0].dtype), params[0].device
        slot = self._lr.get(index)
        if slot is None or slot.device != device or slot.dtype != dtype:
            slot = self._lr[index] = torch.zeros((), dtype=dtype, device=device)
            self._lr_value.pop(index, None)
        # written only when it changes: a tensor op costs tens of us with cold caches
        if isinstance(lr, Tensor) or self._lr_value.get(index) != lr:
            slot.fill_(lr)
            self._lr_value[index] = None if isinstance(lr, Tensor) else lr
        hp = {k: v for k, v in group.items() if k != "params"}
        hp["lr"] = slot
        start = time.perf_counter() if self.compile_seconds is None else None
        # one check per step: whether the chain gives the same result on concatenations
        safe = flat_safe(transforms, group)
        split = safe and self.large_numel is not None and not group_wide(transforms, group)
        large = self._large_views(params, grads, states, index) if split else []
        if large:
            taken = {i for i, _, _ in large}
            rest = [i for i in range(len(params)) if i not in taken]
            params, grads, states = (
                [params[i] for i in rest],
                [grads[i] for i in rest],
                [states[i] for i in rest],
            )
        flat = None
        if params:
            flat = self._flat_group(params, states, index, safe)
            if flat is None:
                # not flattened: the chain over the tensors, unrolled in the graph
                self._graph("tensors", index)(transforms, params, grads, states, {}, hp)
            else:
                flat.gather(grads)
        self._bundled_steps(transforms, large, flat, index, hp)
        if flat is not None:
            flat.adopt_new_keys()
        for _, one, _ in large:
            one.adopt_new_keys()
        if start is not None:
            self.compile_seconds = time.perf_counter() - start

    def _bundled_steps(
        self,
        transforms: Sequence[Transform],
        large: list[tuple[int, _OneTensor, Tensor]],
        flat: FlatGroup | None,
        index: int,
        hp: dict[str, Any],
    ) -> None:
        """Step the large tensors' views and the flat group in as few compiled calls
        as ``MAX_BUNDLE`` allows: the flat group rides along with the last call.

        On a step that streams hundreds of megabytes, the Python and guard code of
        each compiled call runs with cold caches: one call cost about 0.35 ms there
        against 0.03 ms warm (measured, 2-core CPU), so four large Adam tensors in
        one call instead of four saved 1.4 ms of a 21 ms step. A call's graph grows
        with its tensors (about 0.9 s of compiling per tensor for Adam, once; cached
        on disk), hence the bound.
        """
        size = self.max_bundle
        chunks = [large[i : i + size] for i in range(0, len(large), size)]
        if flat is not None and not chunks:
            chunks = [[]]
        for n, chunk in enumerate(chunks):
            params = [one.param_view for _, one, _ in chunk]
            grads = [grad for _, _, grad in chunk]
            states = [one.state_view for _, one, _ in chunk]
            spread: dict[str, Tensor] = {}
            with_flat = flat is not None and n == len(chunks) - 1
            if with_flat:
                params.append(flat.param)
                grads.append(flat.grad)
                states.append(flat.state)
                spread = flat.spread
            graph = self._graph("bundle", index, len(chunk), with_flat)
            graph(transforms, params, grads, states, spread, hp)

    def _large_views(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict],
        index: int,
    ) -> list[tuple[int, _OneTensor, Tensor]]:
        """The group's large tensors that can be stepped as 1-D views: their index,
        views and gradient view. Called only for a group that may be split.

        A large tensor's step is long enough that stepping it in place costs little,
        while gathering its gradient into a flat buffer would add 8 B per parameter
        to the 12 to 28 B the step moves. Every view's length is marked as a symbolic
        size, so graphs do not depend on the tensors' sizes.
        """
        cached = self._large.get(index)
        if cached is None or not _same(cached[0], params):
            large = [i for i, p in enumerate(params) if p.numel() >= self.large_numel]
            cached = self._large[index] = (list(params), large)
            kept = {id(c[0][i]) for c in self._large.values() for i in c[1]}
            self._views = {k: v for k, v in self._views.items() if k in kept}
        found = []
        device = params[0].device
        views = self._views
        for i in cached[1]:
            p, g, state = params[i], grads[i], states[i]
            one = views.get(id(p))
            if one is None or not one.matches(p, state):
                # one compiled call takes every large tensor: keep it on one device (a
                # group that spans devices steps the others on the per-tensor path)
                if p.device != device or not _viewable(p, g, state):
                    continue
                one = views[id(p)] = _OneTensor.of(p, state)
            elif not one.takes(g):
                continue
            found.append((i, one, _grad_view(g)))
        return found


@dataclass
class _OneTensor:
    """A large parameter's 1-D views (parameter and state), marked dynamic in length,
    with what they were made from: rebuilt when the parameter's storage, its state
    dict or a state entry is replaced (``p.data = ...``, ``load_state_dict``)."""

    param: Tensor
    ptr: int
    state: dict
    values: list[Any]
    param_view: Tensor
    state_view: dict[str, Tensor]

    @classmethod
    def of(cls, p: Tensor, state: dict) -> _OneTensor:
        param_view = memory_view(p)
        state_view = {k: memory_view(v) if v.dim() else v for k, v in state.items()}
        return cls(p, p.data_ptr(), state, list(state.values()), param_view, state_view)

    def adopt_new_keys(self) -> None:
        """Hand state entries created inside a compiled step out to the parameter's
        state, shaped as the parameter; the views are then made again."""
        created = self.state_view.keys() - self.state.keys()
        if not created:
            return
        for key in created:
            value = self.state_view[key]
            self.state[key] = (
                value.as_strided(self.param.shape, self.param.stride()) if value.dim() else value
            )
        fresh = _OneTensor.of(self.param, self.state)
        self.ptr, self.values, self.state_view = fresh.ptr, fresh.values, fresh.state_view
        self.param_view = fresh.param_view

    def takes(self, g: Tensor) -> bool:
        """Whether ``g`` can be stepped with these views: the part of ``_viewable``
        that a new gradient can change (parameter and state were checked when the
        views were made, and ``matches`` holds them unchanged since)."""
        p = self.param
        return (
            g.shape == p.shape
            and g.stride() == p.stride()
            and g.dtype == p.dtype
            and g.device == p.device
        )

    def matches(self, p: Tensor, state: dict) -> bool:
        return (
            p is self.param
            and state is self.state
            and p.data_ptr() == self.ptr
            and len(state) == len(self.values)
            and all(map(operator.is_, state.values(), self.values))
        )


def _viewable(p: Tensor, g: Tensor, state: dict) -> bool:
    """Whether the parameter, its gradient and its state share one dense memory layout,
    dtype and device, so that each can be stepped as its 1-D memory view."""
    return (
        dense(p)
        and g.shape == p.shape
        and g.stride() == p.stride()
        and g.dtype == p.dtype
        and g.device == p.device
        and all(
            isinstance(v, Tensor)
            and v.device == p.device
            and (v.dim() == 0 or (v.shape == p.shape and v.stride() == p.stride()))
            for v in state.values()
        )
    )


def _grad_view(g: Tensor) -> Tensor:
    """A large tensor's gradient as the compiled step takes it: the gradient itself
    when it is contiguous (``group_step`` views it as 1-D inside the graph), else its
    memory as a 1-D view.

    Nothing is kept across steps: ``backward`` hands over a new gradient whenever the
    loop drops the old one, and a kept view would hold the dropped gradient's memory
    until the next step. A view made here costs a tensor op per large tensor on every
    step (two with the ``detach``), about 5 us each.
    """
    if g.is_contiguous() and not g.requires_grad:
        return g
    return memory_view(g)


def _own_copy(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn`` with its own code object.

    Dynamo keeps its compiled graphs per code object and stops compiling one after
    ``cache_size_limit`` (8) variants, running it eagerly from then on. Every
    optimizer's chain is another variant (guards on its transforms), so a process that
    builds many fast optimizers (a study, a benchmark) would silently lose the fast
    path; a copy of the code per ``FastPath`` keeps each one's cache apart.
    """
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__)


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Whether two lists hold the same objects (identity, compared in C)."""
    return len(a) == len(b) and all(map(operator.is_, a, b))
