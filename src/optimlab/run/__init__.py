"""One run, one way: the typed run configuration and the builder every entry point uses.

>>> config = RunConfig(problem="digits_mlp", optimizer="adam", epochs=3)  # doctest: +SKIP
>>> result = build_run(config).fit()  # doctest: +SKIP
"""

from optimlab.run.build import Run, build_optimizer, build_run, steps_per_epoch, total_steps
from optimlab.run.config import RunConfig, load_toml

__all__ = [
    "Run",
    "RunConfig",
    "build_optimizer",
    "build_run",
    "load_toml",
    "steps_per_epoch",
    "total_steps",
]
