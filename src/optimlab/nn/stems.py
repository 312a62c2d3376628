"""Arguments shared by the ImageNet architectures: the stem (input size) and checks.

The two stems:

``"imagenet"``: 3x224x224 images (AlexNet: 3x227x227), 1000 classes by default;
``"cifar"``: 3x32x32 images, 10 classes by default. Each builder says what its CIFAR
stem changes (usually the first convolution and the early pooling).
"""

from __future__ import annotations

from optimlab.errors import OptimlabError, unknown_name

#: input side and default number of classes per stem
STEMS = {"imagenet": (224, 1000), "cifar": (32, 10)}


def check_stem(stem: str, num_classes: int | None) -> tuple[int, int]:
    """(input side, number of classes) for a stem name; ``num_classes`` None means the
    stem's default (1000 for ImageNet, 10 for CIFAR)."""
    if stem not in STEMS:
        raise unknown_name("stem", stem, STEMS)
    side, classes = STEMS[stem]
    if num_classes is None:
        return side, classes
    return side, positive_int("num_classes", num_classes)


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an integer >= 1, else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptimlabError(f"invalid {name}: {value!r}; valid values are integers >= 1")
    return value
