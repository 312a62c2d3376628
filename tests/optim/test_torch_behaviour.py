"""What a PyTorch user expects of an optimizer: schedulers, closures, zero_grad,
add_param_group, grads that stay None, dtypes, schedules as lr, and the options
every optimlab optimizer shares."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo


def tiny_model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    return model.to(dtype)


# Optimizers built from parameters alone (path_sgd also reads the model's layers).
PARAMETERS_ONLY = [
    n
    for n in oo.available(needs_closure=False)
    if not getattr(oo.get(n).builder, "needs_model", False)
]


def batch(seed=1, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(16, 4, generator=gen, dtype=dtype), torch.randn(
        16, 2, generator=gen, dtype=dtype
    )


@pytest.mark.parametrize("name", oo.available())
def test_trains_a_model_with_closure_float32_and_float64(name):
    for dtype in (torch.float32, torch.float64):
        model = tiny_model(dtype=dtype)
        x, y = batch(dtype=dtype)
        lr = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adadelta": 1.0}.get(name, 0.01)
        if oo.get(name).needs_closure:
            lr = oo.get(name).hyperparameters()["lr"]  # a line search's first trial
        # the Fisher-based ones are told the likelihood the loss (mse) belongs to
        hp = {"likelihood": "mse"} if "likelihood" in oo.get(name).hyperparameters() else {}
        opt = oo.create(name, model.parameters(), lr=lr, **hp)
        if getattr(opt, "needs_model", False):
            opt.attach_model(model)  # path_sgd reads the layers

        def closure(opt=opt, model=model, x=x, y=y):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss

        first = opt.step(closure).item()
        for _ in range(60):
            last = opt.step(closure).item()
        assert last < first
        assert all(p.dtype == dtype for p in model.parameters())
        opt.zero_grad()
        assert all(p.grad is None for p in model.parameters())


def test_torch_lr_scheduler_drives_our_optimizer_like_torchs():
    ours_model, torch_model = tiny_model(), tiny_model()
    x, y = batch()
    ours = oo.SGD(ours_model.parameters(), lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.9)
    sched_ours = torch.optim.lr_scheduler.StepLR(ours, step_size=5, gamma=0.5)
    sched_theirs = torch.optim.lr_scheduler.StepLR(theirs, step_size=5, gamma=0.5)
    for _ in range(20):
        for model, opt, sched in (
            (ours_model, ours, sched_ours),
            (torch_model, theirs, sched_theirs),
        ):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            sched.step()
    assert sched_ours.get_last_lr() == [0.1 * 0.5**4]
    for a, b in zip(ours_model.parameters(), torch_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_schedule_as_lr_equals_setting_lr_by_hand():
    def schedule(step: int) -> float:
        return 0.1 / (1 + step)

    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(3, dtype=torch.float64, requires_grad=True)
    scheduled = oo.Adam([a], lr=schedule)
    by_hand = oo.Adam([b], lr=schedule(0))
    for step in range(10):
        by_hand.param_groups[0]["lr"] = schedule(step)
        for p in (a, b):
            p.grad = p.detach() * 2 - 1
        scheduled.step()
        by_hand.step()
    assert torch.equal(a, b)


def test_add_param_group_and_none_grads():
    w1 = torch.ones(2, requires_grad=True)
    w2 = torch.ones(2, requires_grad=True)
    opt = oo.Adam([w1], lr=0.1)
    opt.add_param_group({"params": [w2], "lr": 0.2})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)  # defaults filled in
    w1.grad = torch.ones(2)
    opt.step()  # w2.grad is None: skipped, no state
    assert torch.equal(w2, torch.ones(2)) and not opt.state[w2]
    w2.grad = torch.ones(2)
    opt.step()
    # Adam's first step moves by lr * sign(g) (up to eps): per-group lr is used
    torch.testing.assert_close(w2.detach(), torch.full((2,), 0.8))


@pytest.mark.parametrize("name", PARAMETERS_ONLY)
def test_zero_size_parameter(name):
    """A zero-size tensor in a group (an empty layer) is stepped like any other: it
    gets every state entry, shaped as itself, and its step count, and the group's
    other parameter moves exactly as it would alone, with per-tensor and global-norm
    clipping on (the empty tensor's norm, 0, joins the global one)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 2, generator=gen, dtype=torch.float64).requires_grad_()
    w_alone = w.detach().clone().requires_grad_()
    empty = torch.zeros(0, 5, dtype=torch.float64, requires_grad=True)
    clip = dict(clip_norm=1.0, clip_global_norm=0.5)
    together = oo.create(name, [empty, w], **clip)
    alone = oo.create(name, [w_alone], **clip)
    for _ in range(5):
        g = torch.randn(3, 2, generator=gen, dtype=torch.float64)
        w.grad, w_alone.grad = g, g.clone()
        empty.grad = torch.zeros(0, 5, dtype=torch.float64)
        together.step()
        alone.step()
    assert torch.equal(w, w_alone)
    state, state_w = together.state[empty], together.state[w]
    assert set(state) == set(state_w) and float(state["step"]) == 5
    for key, value in state.items():
        if state_w[key].shape == w.shape:
            assert value.shape == empty.shape, key
        elif state_w[key].dim() == 0:
            assert value.shape == (), key
        elif key.rsplit("_", 1)[-1].isdigit():  # Shampoo's, SOAP's matrix per dimension i
            size = empty.shape[int(key.rsplit("_", 1)[-1])]
            assert value.shape == (size, size), key
        else:  # a factored moment (Adafactor's rows and columns): the empty side stays 0
            assert value.dim() == empty.dim() and value.shape[0] in (0, 1), key
    assert empty.shape == (0, 5)


def test_skip_nonfinite_leaves_parameters_and_state_unchanged():
    w = torch.ones(3, requires_grad=True)
    opt = oo.Adam([w], lr=0.1, skip_nonfinite=True)
    w.grad = torch.ones(3)
    opt.step()
    before_w, before_m = w.detach().clone(), opt.state[w]["exp_avg"].clone()
    w.grad = torch.tensor([1.0, float("nan"), 1.0])
    opt.step()
    w.grad = torch.tensor([float("inf"), 1.0, 1.0])
    opt.step()
    assert torch.equal(w, before_w) and torch.equal(opt.state[w]["exp_avg"], before_m)
    assert opt.skipped_steps == 2 and opt.state[w]["step"].item() == 1
    restored = oo.Adam([torch.ones(3, requires_grad=True)], lr=0.1, skip_nonfinite=True)
    restored.load_state_dict(opt.state_dict())
    assert restored.skipped_steps == 2


def test_without_skip_a_nan_gradient_poisons_the_parameters():
    w = torch.ones(2, requires_grad=True)
    opt = oo.SGD([w], lr=0.1)
    w.grad = torch.tensor([float("nan"), 0.0])
    opt.step()
    assert torch.isnan(w[0])


def test_chain_of_transforms_equals_named_optimizer():
    a = torch.ones(4, dtype=torch.float64, requires_grad=True)
    b = torch.ones(4, dtype=torch.float64, requires_grad=True)
    custom = oo.Chain(
        [a],
        oo.AddWeightDecay(),
        oo.Trace(),
        oo.ScaleByLearningRate(),
        lr=0.1,
        momentum=0.9,
        weight_decay=0.01,
    )
    named = oo.SGD([b], lr=0.1, momentum=0.9, weight_decay=0.01)
    for step in range(15):
        for p in (a, b):
            p.grad = torch.sin(p.detach() * (step + 1))
        custom.step()
        named.step()
    assert torch.equal(a, b)


def test_registry_records():
    for name in oo.available():
        record = oo.get(name)
        assert record.description and record.reference
        assert record.state_bytes_per_param == 4 * record.state_slots
    # state_slots counts the parameter-sized buffers the optimizer really keeps (the
    # closure-driven ones keep flat buffers: tests/optim/test_second_order_registry.py)
    for name in PARAMETERS_ONLY:
        w = torch.ones(10, requires_grad=True)
        opt = oo.create(name, [w])
        w.grad = torch.ones(10)
        opt.step()
        kept = list(opt.state[w].values())
        if isinstance(opt, oo.WrapperOptimizer):  # and the wrapper's own (slow weights)
            kept += list(opt.wrapper_state[w].values())
        buffers = [v for v in kept if v.shape == w.shape]
        assert len(buffers) == oo.get(name).state_slots, name
    assert oo.create("gd", [torch.ones(1, requires_grad=True)]).__class__ is oo.SGD
    assert oo.create("nesterov", [torch.ones(1, requires_grad=True)]).defaults["nesterov"]


@pytest.mark.parametrize("name", ["adam", "momentum", "nadam", "adagrad"])
def test_lr_may_be_a_0d_tensor(name):
    """Values that change during training can live in 0-d tensors (for compiled steps)."""
    a = torch.ones(5, dtype=torch.float64, requires_grad=True)
    b = torch.ones(5, dtype=torch.float64, requires_grad=True)
    as_tensor = oo.create(name, [a], lr=torch.tensor(0.01, dtype=torch.float64))
    as_float = oo.create(name, [b], lr=0.01)
    for step in range(10):
        for p in (a, b):
            p.grad = torch.cos(p.detach() * (step + 1))
        as_tensor.step()
        as_float.step()
    torch.testing.assert_close(a, b, rtol=1e-14, atol=0)
