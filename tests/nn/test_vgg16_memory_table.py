"""VGG-16's forward activations per image, counted with forward hooks, against the
lecture's per-layer table (lecture 003, "Case Study: VGGNet")."""

import pytest
import torch
from torch import nn

from optimlab.nn.footprint import activation_table, total_values
from optimlab.nn.models import meta_model

# The slide's rows as it writes them: (layer, memory, params without biases).
SLIDE = [
    ("INPUT", 224 * 224 * 3, 0),
    ("CONV3-64", 224 * 224 * 64, (3 * 3 * 3) * 64),
    ("CONV3-64", 224 * 224 * 64, (3 * 3 * 64) * 64),
    ("POOL2", 112 * 112 * 64, 0),
    ("CONV3-128", 112 * 112 * 128, (3 * 3 * 64) * 128),
    ("CONV3-128", 112 * 112 * 128, (3 * 3 * 128) * 128),
    ("POOL2", 56 * 56 * 128, 0),
    ("CONV3-256", 56 * 56 * 256, (3 * 3 * 128) * 256),
    ("CONV3-256", 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("CONV3-256", 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("POOL2", 28 * 28 * 256, 0),
    ("CONV3-512", 28 * 28 * 512, (3 * 3 * 256) * 512),
    ("CONV3-512", 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("CONV3-512", 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("POOL2", 14 * 14 * 512, 0),
    ("CONV3-512", 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("CONV3-512", 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("CONV3-512", 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("POOL2", 7 * 7 * 512, 0),
    ("FC", 4096, 7 * 7 * 512 * 4096),
    ("FC", 4096, 4096 * 4096),
    ("FC", 1000, 4096 * 1000),
]
SLIDE_TOTAL_VALUES, SLIDE_TOTAL_BYTES = 24e6, 96e6  # "TOTAL memory: 24M * 4 bytes ~= 96MB"


def test_hooked_rows_equal_the_slides_rows():
    rows = activation_table(meta_model("vgg16"), (3, 224, 224))
    assert len(rows) == len(SLIDE)
    kinds = {"INPUT": "input", "CONV3": "Conv2d", "POOL2": "MaxPool2d", "FC": "Linear"}
    for row, (layer, memory, weights) in zip(rows, SLIDE, strict=True):
        assert row.kind == kinds[layer.split("-")[0]]
        assert (row.values, row.weights) == (memory, weights), (row.name, layer)


def test_the_slides_total_is_not_the_sum_of_its_rows():
    rows = activation_table(meta_model("vgg16"), (3, 224, 224))
    total = total_values(rows)
    assert total == sum(memory for _, memory, _ in SLIDE) == 15_237_608
    assert 4 * total == pytest.approx(61e6, rel=0.002)  # about 61 MB in float32
    assert total < 0.65 * SLIDE_TOTAL_VALUES and 4 * total < 0.65 * SLIDE_TOTAL_BYTES
    # the parameter column does add up: 138M weights, 138,357,544 with the biases
    assert sum(r.weights for r in rows) == sum(w for _, _, w in SLIDE) == 138_344_128
    assert sum(r.params for r in rows) == 138_357_544


def test_hooks_on_a_real_forward_pass_match_the_meta_count():
    """The meta-device count is what a real pass stores (a small net on the CPU)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 5)
    )
    rows = activation_table(model, (3, 16, 16))
    assert [r.values for r in rows] == [3 * 16 * 16, 8 * 16 * 16, 8 * 8 * 8, 5]
    assert model.training  # the mode is restored
    with torch.device("meta"):
        twin = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(512, 5),
        )  # fmt: skip
    assert activation_table(twin, (3, 16, 16)) == rows
