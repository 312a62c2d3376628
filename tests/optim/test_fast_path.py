"""The fast path runs the same transforms compiled: it must give the eager path's
results (1e-6 relative, float32, 100 steps) and never recompile as the learning
rate changes.

Groups run on flat buffers (optimlab.optim.flat) unless a per-tensor option is
set; the tests below also check state_dict round trips, load_state_dict and
add_param_group once the tensors are views into those buffers, and that the
compiled graph does not grow with the number of tensors.

"Relative" is per tensor, in norm: ||fast - eager|| <= 1e-6 ||eager||. Fused kernels
round in another order than eager ops (and a schedule's lr is a float32 tensor
instead of a Python double), so single entries near zero can differ by a few ulps
of the tensor's scale; element-wise relative error is not meaningful there."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch._dynamo

import optimlab.optim as oo
from optimlab.optim.transform import SCALAR_SPAN

STEPS = 100


# Optimizers built from parameters alone (path_sgd also reads the model's layers).
PARAMETERS_ONLY = [
    n
    for n in oo.available(needs_closure=False)
    if not getattr(oo.get(n).builder, "needs_model", False)
]


SHAPES = [(64, 32), (32,), (7,)]


def make_params(shapes=SHAPES, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen).requires_grad_() for s in shapes]


def steps(opt, params, first: int, count: int) -> None:
    for step in range(first, first + count):
        g = torch.Generator().manual_seed(1000 + step)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g) + 0.1 * p.detach()
        opt.step()


def run(name: str, fast: bool, lr=None, flat: bool | None = None, **hp) -> list[torch.Tensor]:
    params = make_params()
    kwargs = dict(hp)
    if lr is not None:
        kwargs["lr"] = lr
    opt = oo.create(name, params, fast=fast, **kwargs)
    steps(opt, params, 0, STEPS)
    if fast and flat is not None:
        assert opt.fast.flat_groups == ([0] if flat else [])
    return [p.detach() for p in params]


def assert_same(fast: list[torch.Tensor], eager: list[torch.Tensor]) -> None:
    for a, b in zip(fast, eager):
        assert torch.linalg.vector_norm(a - b) <= 1e-6 * torch.linalg.vector_norm(b)


def schedule(step: int) -> float:
    return 0.05 / (1 + 0.1 * step)


@pytest.mark.parametrize(
    "name, hp",
    [
        ("adam", {}),
        ("momentum", {"weight_decay": 1e-3}),
        ("radam", {"weight_decay": 1e-2, "decoupled_weight_decay": True}),
        ("lion", {"weight_decay": 0.1}),
        ("lion", {"weight_decay": 1e-3, "decoupled_weight_decay": True, "lr": schedule}),
        ("schedule_free_sgd", {"weight_decay": 1e-3, "warmup_steps": 10, "lr": 0.05}),
        ("schedule_free_adamw", {"warmup_steps": 10, "r": 1.0, "lr": schedule}),
        # per-tensor norms: compiled per tensor, never flattened (slow to compile)
        pytest.param("lamb", {"weight_decay": 0.1}, marks=pytest.mark.slow),
        pytest.param("lars", {"weight_decay": 0.01, "lr": 1.0}, marks=pytest.mark.slow),
        pytest.param("adafactor", {"weight_decay": 0.01}, marks=pytest.mark.slow),
        pytest.param("muon", {"ns_dtype": "float32"}, marks=pytest.mark.slow),
    ],
)
def test_fast_equals_eager(name, hp):
    flat = oo.get(name).elementwise
    assert_same(run(name, True, flat=flat, **hp), run(name, False, **hp))


def test_changing_learning_rate_does_not_recompile():
    torch._dynamo.reset()
    eager = run("nadam", False, lr=schedule, clip_norm=1.0)
    with torch._dynamo.config.patch(error_on_recompile=True):
        fast = run("nadam", True, lr=schedule, clip_norm=1.0, flat=False)
    assert_same(fast, eager)


def test_lr_set_between_steps_reaches_the_compiled_step():
    """torch's StepLR writes group["lr"] between steps; the fast path writes its lr
    tensor only when the value changed, and must still follow every change."""

    def go(fast: bool) -> list[torch.Tensor]:
        params = make_params()
        opt = oo.create("momentum", params, fast=fast, lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        for step in range(12):
            steps(opt, params, step, 1)
            sched.step()
        return [p.detach() for p in params]

    assert_same(go(True), go(False))


def test_flat_group_with_schedule_and_global_clip_does_not_recompile():
    # clip_global_norm stays on the flat path (the norm of the flat group is the
    # group's norm); the step and the schedule's lr are tensors of the graph
    torch._dynamo.reset()
    hp = dict(lr=schedule, clip_global_norm=5.0)
    eager = run("adagrad", False, **hp)
    with torch._dynamo.config.patch(error_on_recompile=True):
        fast = run("adagrad", True, flat=True, **hp)
    assert_same(fast, eager)


def test_flat_graph_does_not_grow_with_the_number_of_tensors():
    sizes = {}
    for count in (3, 40):
        nodes = []

        def backend(gm, inputs, nodes=nodes):
            nodes.append(len(gm.graph.nodes))
            return gm.forward

        torch._dynamo.reset()
        params = make_params([(5, 4)] * count)
        opt = oo.create("adam", params, fast=True)
        opt.fast.backend = backend
        steps(opt, params, 0, 3)
        assert opt.fast.flat_groups == [0]
        sizes[count] = nodes
    assert sizes[3] and sizes[3] == sizes[40]


def test_state_dict_round_trip_after_flattening():
    """Save a flattened optimizer through torch.save, load it into a fresh one (and
    into the flattened one itself), continue: the same as an eager run throughout."""
    eager_params = make_params()
    eager = oo.create("nadam", eager_params)
    steps(eager, eager_params, 0, 10)

    params = make_params()
    opt = oo.create("nadam", params, fast=True)
    steps(opt, params, 0, 10)
    assert opt.fast.flat_groups == [0]
    for p, q in zip(opt.state_dict()["state"].values(), eager.state_dict()["state"].values()):
        assert set(p) == set(q)
        assert_same([p[k] for k in sorted(p)], [q[k] for k in sorted(q)])
    blob = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, blob)

    blob.seek(0)
    saved = torch.load(blob)
    resumed_params = [p.clone().requires_grad_() for p in saved["params"]]
    resumed = oo.create("nadam", resumed_params, fast=True)
    resumed.load_state_dict(saved["opt"])
    # the eager state loaded into the flattened optimizer replaces its state (a copy:
    # load_state_dict keeps the given tensors when dtype and device agree)
    opt.load_state_dict(copy.deepcopy(eager.state_dict()))
    with torch.no_grad():
        for p, q in zip(params, eager_params):
            p.copy_(q)

    steps(eager, eager_params, 10, 10)
    steps(resumed, resumed_params, 10, 10)
    steps(opt, params, 10, 10)
    assert_same(resumed_params, eager_params)
    assert_same(params, eager_params)
    assert resumed.fast.flat_groups == [0] and opt.fast.flat_groups == [0]
    assert float(opt.state[params[0]]["step"]) == 20.0


def test_add_param_group_after_flattening():
    def go(fast: bool):
        params = make_params()
        extra = make_params([(9, 3), (3,)], seed=1)
        opt = oo.create("momentum", params, fast=fast)
        steps(opt, params, 0, 5)
        opt.add_param_group({"params": extra, "lr": 0.05})
        steps(opt, params + extra, 5, 10)
        if fast:
            assert opt.fast.flat_groups == [0, 1]
        return params + extra

    assert_same(go(True), go(False))


def test_training_loop_gradients_land_in_the_flat_buffer():
    """With zero_grad(set_to_none=False) backward accumulates into the flat gradient
    buffer after the first flat step; with the default, gradients are gathered."""

    def go(fast: bool, set_to_none: bool):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        opt = oo.create("adam", model.parameters(), lr=1e-2, fast=fast)
        x = torch.randn(32, 6)
        y = x.sum(1, keepdim=True).sin()
        for _ in range(30):
            opt.zero_grad(set_to_none=set_to_none)
            torch.nn.functional.mse_loss(model(x), y).backward()
            if fast and opt.fast.flat_groups:
                flat = opt.fast._flat[0]
                views = zip(model.parameters(), flat.grad_views)
                assert all(p.grad is v for p, v in views) == (not set_to_none)
                assert flat.param.data_ptr() == next(model.parameters()).data_ptr()
            opt.step()
        if fast:
            assert opt.fast.flat_groups == [0]
        return [p.detach() for p in model.parameters()]

    eager = go(False, True)
    assert_same(go(True, True), eager)
    assert_same(go(True, False), eager)


@pytest.mark.slow
@pytest.mark.parametrize(
    # elementwise rules; the others are checked in test_fast_equals_eager with stated
    # settings (Muon's bfloat16 iterations round differently once compiled: 3e-5)
    "name",
    [n for n in PARAMETERS_ONLY if oo.get(n).fast and oo.get(n).elementwise],
)
def test_every_optimizer_fast_equals_eager(name):
    assert_same(run(name, True), run(name, False))


LARGE_SHAPES = [(64, 32), (40, 50), (32,), (7,)]


def split_setup(name: str, fast: bool, **hp) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    params = make_params(LARGE_SHAPES)
    opt = oo.create(name, params, fast=fast, **hp)
    if fast:
        opt.fast.large_numel = 1000  # the two matrices count as large
    return params, opt


def run_split(name: str, fast: bool, **hp) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    params, opt = split_setup(name, fast, **hp)
    steps(opt, params, 0, 30)
    return [p.detach() for p in params], opt


@pytest.mark.parametrize("name", ["nadam", "amsgrad"])
def test_large_tensors_step_in_place_in_one_call_with_the_flat_group(name):
    """Large tensors skip the flat buffers (no gradient gather) and are stepped as
    1-D views in the same compiled call as the flat group; a schedule causes no
    recompilation."""
    torch._dynamo.reset()
    eager, _ = run_split(name, False, lr=schedule)
    with torch._dynamo.config.patch(error_on_recompile=True):
        fast, opt = run_split(name, True, lr=schedule)
    assert_same(fast, eager)
    assert opt.fast.flat_groups == [0]
    assert [p.shape for p in opt.fast._flat[0].params] == [(32,), (7,)]
    big = opt.param_groups[0]["params"][0]
    assert float(opt.state[big]["step"]) == 30.0
    assert opt.state[big]["exp_avg"].shape == big.shape


def test_more_large_tensors_than_one_call_takes_share_the_graphs():
    """Eleven large tensors of assorted sizes, at most 8 per call, are stepped in two
    calls, one of 8 and one of the rest with the flat group: the eager numbers, and a
    changing lr never recompiles."""
    shapes = [(30 + i, 40) for i in range(11)] + [(5,), (9,)]

    def go(fast: bool) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
        params = make_params(shapes)
        opt = oo.create("adam", params, fast=fast, lr=schedule)
        if fast:
            opt.fast.large_numel = 1000
            opt.fast.max_bundle = 8
        steps(opt, params, 0, 12)
        return [p.detach() for p in params], opt

    eager, _ = go(False)
    with torch._dynamo.config.patch(error_on_recompile=True):
        fast, opt = go(True)
    assert_same(fast, eager)
    assert sorted(opt.fast._graphs) == [("bundle", 0, 3, True), ("bundle", 0, 8, False)]
    assert [p.shape for p in opt.fast._flat[0].params] == [(5,), (9,)]


def test_groups_on_the_per_tensor_path_compile_apart():
    """Groups that cannot be flattened (here: per-tensor clipping) each get their own
    compiled function, so groups with other hyperparameters are not variants of one
    graph (dynamo keeps 8 per function, then runs it eagerly)."""

    def go(fast: bool) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
        params = make_params([(6, 5), (5,)] * 3)
        groups = [{"params": params[2 * i : 2 * i + 2], "weight_decay": 0.01 * i} for i in range(3)]
        opt = oo.create("adam", groups, fast=fast, clip_norm=1.0)
        steps(opt, params, 0, 6)
        return [p.detach() for p in params], opt

    eager, _ = go(False)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        fast, opt = go(True)
    assert_same(fast, eager)
    assert opt.fast.flat_groups == []
    assert sorted(opt.fast._graphs) == [("tensors", 0), ("tensors", 1), ("tensors", 2)]


def test_large_tensor_views_follow_a_loaded_state_and_a_new_storage():
    """A large tensor's 1-D views are kept between steps; load_state_dict (new state
    dicts) and ``p.data = ...`` (new storage) must make the fast path build them again,
    or it would go on updating the old buffers."""

    def go(fast: bool) -> list[torch.Tensor]:
        params, opt = split_setup("adam", fast)
        steps(opt, params, 0, 5)
        saved = copy.deepcopy(opt.state_dict())
        steps(opt, params, 5, 5)
        opt.load_state_dict(saved)
        steps(opt, params, 10, 5)
        with torch.no_grad():
            params[0].data = params[0].data.clone()
        steps(opt, params, 15, 5)
        return [p.detach() for p in params]

    eager = go(False)
    assert_same(go(True), eager)


def test_changing_a_hyperparameter_mid_run_compiles_again_on_the_kept_views():
    """A changed constant of the graph (here weight decay, then betas) compiles a new
    graph on the large tensors' kept 1-D views; those views, made under no_grad from
    parameters that require grad, must still be usable after many in-place steps."""

    def go(fast: bool) -> list[torch.Tensor]:
        params, opt = split_setup("adam", fast)
        steps(opt, params, 0, 5)
        opt.param_groups[0]["weight_decay"] = 0.1
        steps(opt, params, 5, 5)
        opt.param_groups[0]["betas"] = (0.8, 0.99)
        steps(opt, params, 10, 5)
        return [p.detach() for p in params]

    eager = go(False)
    assert_same(go(True), eager)


def test_state_created_inside_a_compiled_step_reaches_every_parameter():
    """Turning AMSGrad on mid-run makes the compiled step create a state entry
    (``max_exp_avg_sq``) for the large tensors' views and the flat group: each
    parameter's state must receive it, shaped as the parameter, and go on with it."""

    def go(fast: bool) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
        params, opt = split_setup("adam", fast)
        steps(opt, params, 0, 4)
        opt.param_groups[0]["amsgrad"] = True
        steps(opt, params, 4, 6)
        return [p.detach() for p in params], opt

    eager, _ = go(False)
    fast, opt = go(True)
    assert_same(fast, eager)
    for p in opt.param_groups[0]["params"]:
        assert opt.state[p]["max_exp_avg_sq"].shape == p.shape


def test_global_norm_keeps_a_group_with_large_tensors_whole():
    # the clip needs the norm of the whole group: no tensor may be stepped apart
    eager, _ = run_split("adam", False, clip_global_norm=2.0)
    fast, opt = run_split("adam", True, clip_global_norm=2.0)
    assert_same(fast, eager)
    assert len(opt.fast._flat[0].params) == len(LARGE_SHAPES)


def test_channels_last_conv_weights_stay_channels_last_on_both_paths():
    """A channels-last conv net: the fast path steps its weights in memory order, on
    flat buffers (small) and one by one (large), without changing their layout."""

    def go(fast: bool):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 40, 3)
        ).to(memory_format=torch.channels_last)
        opt = oo.create("adam", model.parameters(), lr=1e-2, fast=fast)
        if fast:
            opt.fast.large_numel = 2000  # the second conv weight (2880) is large
        x = torch.randn(4, 3, 9, 9).to(memory_format=torch.channels_last)
        for _ in range(20):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        weights = [model[0].weight, model[2].weight]
        assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
        assert all(not w.is_contiguous() for w in weights)
        if fast:
            assert opt.fast.flat_groups == [0]
            assert [p.shape for p in opt.fast._flat[0].params] == [(8, 3, 3, 3), (8,), (40,)]
            exp_avg = opt.state[model[2].weight]["exp_avg"]
            assert exp_avg.stride() == model[2].weight.stride()
        return [p.detach() for p in model.parameters()]

    assert_same(go(True), go(False))


# the rule's bias corrections, and -lr
@pytest.mark.parametrize("name, count", [("adam", 3), ("nadam", 4), ("adamax", 2), ("sgd", 1)])
def test_step_scalars_are_computed_once_per_step_in_the_graph(name, count):
    """The step-dependent scalars are written as reductions (``per_step``), so inductor
    computes them before the elementwise loop instead of once per vector in it."""
    seen = []

    def backend(gm, inputs):
        seen.extend(n for n in gm.graph.nodes if n.target == "amax")
        return gm.forward

    torch._dynamo.reset()
    params = make_params()
    opt = oo.create(name, params, fast=True)
    opt.fast.backend = backend
    steps(opt, params, 0, 3)
    assert opt.fast.flat_groups == [0]
    assert len(seen) == count


def test_step_scalar_reductions_are_not_unrolled_by_inductor():
    """Inductor turns a reduction over at most ``unroll_reductions_threshold`` elements
    back into an inlined expression, which would put ``pow`` back into the loop."""
    import torch._inductor.config

    assert torch._inductor.config.unroll_reductions_threshold < SCALAR_SPAN


def test_step_scalars_share_one_kernel_with_the_loop():
    """Compiled by inductor, a step of two flat-group tensors and two large ones is
    one C++ kernel with no op calls from Python between the scalars (the opaque
    custom op cost one call per scalar and split the kernel)."""
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    params = [torch.randn(48, 48, requires_grad=True), torch.randn(7, requires_grad=True)]
    params += [torch.randn(5, requires_grad=True), torch.randn(40, 40, requires_grad=True)]
    opt = oo.create("adamw", params, fast=True)
    opt.fast.large_numel = 1000
    grads = [torch.randn_like(p) for p in params]

    def step():
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()

    step()  # eager: creates the state
    _, code = run_and_get_code(step)
    wrapper = "\n".join(code)
    assert len(opt.fast._large[0][1]) == 2 and opt.fast.flat_groups == [0]
    assert wrapper.count("async_compile.cpp_pybinding(") == 1
    assert "extern_kernels" not in wrapper.split("def call(")[1]
    assert "torch.ops." not in wrapper.split("def call(")[1]


def lr_sequences(fast: bool, late: int, count: int = 6) -> list[list[float]]:
    """The learning rate each of two parameters' SGD updates used, from a schedule lr.

    With gradient 1 and the parameter set to 0 before each step, the step leaves
    ``-lr`` in it, exactly (float64). The second parameter has no gradient for the
    first ``late`` steps, so its update count lags the first one's."""
    params = [torch.zeros(3, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    opt = oo.SGD(params, lr=schedule, fast=fast)
    seen: list[list[float]] = [[], []]
    for step in range(count):
        for i, p in enumerate(params):
            p.grad = None if i == 1 and step < late else torch.ones(3, dtype=torch.float64)
            with torch.no_grad():
                p.zero_()
        opt.step()
        for i, p in enumerate(params):
            if p.grad is not None:
                assert torch.equal(p, p[0].expand(3))
                seen[i].append(-float(p.detach()[0]))
    return seen


@pytest.mark.parametrize("late", [0, 2])
def test_schedule_lr_is_read_at_each_parameters_update_count_on_both_paths(late):
    """A schedule lr gives update t (from 0) of a parameter ``schedule(t)``, as a
    torch LR scheduler's initial lr is the first step's: eager and fast alike, also
    for a parameter that missed updates (it reads its own count, not another's)."""
    want = [[schedule(t) for t in range(6)], [schedule(t) for t in range(6 - late)]]
    assert lr_sequences(False, late) == want
    assert lr_sequences(True, late) == want


def test_a_step_taken_eagerly_is_not_lost_by_the_flat_group():
    """A parameter's first step runs eagerly for the whole group; the flat group's
    own copy of the step count must not then overwrite the count that step advanced
    (here A's, stepped with the new C while B had no gradient)."""

    def go(fast: bool) -> tuple[list[float], list[torch.Tensor]]:
        a, b, c = make_params([(5,), (5,), (5,)])
        opt = oo.create("adam", [a, b, c], lr=0.1, fast=fast)
        for step, live in enumerate([(a, b)] * 4 + [(a, c)] + [(a, b)] * 3):
            for p in (a, b, c):
                p.grad = torch.full((5,), step + 1.0) if any(p is q for q in live) else None
            opt.step()
        return [float(opt.state[p]["step"]) for p in (a, b, c)], [p.detach() for p in (a, b, c)]

    counts, eager = go(False)
    fast_counts, fast = go(True)
    assert counts == fast_counts == [8.0, 7.0, 1.0]
    assert_same(fast, eager)


def test_a_warm_step_views_no_tensor_outside_the_compiled_graph():
    """A step of large tensors makes no view of a tensor outside the compiled call,
    also when every gradient is a new tensor (as after ``zero_grad()``): each used to
    cost one to two tensor ops per large tensor per step, outside the kernel. The
    call's wrapper neither asserts sizes nor looks them up (static sizes, checked
    by dynamo's guards). The numbers stay the eager ones."""
    from torch._inductor.utils import run_and_get_code
    from torch.profiler import ProfilerActivity, profile

    views = {"aten::view", "aten::as_strided", "aten::detach", "aten::alias", "aten::reshape"}

    def outside(event) -> bool:
        while event is not None:
            if event.name.startswith("Torch-Compiled Region"):
                return False
            event = event.cpu_parent
        return True

    def go(fast: bool) -> list[torch.Tensor]:
        torch._dynamo.reset()
        params, opt = split_setup("adam", fast)
        steps(opt, params, 0, 3)
        if fast:
            _, code = run_and_get_code(steps, opt, params, 3, 1)
            call = "\n".join(code).split("def call(")[1]
            assert "assert_size_stride" not in call and ".size()" not in call
        else:
            steps(opt, params, 3, 1)
        gen = torch.Generator().manual_seed(7)
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
        if fast:
            assert len(opt.fast._large[0][1]) == 2
            made = [e.name for e in prof.events() if e.name in views and outside(e)]
            assert made == []
        steps(opt, params, 5, 5)
        return [p.detach() for p in params]

    assert_same(go(True), go(False))
