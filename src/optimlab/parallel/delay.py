"""A reproducible delay model: the staleness of each fetch, drawn from a seeded
distribution.

``RunConfig.simulate_delay`` (``--simulate-delay SPEC``) runs an asynchronous method
(downpour, delay_tolerant, easgd_async) in one process, with the server simulated
(:mod:`optimlab.parallel.simulate`): every fetch returns the parameters as they were
``s`` updates ago, ``s`` drawn here. The same spec and seed give the same staleness
sequence, so accuracy against staleness is a deterministic curve. Specs:

- ``fixed:K``: every fetch is ``K`` updates old;
- ``uniform:K``: uniform on ``0, 1, ..., K``;
- ``trace:PATH``: drawn (uniformly, with replacement) from the staleness values a real
  run recorded, ``PATH`` being its ``staleness.json`` or its output directory.

Before ``K`` updates exist, a fetch returns the oldest parameters there are (staleness
``min(s, version)``), as a real server's first fetches do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import OptimlabError

KINDS = ("fixed", "uniform", "trace")
STALENESS_FILE = "staleness.json"
# Mixed into the run's seed, so that the delays do not repeat the data order's draws.
_SALT = 0x5A1E


@dataclass(frozen=True)
class DelaySpec:
    """A parsed ``simulate_delay``: ``kind`` with bound ``k`` or recorded ``values``."""

    kind: str
    k: int = 0
    values: tuple[int, ...] = ()

    @property
    def max_staleness(self) -> int:
        """The largest staleness the spec can draw (how many old versions to keep)."""
        return max(self.values) if self.kind == "trace" else self.k


def _valid(text: str, why: str) -> OptimlabError:
    return OptimlabError(
        f"invalid simulate_delay {text!r}: {why}; valid: fixed:K, uniform:K (K a whole "
        f"number >= 0) or trace:PATH (a run's {STALENESS_FILE} or its directory)"
    )


def parse_delay(text: str) -> DelaySpec:
    """``"fixed:4"`` -> ``DelaySpec("fixed", 4)``; a trace's file is read now."""
    kind, sep, arg = text.partition(":")
    kind = kind.strip()
    if not sep or kind not in KINDS:
        raise _valid(text, f"unknown kind {kind!r}")
    if kind == "trace":
        return DelaySpec("trace", values=tuple(read_trace(arg.strip(), text)))
    arg = arg.strip()
    if not arg.isdigit():
        raise _valid(text, f"{arg!r} is not a whole number >= 0")
    return DelaySpec(kind, int(arg))


def read_trace(path: str, text: str = "") -> list[int]:
    """Every staleness value a run recorded (all server shards), from its
    ``staleness.json`` or its output directory."""
    p = Path(path)
    if p.is_dir():
        p = p / STALENESS_FILE
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _valid(text or path, f"no file {str(p)!r}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _valid(text or path, f"cannot read {str(p)!r} ({err})") from None
    shards = data.get("shards") if isinstance(data, dict) else None
    values = [v for shard in shards or [] for v in shard] if isinstance(shards, list) else []
    if not values or not all(isinstance(v, int) and v >= 0 for v in values):
        raise _valid(text or path, f"{str(p)!r} holds no staleness values")
    return values


class DelayModel:
    """Draws the staleness of each fetch from ``spec`` with its own generator, seeded
    by the run's ``seed``; its state goes into the run's checkpoints."""

    def __init__(self, spec: DelaySpec, seed: int) -> None:
        self.spec = spec
        self.generator = torch.Generator().manual_seed(seed * 65536 + _SALT)

    def draw(self) -> int:
        spec = self.spec
        if spec.kind == "fixed":
            return spec.k
        if spec.kind == "uniform":
            return int(torch.randint(0, spec.k + 1, (1,), generator=self.generator))
        index = int(torch.randint(0, len(spec.values), (1,), generator=self.generator))
        return spec.values[index]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
