"""Augmentation pipelines by description: Keras' ImageDataGenerator arguments, and the
short text specs of the command line (``--augment flip,crop:4,rotate:15``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from optimlab.data.augment import (
    Augment,
    ColorJitter,
    PCALighting,
    RandomAffine,
    RandomCrop,
    RandomErasing,
    RandomFlip,
    RandomResizedCrop,
    fit_pca_lighting,
)
from optimlab.data.lens import RandomLens
from optimlab.data.scale_crop import RandomScaleCrop
from optimlab.errors import OptimlabError, unknown_name


def image_data_generator(
    rotation_range: float = 0.0,
    width_shift_range: float = 0.0,
    height_shift_range: float = 0.0,
    shear_range: float = 0.0,
    zoom_range: float | Sequence[float] = 0.0,
    horizontal_flip: bool = False,
    vertical_flip: bool = False,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    seed: int = 0,
) -> Augment:
    """The random transforms of ``keras.preprocessing.image.ImageDataGenerator`` with the
    same argument names and meanings: rotation in degrees, shifts as fractions of the
    width/height, shear angle in degrees (as Keras documents it), zoom factors in
    [1 - z, 1 + z] per axis, flips with probability 1/2. Keras' "wrap" fill mode is not
    offered (grid_sample has no periodic padding)."""
    ops: list[Any] = []
    warp = RandomAffine(
        rotation_range, width_shift_range, height_shift_range, shear_range, zoom_range,
        fill_mode, cval,
    )  # fmt: skip
    if not warp.is_identity():
        ops.append(warp)
    if horizontal_flip:
        ops.append(RandomFlip(0.5, dim=-1))
    if vertical_flip:
        ops.append(RandomFlip(0.5, dim=-2))
    return Augment(ops, seed)


def _float(name: str, text: str | None, default: float) -> float:
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise OptimlabError(f"invalid value {text!r} for augmentation {name!r}") from None


# name -> (help, default value); values after ":".
SPEC_OPS: dict[str, tuple[str, float | None]] = {
    "flip": ("horizontal flip with probability P (0.5)", 0.5),
    "vflip": ("vertical flip with probability P (0.5)", 0.5),
    "crop": ("pad by N pixels and crop back at a random offset (4)", 4),
    "zoom": ("random resized crop keeping at least area fraction S (0.5)", 0.5),
    "scale_crop": (
        "ResNet scale augmentation: shorter side L uniform in [S, F * S] for "
        "images of shorter side S, then a crop of the input's size (F = 2)",
        2.0,
    ),
    "lens": ("radial lens distortion, k1 in U(-K, K) (0.2)", 0.2),
    "rotate": ("rotation in U(-D, D) degrees (15)", 15.0),
    "shift": ("shift by U(-F, F) of the width and height (0.1)", 0.1),
    "shear": ("shear angle in U(-D, D) degrees (10)", 10.0),
    "scale": ("affine zoom factors in U(1 - Z, 1 + Z) (0.1)", 0.1),
    "brightness": ("brightness factor in U(1 - B, 1 + B) (0.2)", 0.2),
    "contrast": ("contrast factor in U(1 - C, 1 + C) (0.2)", 0.2),
    "saturation": ("saturation factor in U(1 - S, 1 + S) (0.2)", 0.2),
    "pca": ("Krizhevsky PCA colour noise with std S (0.1), fitted on the training set", 0.1),
    "erase": ("random erasing with probability P (0.5)", 0.5),
}


class _ScaleCropSpec:
    """``scale_crop:F``: :class:`RandomScaleCrop` with shorter sides [S, round(F * S)] for
    the batch's shorter side S, cropped back to the input size."""

    def __init__(self, factor: float) -> None:
        self.factor = float(factor)

    def __call__(self, x: Tensor, gen: Any) -> Tensor:
        s = min(x.shape[-2:])
        return RandomScaleCrop((s, max(s, round(self.factor * s))))(x, gen)

    def __repr__(self) -> str:
        return f"scale_crop:{self.factor:g}"


def parse_spec(spec: str) -> list[tuple[str, float]]:
    """``"flip,crop:4"`` -> ``[("flip", 0.5), ("crop", 4.0)]``; unknown names are an error."""
    items = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, value = part.partition(":")
        name = name.strip().lower()
        if name not in SPEC_OPS:
            raise unknown_name("augmentation", name, SPEC_OPS)
        items.append((name, _float(name, value.strip() or None, SPEC_OPS[name][1])))
    if not items:
        raise OptimlabError(f"empty augmentation spec {spec!r}; valid names: {', '.join(SPEC_OPS)}")
    return items


def from_spec(
    spec: str, seed: int = 0, train_x: Tensor | None = None, fill_mode: str = "nearest"
) -> Augment:
    """The pipeline a spec describes: geometric ops first (crop, scale_crop, zoom, one
    affine warp for rotate/shift/shear/scale, lens, flips), then colour, then erasing.
    ``train_x`` is needed for "pca" (its eigenpairs come from the training images)."""
    items = dict(parse_spec(spec))
    ops: list[Callable] = []
    if "crop" in items:
        pad = items["crop"]
        if pad != int(pad) or pad < 0:
            raise OptimlabError(f"invalid crop padding {pad:g}; valid: an integer >= 0")
        ops.append(RandomCrop(int(pad)))
    if "scale_crop" in items:
        if items["scale_crop"] < 1:
            raise OptimlabError(f"invalid scale_crop factor {items['scale_crop']:g}; valid: >= 1")
        ops.append(_ScaleCropSpec(items["scale_crop"]))
    if "zoom" in items:
        ops.append(RandomResizedCrop(scale=(items["zoom"], 1.0)))
    warp = RandomAffine(
        rotation=items.get("rotate", 0.0),
        width_shift=items.get("shift", 0.0),
        height_shift=items.get("shift", 0.0),
        shear=items.get("shear", 0.0),
        zoom=items.get("scale", 0.0),
        fill_mode=fill_mode,
    )
    if not warp.is_identity():
        ops.append(warp)
    if "lens" in items:
        ops.append(RandomLens(items["lens"]))
    if "flip" in items:
        ops.append(RandomFlip(items["flip"], dim=-1))
    if "vflip" in items:
        ops.append(RandomFlip(items["vflip"], dim=-2))
    jitter = [items.get(k, 0.0) for k in ("brightness", "contrast", "saturation")]
    if any(jitter):
        ops.append(ColorJitter(*jitter))
    if "pca" in items:
        if train_x is None:
            raise OptimlabError("the 'pca' augmentation needs the training images to fit on")
        ops.append(PCALighting(*fit_pca_lighting(train_x), std=items["pca"]))
    if "erase" in items:
        ops.append(RandomErasing(items["erase"]))
    return Augment(ops, seed)
