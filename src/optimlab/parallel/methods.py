"""The parallel methods a run may use, by name (no torch.distributed import here: the run
configuration checks names without paying for it)."""

from __future__ import annotations

METHODS = {
    "none": "one process",
    "sync": "synchronous data parallel: gradients all-reduced every step (DDP)",
    "local_sgd": "(post-)local SGD: local steps, models averaged every period steps",
    "hogwild": "Hogwild!: processes update one model in shared memory without locks",
}
"""Method name -> one line describing it (``RunConfig.parallel`` takes the names)."""

DISTRIBUTED = ("sync", "local_sgd")
"""Methods whose processes form a torch.distributed process group, started by the
elastic launcher or torchrun (hogwild's share one machine's memory instead)."""

DEFAULT_LOCAL_SGD_PERIOD = 8
"""Steps between model averages of local SGD when ``local_sgd_period`` is not given."""
