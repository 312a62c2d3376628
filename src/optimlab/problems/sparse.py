"""Sparse logistic regression: a linear model on bags of feature ids.

The inputs are rows of int64 feature ids (``optimlab.data.synthetic.sparse_binary``),
not dense vectors; :class:`SparseLinear` sums the weights of an example's ids
(``nn.EmbeddingBag``), which is the product of the weights with the example's vector
of feature counts. The problem Hogwild! was made for: each example touches 1% of the
weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from optimlab.data.splits import Split, Splits, split_indices
from optimlab.data.synthetic import sparse_binary
from optimlab.problems.losses import get_loss
from optimlab.problems.metrics import CLASSIFICATION
from optimlab.problems.problem import PROBLEMS, BuildContext, Problem, ProblemRecord


class SparseLinear(nn.Module):
    """``out = sum_j W[x_j] + b`` for each row ``x`` of feature ids: a linear layer on
    the example's feature counts, without building the dense vector. Weights start at
    zero (so every seed starts at loss log 2)."""

    def __init__(self, features: int, out_features: int = 1) -> None:
        super().__init__()
        self.weight = nn.EmbeddingBag(features, out_features, mode="sum")
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.zeros_(self.weight.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.weight(x) + self.bias


def _sparse_logreg(
    ctx: BuildContext, *, features: int = 1_000, active: int = 10, val_size: float = 0.1
) -> Problem:
    raw = sparse_binary(features=features, active=active)
    train_idx, val_idx = split_indices(len(raw.train_y), val_size, ctx.seed, raw.train_y)

    def split(x, y) -> Split:  # noqa: ANN001 (numpy arrays)
        return Split(torch.tensor(x, dtype=torch.int64), torch.tensor(y, dtype=torch.int64))

    splits = Splits(
        name="sparse_binary",
        train=split(raw.train_x[train_idx], raw.train_y[train_idx]),
        val=split(raw.train_x[val_idx], raw.train_y[val_idx]),
        test=split(raw.test_x, raw.test_y),
        task="classification",
        input_shape=(active,),
        num_classes=2,
        class_names=raw.class_names,
    )
    return Problem(
        name="sparse_logreg",
        model=SparseLinear(features),
        loss_fn=get_loss("logistic"),
        metrics=dict(CLASSIFICATION),
        splits=splits,
        batch_size=16,
        epochs=5,
        task="classification",
        lr_hints={"sgd": 0.5, "adam": 0.01},
        seed=ctx.seed,
        description=f"logistic regression on bags of {active} of {features} feature ids",
    )


PROBLEMS.add(
    ProblemRecord(
        "sparse_logreg", _sparse_logreg,
        "logistic regression on sparse bags of feature ids (1% of 1000 per example)",
        "classification", "-", "sparse linear (EmbeddingBag)", "logistic", 16, 5,
        "Niu et al. 2011 (Hogwild!): sparse problems",
    )
)  # fmt: skip
