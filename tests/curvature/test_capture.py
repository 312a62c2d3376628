"""What the Recorder sees of a closure's passes, per-example gradients from output
gradients, and the sampled losses of the true Fisher."""

from __future__ import annotations

import pytest
import torch
from curvature_models import WithUnused, seeded
from torch import nn

import optimlab.curvature as cv
from optimlab.curvature.capture import Recorder, example_mixing_modules
from optimlab.curvature.fisher import per_example_pullbacks
from optimlab.curvature.likelihood import (
    check_output_gradient,
    output_fisher_product,
    sampled_loss,
)
from optimlab.errors import OptimlabError

TOL = dict(rtol=1e-10, atol=1e-12)


def net(inplace: bool = False) -> nn.Module:
    body = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=inplace), nn.Linear(4, 2)).double()
    return seeded(WithUnused(body), 0)


def batch(n: int = 6, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=gen, dtype=torch.float64), torch.randint(0, 2, (n,))


@pytest.mark.parametrize("inplace", [False, True])
def test_records_the_model_call_and_each_layers_input_and_output_gradient(inplace):
    """The outermost module that owns parameters is the model (not the loss module
    called after it, not a parameter-free module called before it); each Linear gives
    its input and the gradient of its pre-activation output, also when an in-place
    ReLU overwrites that output."""
    model = net(inplace)
    x, y = batch()
    rec = Recorder(model.parameters(), (nn.Linear,))
    criterion = nn.CrossEntropyLoss()
    with rec.recording(layers=True):
        loss = criterion(model(nn.Identity()(x)), y)
        loss.backward()
    assert rec.model.module is model and rec.other_model_calls == 0
    assert torch.equal(rec.model.input, x)
    first, second = (call.module for call in rec.layers)
    assert first is model.net[0] and second is model.net[2]
    # independent: the same pass with the pre-activations kept and differentiated
    s1 = model.net[0](x)
    z = model.net[2](torch.relu(s1))
    g1, gz = torch.autograd.grad(criterion(z, y), [s1, z])
    torch.testing.assert_close(rec.layers[0].output_grads[0], g1, **TOL)
    torch.testing.assert_close(rec.model.output_grads[0], gz, **TOL)
    torch.testing.assert_close(rec.layers[1].input, torch.relu(s1), **TOL)
    # the hooks are gone after the block
    model(x)
    assert len(rec.layers) == 2


def test_watches_only_the_given_parameters_and_counts_repeated_model_calls():
    model = net()
    rec = Recorder([model.net[2].weight], (nn.Linear,))
    x, _ = batch()
    with rec.recording(layers=True):
        model(x)
        model(x)
    assert [c.module for c in rec.layers] == [model.net[2], model.net[2]]
    assert rec.model.module is model and rec.other_model_calls == 1
    with rec.recording(layers=False):
        model(x)
    assert rec.layers == [] and rec.other_model_calls == 0


def test_per_example_gradients_from_the_output_gradient():
    """Rows J_i^T (N dL/dz_i) are the per-example loss gradients: the targets and the
    loss function are not needed, only the gradient the backward pass left in z."""
    model = net()
    x, y = batch(n=7)
    rec = Recorder(model.parameters())
    with rec.recording():
        nn.functional.cross_entropy(model(x), y).backward()
    params = {k: v.detach() for k, v in model.named_parameters()}
    rows = per_example_pullbacks(model, params, x, rec.model.output_grads[0] * len(x))
    obj = cv.ModelObjective(model, nn.functional.cross_entropy, x, y)
    torch.testing.assert_close(rows, cv.per_example_gradients(obj), **TOL)
    assert torch.count_nonzero(rows[:, :3]) == 0  # the unused parameter
    # a subset of the parameters: the others are held fixed
    some = {"net.2.bias": params["net.2.bias"]}
    torch.testing.assert_close(per_example_pullbacks(model, some, x, rec.model.output_grads[0]
                                                     * len(x)), rows[:, -2:], **TOL)  # fmt: skip


def test_modules_that_do_not_treat_examples_alone_are_named():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.1), nn.Dropout(0.0))
    assert example_mixing_modules(model) == ["BatchNorm1d '1'", "Dropout '2'"]
    assert example_mixing_modules(model.eval()) == []


@pytest.mark.parametrize(
    "name, shape", [("cross_entropy", (4,)), ("logistic", (1,)), ("mse", (3,))]
)
def test_sampled_losses_have_the_output_fisher_as_second_moment(name, shape):
    """E[g g^T] for g = N dL/dz at one example repeated M times, against the exact
    per-example output Fisher (N times output_fisher_product's)."""
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(shape, generator=gen, dtype=torch.float64)
    m = 40_000
    outputs = z.expand(m, *shape).clone().requires_grad_()
    loss = sampled_loss(name, outputs, gen)
    (grad,) = torch.autograd.grad(loss, outputs)
    g = (grad * m).reshape(m, -1)
    moment = g.T @ g / m
    eye = torch.eye(z.numel(), dtype=torch.float64)
    exact = torch.stack([output_fisher_product(name, z[None], e.reshape(1, *shape))[0].reshape(-1)
                         for e in eye])  # fmt: skip
    assert float((moment - exact).abs().max()) < 0.05 * float(exact.abs().max())
    assert float(exact.abs().max()) > 0.05  # not a vanishing comparison


def test_the_output_gradient_must_fit_the_likelihood():
    gen = torch.Generator().manual_seed(6)
    z = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (5,), generator=gen)
    (ce,) = torch.autograd.grad(nn.functional.cross_entropy(z, y), z)
    check_output_gradient("cross_entropy", z, ce, "X")
    (sq,) = torch.autograd.grad(nn.functional.mse_loss(z, torch.zeros(5, 3)), z)
    with pytest.raises(OptimlabError, match=r"X: the loss is not the cross_entropy"):
        check_output_gradient("cross_entropy", z, sq, "X")
    s = torch.randn(5, dtype=torch.float64, requires_grad=True)
    (bce,) = torch.autograd.grad(
        nn.functional.binary_cross_entropy_with_logits(s, y.clamp(max=1).double()), s
    )
    check_output_gradient("logistic", s, bce, "X")
    with pytest.raises(OptimlabError, match=r"not the logistic.*sigmoid\(s\) - y"):
        check_output_gradient("logistic", s, bce + 1.0, "X")
    with pytest.raises(OptimlabError, match=r"needs outputs \(N, C\)"):
        sampled_loss("cross_entropy", torch.zeros(2, 3, 4))


def test_backward_retains_graph_allows_a_second_pass_inside_only():
    w = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    with cv.backward_retains_graph():
        loss = (w**3).sum()
        loss.backward()
    (again,) = torch.autograd.grad(loss, w)  # the graph survived the first backward
    assert float(again) == float(w.grad) == 12.0
    loss = (w**3).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


@pytest.mark.parametrize(
    "layer, shape",
    [
        (nn.Linear(3, 4), (5, 3)),
        (nn.Linear(3, 4, bias=False), (5, 3)),
        (nn.Conv2d(2, 3, 2), (5, 2, 4, 4)),
    ],
)
def test_param_grads_are_the_gradients_through_the_call_alone(layer, shape):
    """The copies hold what the first backward pass sent through the layer's call: a
    penalty on the weight, a second pass and later changes to .grad leave them alone."""
    layer = seeded(layer.double(), 7)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    rec = Recorder(layer.parameters(), (nn.Linear, nn.Conv2d))
    with rec.recording(layers=True, param_grads=True):
        out = layer(x)
        (out**2).sum().backward(retain_graph=True)
        (layer.weight**2).sum().backward()  # a penalty, through no call
        out.sum().backward()  # a second pass
    names = ["weight"] + (["bias"] if layer.bias is not None else [])
    expected = torch.autograd.grad((layer(x) ** 2).sum(), [getattr(layer, n) for n in names])
    got = rec.layers[0].param_grads
    assert sorted(got) == sorted(names)
    for name, grad in zip(names, expected, strict=True):
        torch.testing.assert_close(got[name], grad, **TOL)
    layer.weight.grad.add_(1.0)
    torch.testing.assert_close(got["weight"], expected[0], **TOL)


def test_param_grads_are_left_empty_for_a_graph_of_another_form():
    """A dense layer on a 3-d input (a view after the product): no copies, and none
    unless asked for."""
    layer = seeded(nn.Linear(3, 4).double(), 7)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    rec = Recorder(layer.parameters(), (nn.Linear,))
    with rec.recording(layers=True, param_grads=True):
        layer(x).sum().backward()
    assert rec.layers[0].param_grads == {}
    with rec.recording(layers=True):
        layer(x[0]).sum().backward()
    assert rec.layers[0].param_grads == {}


@pytest.mark.parametrize("param_grads", [False, True])
def test_clear_frees_the_recorded_passes(param_grads):
    """The hooks on a recorded output and its node refer back to the record: clear()
    must break that cycle, or every recorded pass's graph and tensors stay alive."""
    import gc
    import weakref

    model = net()
    x, _ = batch()
    rec = Recorder(model.parameters(), (nn.Linear,))
    with rec.recording(layers=True, param_grads=param_grads):
        model(x).pow(2).sum().backward()
    refs = [weakref.ref(rec.model.output)] + [weakref.ref(c.output) for c in rec.layers]
    refs += [weakref.ref(g) for c in rec.layers for g in c.param_grads.values()]
    assert len(refs) == 3 + (4 if param_grads else 0)
    model.zero_grad(set_to_none=True)
    rec.clear()
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)


def test_uncopied_param_grads_are_intact_until_changed_in_place():
    """Without copies, param_grads are autograd's own tensors (possibly .grad itself):
    intact_param_grads keeps them while no in-place operation has touched them."""
    layer = seeded(nn.Linear(3, 4).double(), 7)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    rec = Recorder(layer.parameters(), (nn.Linear,))
    with rec.recording(layers=True, param_grads=True, copy=False):
        out = layer(x)
        (out**2).sum().backward(retain_graph=True)
    call = rec.layers[0]
    expected = torch.autograd.grad((layer(x) ** 2).sum(), [layer.weight, layer.bias])
    intact = call.intact_param_grads()
    assert sorted(intact) == ["bias", "weight"]
    torch.testing.assert_close(intact["weight"], expected[0], **TOL)
    torch.testing.assert_close(intact["bias"], expected[1], **TOL)
    # a second pass accumulates into .grad; where that is the caught tensor, it drops out
    shares = layer.weight.grad.data_ptr() == call.param_grads["weight"].data_ptr()
    out.sum().backward()
    assert ("weight" in call.intact_param_grads()) is not shares
    call.param_grads["bias"].add_(1.0)
    assert "bias" not in call.intact_param_grads()
