"""The lecture's case-study architectures: parameter counts against the published ones
(counted on the meta device), forward shapes (ImageNet size on meta, CIFAR stems for
real on a tiny batch), the registry and the listing."""

import pytest
import torch
from torch import nn

from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.nn import build_model, count_parameters
from optimlab.nn.googlenet import GoogLeNetOutput, with_aux_loss
from optimlab.nn.imagenet_resnet import Bottleneck
from optimlab.nn.models import MODELS, meta_model, parameter_count

# torchvision's counts for the nets it has in the same form; AlexNet and GoogLeNet below
PUBLISHED = {
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
}


def conv(cin, cout, k, groups=1, bias=True):
    return cin // groups * cout * k * k + (cout if bias else 0)


def dense(i, o):
    return i * o + o


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_are_the_published_ones(name):
    assert parameter_count(name) == PUBLISHED[name]


def test_alexnet_count_from_the_papers_layer_list():
    # Krizhevsky et al. 2012, section 3.5 and Figure 2: conv2, conv4 and conv5 connect
    # only to the maps on their own GPU (two groups), conv3 and the FC layers to all.
    two_towers = (
        conv(3, 96, 11) + conv(96, 256, 5, groups=2) + conv(256, 384, 3)
        + conv(384, 384, 3, groups=2) + conv(384, 256, 3, groups=2)
        + dense(6 * 6 * 256, 4096) + dense(4096, 4096) + dense(4096, 1000)
    )  # fmt: skip
    assert two_towers == 60_965_224  # Caffe's reference AlexNet
    assert parameter_count("alexnet") == two_towers
    one_tower = two_towers + (96 * 256 * 25 + 384 * 384 * 9 + 384 * 256 * 9) // 2
    assert parameter_count("alexnet", groups=1) == one_tower == 62_378_344


# Szegedy et al. 2015, Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
TABLE1 = [
    (64, 96, 128, 16, 32, 32),
    (128, 128, 192, 32, 96, 64),
    (192, 96, 208, 16, 48, 64),
    (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64),
    (256, 160, 320, 32, 128, 128),
    (256, 160, 320, 32, 128, 128),
    (384, 192, 384, 48, 128, 128),
]


def googlenet_by_hand(branch5=5, batch_norm=False):
    """The count from Table 1's columns; convolutions carry a bias, or BN's 2 per channel."""

    def c(i, o, k):
        return i * o * k * k + (2 * o if batch_norm else o)

    total = c(3, 64, 7) + c(64, 64, 1) + c(64, 192, 3)
    cin = 192
    for n1, r3, n3, r5, n5, proj in TABLE1:
        total += c(cin, n1, 1) + c(cin, r3, 1) + c(r3, n3, 3) + c(cin, r5, 1)
        total += c(r5, n5, branch5) + c(cin, proj, 1)
        cin = n1 + n3 + n5 + proj
    assert cin == 1024
    return total + dense(1024, 1000)


def test_googlenet_count_from_the_papers_table():
    assert googlenet_by_hand() == 6_998_552  # also Caffe's reference GoogLeNet
    assert parameter_count("googlenet", aux_heads=False) == googlenet_by_hand()
    aux = conv(512, 128, 1) + conv(528, 128, 1) + 2 * (dense(2048, 1024) + dense(1024, 1000))
    assert parameter_count("googlenet") == googlenet_by_hand() + aux
    # torchvision's googlenet: BN instead of biases and 3x3 filters in the "5x5" branch
    tv = googlenet_by_hand(branch5=3, batch_norm=True)
    assert tv == 6_624_904
    assert parameter_count("googlenet", aux_heads=False, norm="batch", lrn=False,
                           branch5_kernel=3) == tv  # fmt: skip


def test_cifar_stems_change_the_first_layer_and_the_head_only():
    # ResNet-18: 7x7 -> 3x3 stem, 1000 -> 10 classes (11,173,962 is the usual CIFAR count)
    assert parameter_count("resnet18", stem="cifar") == (
        PUBLISHED["resnet18"] - 3 * 64 * 49 + 3 * 64 * 9 - dense(512, 1000) + dense(512, 10)
    ) == 11_173_962  # fmt: skip
    assert parameter_count("vgg16", stem="cifar") == (
        PUBLISHED["vgg16"] - dense(7 * 7 * 512, 4096) + dense(512, 4096)
        - dense(4096, 1000) + dense(4096, 10)
    )  # fmt: skip
    assert parameter_count("resnet50", stem="cifar", num_classes=100) == (
        PUBLISHED["resnet50"] - 3 * 64 * 49 + 3 * 64 * 9 - dense(2048, 1000) + dense(2048, 100)
    )  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["alexnet", "vgg16", "vgg19", "googlenet", "resnet18", "resnet34", "resnet50",
     "resnet101", "resnet152", "resnext50_32x4d"],
)  # fmt: skip
def test_imagenet_size_forward_shapes_on_meta(name):
    model = meta_model(name).eval()
    record = MODELS.get(name)
    x = torch.empty(2, *record.input_shape, device="meta")
    assert model(x).shape == (2, 1000)


def test_imagenet_feature_map_sizes():
    """The map sizes the papers' tables give, on the meta device."""
    alex = meta_model("alexnet")
    x = torch.empty(1, 3, 227, 227, device="meta")
    assert alex.features[:4](x).shape == (1, 96, 27, 27)  # conv1 55x55, pooled 27x27
    assert alex.features(x).shape == (1, 256, 6, 6)
    resnet = meta_model("resnet50")
    x = torch.empty(1, 3, 224, 224, device="meta")
    sizes = []
    for part in ("stem", "layer1", "layer2", "layer3", "layer4"):
        x = getattr(resnet, part)(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(64, 56, 56), (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
    google = meta_model("googlenet")
    assert google.stem(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 192, 28, 28)


@pytest.mark.parametrize(
    "name, batch", [("alexnet", 2), ("vgg16", 2), ("resnet18", 2), ("resnet50", 1)]
)
def test_cifar_stem_forward_and_backward_on_cpu(name, batch):
    torch.manual_seed(0)
    model = build_model(name, stem="cifar")
    assert MODELS.get(name).input_shape_for("cifar") == (3, 32, 32)
    out = model(torch.randn(batch, 3, 32, 32))
    assert out.shape == (batch, 10)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_googlenet_aux_heads_act_in_training_only():
    torch.manual_seed(0)
    model = build_model("googlenet", stem="cifar")
    x, y = torch.randn(1, 3, 32, 32), torch.tensor([3])
    out = model(x)
    assert isinstance(out, GoogLeNetOutput)
    assert [t.shape for t in out] == [(1, 10)] * 3
    loss_fn = with_aux_loss(nn.functional.cross_entropy)
    ce = nn.functional.cross_entropy
    expected = ce(out.logits, y) + 0.3 * (ce(out.aux1, y) + ce(out.aux2, y))
    torch.testing.assert_close(loss_fn(out, y), expected)
    loss_fn(out, y).backward()
    assert model.aux1.fc[-1].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        plain = model(x)
    assert isinstance(plain, torch.Tensor) and plain.shape == (1, 10)
    torch.testing.assert_close(loss_fn(plain, y), ce(plain, y))
    no_aux = build_model("googlenet", stem="cifar", aux_heads=False)
    assert isinstance(no_aux(x), torch.Tensor)


def test_bottleneck_stride_placement_and_resnext_width():
    v15 = Bottleneck(256, 128, 2)
    paper = Bottleneck(256, 128, 2, stride_in_1x1=True)
    assert count_parameters(v15) == count_parameters(paper)
    assert v15.body[2][0].stride == (2, 2) and v15.body[0][0].stride == (1, 1)
    assert paper.body[0][0].stride == (2, 2) and paper.body[2][0].stride == (1, 1)
    x = torch.randn(1, 256, 8, 8)
    assert v15(x).shape == paper(x).shape == (1, 512, 4, 4)
    grouped = meta_model("resnext50_32x4d").layer1[0].body[2][0]
    assert (grouped.in_channels, grouped.groups) == (128, 32)  # 32 groups x width 4


def test_zero_init_residual_starts_blocks_as_identity():
    torch.manual_seed(0)
    model = build_model("resnet18", stem="cifar", zero_init_residual=True).eval()
    block = model.layer1[0]
    x = torch.randn(1, 64, 8, 8).relu()
    torch.testing.assert_close(block(x), x)  # relu(0 + x) = x for x >= 0


def test_bad_arguments_get_one_line_errors():
    with pytest.raises(OptimlabError, match="unknown stem 'mnist'"):
        build_model("resnet18", stem="mnist")
    with pytest.raises(OptimlabError, match="invalid groups"):
        build_model("alexnet", groups=3)
    with pytest.raises(OptimlabError, match="invalid num_classes"):
        build_model("vgg16", num_classes=0)
    with pytest.raises(OptimlabError, match="bottleneck blocks only"):
        from optimlab.nn.imagenet_resnet import imagenet_resnet

        imagenet_resnet("basic", (2, 2, 2, 2), groups=32)
    with pytest.raises(OptimlabError, match="invalid stem 'cifar' for model 'lenet5'"):
        MODELS.get("lenet5").input_shape_for("cifar")


def test_optimlab_list_models_shows_shapes_and_counts(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    for name in ("alexnet", "vgg16", "vgg19", "googlenet", "resnet152", "resnext50_32x4d"):
        assert name in out
    assert "138,357,544" in out and "60,965,224" in out and "3x227x227" in out
    assert "stem=cifar: 3x32x32" in out
