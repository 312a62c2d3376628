"""The ``--init`` and ``--diagnose`` options of ``optimlab train``.

``--init NAME`` re-initializes the problem's model by name (``optimlab.nn.init``; LSUV
uses the first training batch), seeded by ``--seed``. ``--diagnose`` adds the
``GradientFlow`` callback, sampled every ``--diagnose-every`` steps, which writes
``OUT/diagnostics/`` (records as JSON, a gradient-norm heatmap, activation histograms).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError

#: the settings these options add (names and types, as ``optimlab.cli.train.SETTINGS``)
SETTINGS: dict[str, type] = {"init": str, "diagnose": bool, "diagnose_every": int}
DEFAULT_EVERY = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--init``, ``--diagnose`` and ``--diagnose-every`` to ``parser``."""
    parser.add_argument("--init", help="re-initialize the model's Linear/Conv weights by name")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        default=None,
        help="record per-layer gradient flow into OUT/diagnostics",
    )
    parser.add_argument(
        "--diagnose-every", type=int, metavar="K", help=f"sample every K steps ({DEFAULT_EVERY})"
    )


def apply_init(settings: dict[str, Any], problem: Any) -> None:
    """Re-initialize ``problem.model`` when ``settings["init"]`` names an initializer."""
    name = settings.get("init")
    if not name:
        return
    import torch

    from optimlab.nn import init

    record = init.INITIALIZERS.get(name)  # unknown names fail with the valid ones
    data = None
    if record.needs_data:
        if problem.splits is None:
            raise OptimlabError(f"--init {record.name} needs a problem with training data")
        data = problem.splits.train.x[: problem.batch_size]
    # Seeded so that the run is reproducible; training reseeds from --seed afterwards.
    generator = torch.Generator(device="cpu").manual_seed(int(settings.get("seed", 0)))
    params = list(problem.model.parameters())
    if params and params[0].device.type != "cpu":
        generator = None
        torch.manual_seed(int(settings.get("seed", 0)))
    with torch.no_grad():
        init.apply(problem.model, record.name, data=data, generator=generator)


def callbacks(settings: dict[str, Any]) -> list[Any]:
    """The diagnostics callback when ``settings["diagnose"]`` is set."""
    every = settings.get("diagnose_every")
    if not settings.get("diagnose"):
        if every is not None:
            raise OptimlabError("--diagnose-every needs --diagnose")
        return []
    if not settings.get("out"):
        raise OptimlabError("--diagnose needs --out DIR (the diagnostics are written there)")
    from optimlab.train.diagnostics import GradientFlow

    every = DEFAULT_EVERY if every is None else every
    return [GradientFlow(every=every, out_dir=Path(settings["out"]) / "diagnostics")]
