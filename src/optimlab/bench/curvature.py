"""Curvature benchmarks: Hessian-vector products, and L-BFGS against torch's.

``optimlab bench curvature`` (or ``python -m optimlab.bench.curvature [THREADS]``) times,
side by side and interleaved, the ways ``optimlab.curvature`` can multiply by the
Hessian of a small MLP's loss on CPU:

* one product at a new point (each method builds what it needs from scratch);
* one product with an operator built once at the point (what Lanczos, power iteration
  and conjugate gradients do: many products at one point);
* the exact Hessian as a matrix, all columns batched by ``vmap``;

and one ``step`` of optimlab's ``LBFGS`` against ``torch.optim.LBFGS`` with the same
arguments (20 iterations, strong Wolfe line search) from the same point, after checking
that the two end at the same parameters.

It prints the medians and the ratios that ``optimlab.curvature.hvp`` chose its
defaults by. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from optimlab.bench.timing import interleaved_medians
from optimlab.curvature import ModelObjective, hessian, hvp, hvp_operator
from optimlab.curvature.flat import flatten, unflatten


def _objective(hidden: int, batch: int, seed: int) -> ModelObjective:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 10)).double()
    x = torch.randn(batch, 64, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (batch,), generator=gen)
    return ModelObjective(model, nn.functional.cross_entropy, x, y)


def bench_hvp(hidden: int = 32, batch: int = 256, repeats: int = 100, seed: int = 0) -> dict:
    """Median seconds of each way to compute Hessian-vector products, and ratios."""
    obj = _objective(hidden, batch, seed)
    params = obj.params()
    n = sum(p.numel() for p in params.values())
    v = unflatten(torch.randn(n, generator=torch.Generator().manual_seed(seed + 1),
                              dtype=torch.float64), params)  # fmt: skip
    flat_v = flatten(v)
    rev_op, _ = hvp_operator(obj.loss, params, method="reverse_over_reverse")
    fwd_op, _ = hvp_operator(obj.loss, params, method="forward_over_reverse")
    contenders: dict[str, Callable[[], Any]] = {
        "new point, forward_over_reverse": lambda: hvp(
            obj.loss, params, v, method="forward_over_reverse"
        ),
        "new point, reverse_over_reverse": lambda: hvp(
            obj.loss, params, v, method="reverse_over_reverse"
        ),
        "same point, forward_over_reverse operator": lambda: fwd_op(flat_v),
        "same point, reverse_over_reverse operator": lambda: rev_op(flat_v),
    }
    times = interleaved_medians(contenders, repeats=repeats, seed=seed)
    # check that they agree before reporting their speed
    ref = flatten(hvp(obj.loss, params, v, method="forward_over_reverse"))
    for other in (flatten(hvp(obj.loss, params, v, method="reverse_over_reverse")),
                  rev_op(flat_v)):  # fmt: skip
        torch.testing.assert_close(other, ref, rtol=1e-10, atol=1e-12)
    return {"params": n, "batch": batch, "times": times}


def bench_hessian(hidden: int = 8, batch: int = 256, repeats: int = 21, seed: int = 0) -> dict:
    """Median seconds of the exact Hessian by each method."""
    obj = _objective(hidden, batch, seed)
    params = obj.params()
    n = sum(p.numel() for p in params.values())
    contenders = {
        f"hessian, {m}": (lambda m=m: hessian(obj.loss, params, method=m))
        for m in ("forward_over_reverse", "reverse_over_reverse")
    }
    times = interleaved_medians(contenders, repeats=repeats, warmup=1, seed=seed)
    return {"params": n, "batch": batch, "times": times}


def bench_lbfgs(hidden: int = 32, batch: int = 256, repeats: int = 30, seed: int = 0) -> dict:
    """Median seconds of one L-BFGS ``step`` (20 iterations, strong Wolfe, history 10) of
    optimlab's and torch's, each from the same point with a cleared state, on a tanh
    MLP's cross-entropy in float64."""
    from optimlab.optim import LBFGS

    obj = _objective(hidden, batch, seed)
    model, x, y = obj.model, obj.x, obj.y
    start = [p.detach().clone() for p in model.parameters()]
    settings = dict(max_iter=20, history_size=10, line_search_fn="strong_wolfe")
    optimizers = {
        "lbfgs step, optimlab": LBFGS(model.parameters(), **settings),
        "lbfgs step, torch.optim": torch.optim.LBFGS(model.parameters(), **settings),
    }

    def step(opt: torch.optim.Optimizer) -> None:
        with torch.no_grad():
            for p, p0 in zip(model.parameters(), start, strict=True):
                p.copy_(p0)
        opt.state.clear()  # a first step every time: no pairs yet

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        opt.step(closure)

    ends = []
    for opt in optimizers.values():  # check that they take the same steps
        step(opt)
        ends.append(flatten([p.detach() for p in model.parameters()]))
    torch.testing.assert_close(ends[0], ends[1], rtol=1e-9, atol=1e-11)
    contenders = {name: (lambda o=opt: step(o)) for name, opt in optimizers.items()}
    times = interleaved_medians(contenders, repeats=repeats, seed=seed)
    n = sum(p.numel() for p in start)
    return {"params": n, "batch": batch, "times": times}


def _ratio_lines(times: dict[str, float], pairs: list[tuple[str, str]]) -> list[str]:
    return [f"  {a} / {b}: {times[a] / times[b]:.2f}x" for a, b in pairs]


def report(threads: int = 1, repeats: int | None = None) -> str:
    """Run the benchmarks and format the result; ``repeats`` overrides every
    benchmark's number of timed calls per contender."""
    torch.set_num_threads(threads)
    counts = {} if repeats is None else {"repeats": repeats}
    lines = [
        f"machine: {platform.machine()} {platform.processor() or ''}".rstrip()
        + f", torch {torch.__version__}, {threads} thread(s), float64",
    ]
    products = bench_hvp(**counts)
    lines.append(f"Hessian-vector products, MLP 64-32-10 tanh ({products['params']} parameters), "
                 f"batch {products['batch']}:")  # fmt: skip
    for name, sec in products["times"].items():
        lines.append(f"  {name:45s} {sec * 1e3:8.3f} ms")
    t = products["times"]
    lines += _ratio_lines(
        t,
        [
            ("new point, forward_over_reverse", "new point, reverse_over_reverse"),
            ("same point, reverse_over_reverse operator", "new point, forward_over_reverse"),
            ("same point, reverse_over_reverse operator",
             "same point, forward_over_reverse operator"),
        ],
    )  # fmt: skip
    full = bench_hessian(**counts)
    lines.append(f"exact Hessian, MLP 64-8-10 tanh ({full['params']} parameters), "
                 f"batch {full['batch']}:")  # fmt: skip
    for name, sec in full["times"].items():
        lines.append(f"  {name:45s} {sec * 1e3:8.1f} ms")
    lines += _ratio_lines(
        full["times"], [("hessian, forward_over_reverse", "hessian, reverse_over_reverse")]
    )
    for hidden in (32, 512):
        steps = bench_lbfgs(hidden=hidden, **counts)
        lines.append(f"L-BFGS step (20 iterations, strong Wolfe), MLP 64-{hidden}-10 tanh "
                     f"({steps['params']} parameters), batch {steps['batch']}:")  # fmt: skip
        for name, sec in steps["times"].items():
            lines.append(f"  {name:45s} {sec * 1e3:8.2f} ms")
        lines += _ratio_lines(steps["times"], [("lbfgs step, optimlab", "lbfgs step, torch.optim")])
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
