"""Speedrun recipes: a TOML file naming every choice of a time-to-accuracy run.

Layout (``DEFAULT_TOML`` is the shipped Fashion-MNIST recipe)::

    name = "..."; dataset = "fashion_mnist"; target = 0.91
    seeds = 5; threads = 2; device = "cpu"
    flush_denormal = false (flush subnormal floats to zero, optimlab.train.denormals)
    [model]      name, params (builder arguments), init, channels_last, compile
    [optimizer]  name (optimlab.optim registry), params, fast
    [schedule]   name (optimlab.schedules registry), params (horizon and lr filled in)
    [train]      epochs (a fraction such as 1.8 trains that share of the last epoch),
                 batch_size, label_smoothing, augment (augmentation spec such
                 as "flip,crop:2", or "none"),
                 bfloat16 (autocast the forward pass; meant for GPUs)
    [eval]       tta ("none" | "flip" | "multiscale": ten crops at shorter sides S,
                 9S/8 and 5S/4 for S x S images), from_epoch, batch_size
    [cuda]       overrides of any of the above, applied when the device is a GPU

Every key is checked; a bad one raises ``OptimlabError`` naming it and what is valid.
The registries check the names and hyperparameters themselves, so a recipe is
rejected before any timing starts.
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import OptimlabError, check_range

DEFAULT_TOML = """\
# Fashion-MNIST speedrun: 91% test accuracy on 2 CPU cores, as fast as possible.
# `optimlab speedrun` runs this recipe; docs/speedrun.md explains each choice.
name = "fashion-mnist-speedrun"
dataset = "fashion_mnist"
target = 0.91
seeds = 5
threads = 2
device = "cpu"

[model]
name = "speednet"
# pool_first: conv -> pool -> norm -> ReLU, so norm and ReLU see a quarter of the positions
params = { widths = [8, 32, 64, 128], norm = "batch", head = "flatten", pool_first = true }
init = "default"          # torch's own init; or a name from optimlab.nn.init
channels_last = true
compile = false           # compiling costs more than it saves within one run

# Muon on the convolution filters (flattened to out x in*3*3) and the head's weight;
# SGD with Nesterov momentum on the norm layers' parameters and the head's bias.
[optimizer]
name = "muon"
fast = false              # the step is a small part of the time; compiling it costs seconds

[optimizer.params]
momentum = 0.6
weight_decay = 0.0
flatten = true            # conv filters (out, in, 3, 3) orthogonalised as out x in*9
other = "nesterov"        # what Muon does not take: SGD, Nesterov momentum (not AdamW)
other_momentum = 0.9
ns_dtype = "float32"      # a bfloat16 step took 11x longer on this CPU
ns_steps = 3              # 3, not 5: cheaper, and every seed still reaches 91% (docs)

[schedule]
name = "one_cycle"
# 0.07, not 0.05: the schedule is 10% shorter than the 2-epoch recipe's (docs)
params = { max_lr = 0.07, pct_start = 0.25 }

[train]
epochs = 1.8              # the second epoch stops after 80% of its batches (421 steps in all)
batch_size = 256
label_smoothing = 0.1
augment = "flip"
bfloat16 = false

[eval]
tta = "flip"
from_epoch = 2            # the first epoch is below the target; evaluating costs time
batch_size = 500          # cheaper per image than 2500 on this CPU (cache)

# The GPU variant (`--device cuda`): data held on the GPU, a wider net, bigger batches,
# bfloat16 autocast. Not measured yet: a starting point, not a result.
[cuda]
device = "cuda"

[cuda.model]
params = { widths = [64, 128, 256, 512], norm = "batch", head = "flatten" }

[cuda.train]
epochs = 10
batch_size = 512
bfloat16 = true

[cuda.eval]
from_epoch = 8
batch_size = 10000
"""

TTA = ("none", "flip", "multiscale")
TABLES: dict[str, set[str]] = {
    "model": {"name", "params", "init", "channels_last", "compile"},
    "optimizer": {"name", "params", "fast"},
    "schedule": {"name", "params"},
    "train": {"epochs", "batch_size", "label_smoothing", "augment", "bfloat16"},
    "eval": {"tta", "from_epoch", "batch_size"},
}
SCALARS = {"name", "dataset", "target", "seeds", "threads", "device", "flush_denormal"}
TOP_KEYS = SCALARS | set(TABLES) | {"cuda"}


@dataclass(frozen=True)
class Recipe:
    """A validated speedrun recipe (see the module docstring for the meaning of each field)."""

    name: str
    dataset: str
    target: float
    seeds: int
    threads: int
    device: str
    model: str
    flush_denormal: bool = False
    model_params: dict[str, Any] = field(default_factory=dict)
    init: str = "default"
    channels_last: bool = True
    compile: bool = False
    optimizer: str = "nesterov"
    optimizer_params: dict[str, Any] = field(default_factory=dict)
    fast: bool = False
    schedule: str = "one_cycle"
    schedule_params: dict[str, Any] = field(default_factory=dict)
    epochs: int | float = 5
    batch_size: int = 256
    label_smoothing: float = 0.0
    augment: str = "none"
    bfloat16: bool = False
    tta: str = "none"
    eval_from_epoch: int = 1
    eval_batch_size: int = 2500

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise OptimlabError(f"invalid {name}: {value!r}; valid values are integers >= {low}")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptimlabError(f"invalid {name}: {value!r}; valid values are true and false")
    return value


def _epochs(value: Any) -> int | float:
    """``train.epochs``: a whole number, or a fraction whose last epoch is cut short."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise OptimlabError(
            f"invalid train.epochs: {value!r}; valid values are numbers > 0 "
            "(integers, or a fraction such as 1.8 that cuts the last epoch short)"
        )
    return value


def epoch_count(epochs: int | float) -> int:
    """How many (possibly partial) epochs ``train.epochs`` runs: 1.8 runs 2."""
    return max(1, math.ceil(epochs))


def total_steps(epochs: int | float, steps_per_epoch: int) -> int:
    """Training steps of a run of ``train.epochs``: the steps of one epoch times
    ``epochs``, rounded (at least one), so a fractional last epoch trains only its share
    of the batches."""
    return max(1, round(epochs * steps_per_epoch))


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OptimlabError(f"invalid {name}: {value!r}; expected a non-empty string")
    return value.strip()


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptimlabError(f"invalid {name}: {value!r}; expected a number")
    return float(value)


def _table(raw: dict[str, Any], key: str, prefix: str = "") -> dict[str, Any]:
    table = raw.get(key, {})
    if not isinstance(table, dict):
        raise OptimlabError(f"invalid [{prefix}{key}]: expected a table, got {table!r}")
    unknown = sorted(set(table) - TABLES[key])
    if unknown:
        raise OptimlabError(
            f"unknown key {prefix}{key}.{unknown[0]} in the recipe; "
            f"valid keys in [{key}]: {', '.join(sorted(TABLES[key]))}"
        )
    return table


def _params(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OptimlabError(f"invalid {name}: {value!r}; expected a table of arguments")
    return dict(value)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` applied: tables merge key by key, other values replace."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key in TABLES:
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_device(device: str) -> str:
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        kind = None
    if kind not in ("cpu", "cuda"):
        raise OptimlabError(f"invalid device: {device!r}; valid: cpu, cuda, cuda:N")
    return device


def _check_registries(r: Recipe) -> None:
    """Let the registries judge names and hyperparameters, so a typo fails up front."""
    from optimlab.data import DATASETS
    from optimlab.data.augment_presets import parse_spec
    from optimlab.nn import MODELS
    from optimlab.nn.init import INITIALIZERS
    from optimlab.run.build import make_optimizer

    DATASETS.get(r.dataset)
    MODELS.get(r.model)
    if r.init != "default":
        INITIALIZERS.get(r.init)
    if r.augment != "none":
        parse_spec(r.augment)
    probe = [torch.zeros(1, requires_grad=True)]
    make_optimizer(r.optimizer, probe, hp=r.optimizer_params, schedule=r.schedule,
                   schedule_args=r.schedule_params, total=total_steps(r.epochs, 100))  # fmt: skip


def parse_recipe(raw: dict[str, Any], device: str | None = None) -> Recipe:
    """A ``Recipe`` from a parsed TOML table; ``device`` (or a GPU ``device`` key) applies
    the ``[cuda]`` overrides when it names a GPU."""
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise OptimlabError(
            f"unknown key {unknown[0]!r} in the recipe; valid keys: {', '.join(sorted(TOP_KEYS))}"
        )
    cuda = raw.get("cuda", {})
    if not isinstance(cuda, dict):
        raise OptimlabError(f"invalid [cuda]: expected a table of overrides, got {cuda!r}")
    bad = sorted(set(cuda) - (TOP_KEYS - {"cuda"}))
    if bad:
        raise OptimlabError(
            f"unknown key cuda.{bad[0]} in the recipe; valid keys in [cuda]: "
            f"{', '.join(sorted(TOP_KEYS - {'cuda'}))}"
        )
    for key in TABLES:
        _table(cuda, key, "cuda.")  # checked on every device, so a typo shows at once
    base = {k: v for k, v in raw.items() if k != "cuda"}
    wanted = _check_device(_str("device", device or base.get("device", "cpu")))
    if torch.device(wanted).type == "cuda":
        base = _merge(base, cuda)
        base["device"] = wanted
    for key in TABLES:
        _table(base, key)
    model, opt = base.get("model", {}), base.get("optimizer", {})
    sched, train, ev = base.get("schedule", {}), base.get("train", {}), base.get("eval", {})
    for key, table in (("model", model), ("optimizer", opt), ("schedule", sched)):
        if "name" not in table:
            raise OptimlabError(f"missing key {key}.name in the recipe")
    epochs = _epochs(train.get("epochs", 5))
    recipe = Recipe(
        name=_str("name", base.get("name", "speedrun")),
        dataset=_str("dataset", base.get("dataset", "fashion_mnist")),
        target=_real("target", base.get("target", 0.91)),
        seeds=_int("seeds", base.get("seeds", 5), 1),
        threads=_int("threads", base.get("threads", 2), 1),
        device=_check_device(_str("device", base.get("device", "cpu"))),
        flush_denormal=_bool("flush_denormal", base.get("flush_denormal", False)),
        model=_str("model.name", model["name"]),
        model_params=_params("model.params", model.get("params", {})),
        init=_str("model.init", model.get("init", "default")),
        channels_last=_bool("model.channels_last", model.get("channels_last", True)),
        compile=_bool("model.compile", model.get("compile", False)),
        optimizer=_str("optimizer.name", opt["name"]),
        optimizer_params=_params("optimizer.params", opt.get("params", {})),
        fast=_bool("optimizer.fast", opt.get("fast", False)),
        schedule=_str("schedule.name", sched["name"]),
        schedule_params=_params("schedule.params", sched.get("params", {})),
        epochs=epochs,
        batch_size=_int("train.batch_size", train.get("batch_size", 256), 1),
        label_smoothing=_real("train.label_smoothing", train.get("label_smoothing", 0.0)),
        augment=_str("train.augment", train.get("augment", "none")).lower(),
        bfloat16=_bool("train.bfloat16", train.get("bfloat16", False)),
        tta=str(ev.get("tta", "none")),
        eval_from_epoch=_int("eval.from_epoch", ev.get("from_epoch", 1), 1),
        eval_batch_size=_int("eval.batch_size", ev.get("batch_size", 2500), 1),
    )
    check_range("target", recipe.target, 0.0, 1.0, low_open=True)
    check_range("train.label_smoothing", recipe.label_smoothing, 0.0, 1.0, high_open=True)
    if recipe.tta not in TTA:
        raise OptimlabError(f"invalid eval.tta: {recipe.tta!r}; valid: {', '.join(TTA)}")
    if recipe.eval_from_epoch > epoch_count(epochs):
        raise OptimlabError(
            f"invalid eval.from_epoch: {recipe.eval_from_epoch}; valid: 1 to train.epochs "
            f"rounded up ({epoch_count(epochs)}), else the run is never evaluated"
        )
    _check_registries(recipe)
    return recipe


def loads_recipe(text: str, source: str = "<recipe>", device: str | None = None) -> Recipe:
    """Parse and validate a recipe from TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise OptimlabError(f"{source}: not valid TOML: {err}") from None
    return parse_recipe(raw, device)


def load_recipe(path: str | Path | None = None, device: str | None = None) -> Recipe:
    """The recipe in ``path``, or the shipped default (``DEFAULT_TOML``) when None."""
    if path is None:
        return loads_recipe(DEFAULT_TOML, "default recipe", device)
    p = Path(path)
    if not p.is_file():
        raise OptimlabError(f"recipe file not found: {p}")
    return loads_recipe(p.read_text(encoding="utf-8"), str(p), device)
