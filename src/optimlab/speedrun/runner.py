"""Run a speedrun recipe: one timed training run per seed, data loading included.

The clock starts before the dataset is read and decoded, and stops for the
time-to-target at the end of the first evaluation whose test accuracy reaches the
target (that evaluation's own time included). Training then goes on to the end of the
schedule for the final accuracy. The per-process cache of decoded datasets is cleared
before every seed, so each seed pays for reading the files again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError
from optimlab.speedrun.recipe import Recipe, epoch_count, total_steps

EpochHook = Callable[[int, dict[str, Any]], None]


def _forget_decoded_data() -> None:
    """Empty the per-process caches of decoded datasets (functools caches)."""
    from optimlab.data import sources, synthetic

    for module in (sources, synthetic):
        for obj in vars(module).values():
            clear = getattr(obj, "cache_clear", None)
            if callable(clear):
                clear()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(recipe: Recipe, in_shape: tuple[int, ...], num_classes: int, device: torch.device):
    """The recipe's model on ``device`` (initialized from torch's global RNG)."""
    from optimlab.nn import build_model
    from optimlab.nn import init as nn_init

    params = dict(recipe.model_params)
    if recipe.model == "speednet":
        params.setdefault("in_channels", in_shape[0])
        params.setdefault("input_size", in_shape[-1])
        params.setdefault("num_classes", num_classes)
    model = build_model(recipe.model, **params)
    if recipe.init != "default":
        nn_init.apply(model, recipe.init)
    model = model.to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def multiscale_sides(side: int) -> tuple[int, ...]:
    """The shorter sides of multi-scale testing for images of shorter side S: S, 9S/8 and
    5S/4 (rounded). ResNet's 224 crops used 224 to 640; small images get a narrower
    range, since upscaling 8x8 or 32x32 images adds little but blur."""
    return tuple(sorted({side, round(side * 9 / 8), round(side * 5 / 4)}))


def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int, tta: str) -> float:
    """Test accuracy; ``tta="flip"`` averages the predictions of each image and its
    mirror, ``tta="multiscale"`` those of ten crops (corners, centre, mirrored) of the
    input's size at the shorter sides :func:`multiscale_sides` (``optimlab.regularize.tta``)."""
    from optimlab.regularize.tta import multiscale_predict, tta_predict

    if tta == "multiscale":
        sides = multiscale_sides(min(x.shape[-2:]))
        probs = multiscale_predict(model, x, sides, batch_size=batch_size)
    else:
        probs = tta_predict(model, x, flips=tta == "flip", batch_size=batch_size)
    return int((probs.argmax(1) == y).sum()) / max(len(x), 1)


def run_seed(recipe: Recipe, seed: int, on_epoch: EpochHook | None = None) -> dict[str, Any]:
    """Train the recipe once with ``seed``; return times, accuracies and time-to-target."""
    from optimlab.data import load
    from optimlab.data.augment_presets import from_spec
    from optimlab.run.build import make_optimizer

    device = torch.device(recipe.device)
    memory = torch.channels_last if recipe.channels_last else torch.contiguous_format
    _forget_decoded_data()
    _sync(device)
    start = time.perf_counter()

    # Everything from here on counts: reading the files, building, compiling, training.
    splits = load(recipe.dataset, val_size=0, seed=seed, device=device)
    x = splits.train.x.contiguous(memory_format=memory)
    y = splits.train.y
    x_test = splits.test.x.contiguous(memory_format=memory)
    y_test = splits.test.y
    load_s = time.perf_counter() - start

    torch.manual_seed(seed)
    model = build(recipe, tuple(x.shape[1:]), splits.num_classes or 10, device)
    net = torch.compile(model) if recipe.compile else model
    steps_per_epoch = len(x) // recipe.batch_size
    if steps_per_epoch < 1:
        raise OptimlabError(
            f"invalid train.batch_size: {recipe.batch_size}; valid: at most the "
            f"{len(x)} training examples"
        )
    total = total_steps(recipe.epochs, steps_per_epoch)
    opt, scheduler = make_optimizer(
        recipe.optimizer, model.parameters(), hp=recipe.optimizer_params, fast=recipe.fast,
        schedule=recipe.schedule, schedule_args=recipe.schedule_params,
        total=total,
    )  # fmt: skip
    augment = from_spec(recipe.augment, seed=seed) if recipe.augment != "none" else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    order = torch.Generator().manual_seed(seed)

    epochs: list[dict[str, Any]] = []
    time_to_target: float | None = None
    step, last = 0, epoch_count(recipe.epochs)
    for epoch in range(1, last + 1):
        perm = torch.randperm(len(x), generator=order).to(device)
        for i in range(min(steps_per_epoch, total - step)):
            idx = perm[i * recipe.batch_size : (i + 1) * recipe.batch_size]
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb, yb = augment(xb, yb, step)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, torch.bfloat16, enabled=recipe.bfloat16):
                loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            scheduler.step()
            step += 1
        acc, eval_start = None, time.perf_counter()
        if epoch >= recipe.eval_from_epoch or epoch == last:
            with torch.autocast(device.type, torch.bfloat16, enabled=recipe.bfloat16):
                acc = evaluate(net, x_test, y_test, recipe.eval_batch_size, recipe.tta)
        _sync(device)
        now = time.perf_counter() - start
        if acc is not None and acc >= recipe.target and time_to_target is None:
            time_to_target = now
        eval_s = time.perf_counter() - eval_start if acc is not None else None
        row = {"epoch": epoch, "steps": step, "time": now, "accuracy": acc, "eval_time": eval_s}
        epochs.append(row)
        if on_epoch is not None:
            on_epoch(seed, row)
    return {
        "seed": seed,
        "load_time": load_s,
        "time_to_target": time_to_target,
        "reached": time_to_target is not None,
        "final_accuracy": epochs[-1]["accuracy"],
        "total_time": epochs[-1]["time"],
        "epochs": epochs,
    }
