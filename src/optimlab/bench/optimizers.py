"""``optimlab bench optimizers``: our step time against torch.optim's, side by side.

For every registry optimizer whose rule torch.optim also implements, the same
parameters and gradients are stepped by ours and by torch's for-loop, foreach
and fused implementations (where torch has them), interleaved, and the median
step times are printed with the ratio ours / torch.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

import torch

from optimlab.bench.timing import interleaved_medians
from optimlab.optim.registry import OPTIMIZERS, OptimizerRecord

# torch.optim classes with a fused implementation on CPU (torch 2.4+).
FUSED_ON_CPU = {"Adam", "AdamW", "SGD", "Adagrad"}


def make_params(sizes: list[tuple[int, ...]], seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in sizes:
        p = torch.randn(shape, generator=gen).requires_grad_()
        p.grad = torch.randn(shape, generator=gen) * 1e-2
        params.append(p)
    return params


MODELS: dict[str, list[tuple[int, ...]]] = {
    # a few large tensors: bandwidth-bound
    "large": [(1024, 1024)] * 4 + [(1024,)] * 4,
    # many small tensors: launch and Python overhead dominate
    "small": [(64, 64), (64,)] * 100,
}


def _stepper(make: Callable[[list[torch.Tensor]], torch.optim.Optimizer], sizes, seed):
    params = make_params(sizes, seed)
    opt = make(params)
    return opt.step


def torch_variants(record: OptimizerRecord) -> dict[str, Callable]:
    """torch.optim builders for the record's rule: for-loop, foreach, fused."""
    cls = getattr(torch.optim, record.torch_class)
    hp = {k: v for k, v in record.defaults.items()}
    variants = {
        "torch-loop": lambda ps: cls(ps, **hp, foreach=False),
        "torch-foreach": lambda ps: cls(ps, **hp, foreach=True),
    }
    if record.torch_class in FUSED_ON_CPU:
        variants["torch-fused"] = lambda ps: cls(ps, **hp, fused=True)
    return variants


def run(model: str = "large", repeats: int = 20) -> list[dict]:
    sizes = MODELS[model]
    n = sum(torch.Size(s).numel() for s in sizes)
    print(
        f"optimizer step, model {model!r}: {len(sizes)} tensors, {n / 1e6:.2f}M params, "
        f"float32, CPU ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads), median of {repeats}"
    )
    rows = []
    for record in OPTIMIZERS:
        if record.torch_class is None:
            continue
        contenders = {
            "optimlab": _stepper(lambda ps, r=record: r.builder(ps, **r.defaults), sizes, 0)
        }
        for name, make in torch_variants(record).items():
            contenders[name] = _stepper(make, sizes, 0)
        medians = interleaved_medians(contenders, repeats=repeats)
        ours = medians["optimlab"]
        row = {"optimizer": record.name, "optimlab_ms": ours * 1e3}
        parts = [f"{record.name:9s} optimlab {ours * 1e3:7.2f} ms"]
        for name, t in medians.items():
            if name == "optimlab":
                continue
            row[f"{name}_ms"] = t * 1e3
            row[f"ratio_vs_{name}"] = ours / t
            parts.append(f"{name} {t * 1e3:7.2f} ms (x{ours / t:.2f})")
        print("  ".join(parts))
        rows.append(row)
    print("x = optimlab time / torch time (below 1: optimlab faster)")
    return rows


def run_cli(args) -> None:
    models = list(MODELS) if args.model == "both" else [args.model]
    for model in models:
        if model not in MODELS:
            from optimlab.errors import unknown_name

            raise unknown_name("benchmark model", model, MODELS)
        run(model, repeats=args.repeats)
        print()
