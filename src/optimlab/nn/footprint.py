"""Per-layer forward activations and parameters of a network, counted with forward hooks.

``activation_table(model, (3, 224, 224))`` runs one image through ``model`` and records
the output of every layer of the listed kinds (by default convolutions, poolings and
linear layers: the rows of the lecture's VGG-16 table, where ReLU works in place and
adds no memory), plus the input. Built on the ``meta`` device, the model allocates
nothing and the pass costs nothing, while the shapes are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError

#: the layers whose outputs the lecture's table lists
DEFAULT_KINDS: tuple[type[nn.Module], ...] = (
    nn.Conv2d,
    nn.Linear,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
)


@dataclass(frozen=True)
class LayerFootprint:
    """One row: a layer's output shape for one image, the number of values in it, and
    the layer's weights and all its parameters (weights plus biases)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    values: int
    weights: int
    params: int


def activation_table(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    kinds: tuple[type[nn.Module], ...] = DEFAULT_KINDS,
    include_input: bool = True,
) -> list[LayerFootprint]:
    """Rows in forward order for one input of ``input_shape`` (without the batch
    dimension), on the device of the model's parameters, in evaluation mode."""
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    if any(not isinstance(n, int) or n < 1 for n in input_shape):
        raise OptimlabError(f"invalid input_shape: {tuple(input_shape)}; give positive sizes")
    rows: list[LayerFootprint] = []
    if include_input:
        size = int(torch.Size(input_shape).numel())
        rows.append(LayerFootprint("input", "input", tuple(input_shape), size, 0, 0))

    def hook(name: str) -> object:
        def record(module: nn.Module, args: object, output: Tensor) -> None:
            weight = getattr(module, "weight", None)
            rows.append(
                LayerFootprint(
                    name,
                    type(module).__name__,
                    tuple(output.shape[1:]),
                    int(output[0].numel()),
                    int(weight.numel()) if isinstance(weight, Tensor) else 0,
                    sum(p.numel() for p in module.parameters(recurse=False)),
                )
            )

        return record

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in model.named_modules()
        if isinstance(module, kinds)
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows


def total_values(rows: Sequence[LayerFootprint]) -> int:
    """The sum of the rows' activation values (for one image)."""
    return sum(row.values for row in rows)
