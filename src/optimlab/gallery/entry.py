"""What a gallery entry is: a lecture's claim, a budgeted run, its figures and a verdict rule.

An entry measures first and judges second. ``compute(budget, context)`` returns a
:class:`Measured`: the ``numbers`` (plain JSON values, finite floats; None where a
quantity was not reached) and any in-memory data the figures need. ``draw`` turns that
into figures. ``rule(numbers)`` reads only the numbers, so a verdict can be recomputed
from an entry's JSON and each rule is tested on fixed numbers.

Verdicts:

- ``reproduced``: the numbers show what the lecture claims.
- ``reproduced at this budget only``: they show it in the run this tier paid for, but the
  entry's numbers also show that it hinges on the budget (it does not yet hold at an
  earlier checkpoint of the same run, or a part could only be checked to the coarse
  tolerance this tier's resolution allows); a larger tier may settle it.
- ``not reproduced``: the numbers contradict the claim.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from optimlab.errors import OptimlabError

#: Tiers from cheapest to dearest; an entry runs in its own tier and every dearer one.
TIERS = ("quick", "standard", "full")

REPRODUCED = "reproduced"
AT_BUDGET = "reproduced at this budget only"
NOT_REPRODUCED = "not reproduced"
VERDICTS = (REPRODUCED, AT_BUDGET, NOT_REPRODUCED)


@dataclass(frozen=True)
class Verdict:
    """One of ``VERDICTS`` and the reason, in words, taken from the numbers."""

    status: str
    reason: str

    def __post_init__(self) -> None:
        if self.status not in VERDICTS:
            raise ValueError(f"unknown verdict {self.status!r}; valid: {', '.join(VERDICTS)}")

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Context:
    """What a run may need beyond its budget: where datasets are and whether to fetch them,
    and ``work``, a folder of its own where an entry that runs a lab study keeps it (so a
    killed run resumes from its checkpoints; None: the entry uses a temporary folder)."""

    data_dir: str | None = None
    download: bool = False
    work: str | None = None

    def study_folder(self, study_text: str, scratch: str) -> Path:
        """Where the study written as ``study_text`` runs: a folder under ``work`` named by
        the text's digest (another tier's budget is another study, which must not meet this
        one's storage), or ``scratch`` when the entry has no work folder."""
        if self.work is None:
            return Path(scratch)
        return Path(self.work) / f"study-{_digest(study_text)}"

    def run_folder(self, **what: Any) -> str | None:
        """Where one lab run of the entry checkpoints (its ``out``): a folder under ``work``
        named by the digest of ``what`` (the budget and whatever tells the entry's runs
        apart, as JSON), or None without a work folder (the run keeps no checkpoints)."""
        if self.work is None:
            return None
        text = json.dumps(what, sort_keys=True, default=str)
        return str(Path(self.work) / f"run-{_digest(text)}")


def _digest(text: str) -> str:
    """A short name for ``text`` (the same text, the same folder)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Measured:
    """A run's result: ``numbers`` go to the JSON and to the rule; ``data`` only to ``draw``."""

    numbers: dict[str, Any]
    data: Any = None


@dataclass(frozen=True)
class Animation:
    """An animated figure, already encoded as GIF bytes, and a still for PNG/SVG."""

    gif: bytes
    still: Figure


#: What ``draw`` returns: file stem -> a figure (written as PNG and SVG) or an animation
#: (written as GIF, its still as PNG and SVG).
Drawings = Mapping[str, Figure | Animation]


@dataclass(frozen=True)
class Entry:
    """A registry record: one of the lectures' experiments.

    ``budgets`` maps each tier from ``tier`` up to the keyword arguments of ``compute``;
    ``requires(budget)`` names the datasets the run reads (checked before it starts, so a
    missing one skips the entry with the way to get it). Bump ``version`` whenever the
    entry's code changes what it measures or how it draws: a stored result of another
    version is rerun, and a rerun is the only way to new figures (they are drawn from the
    run's in-memory data, which the stored result does not keep).
    ``threads`` fixes the torch threads of the run: 1 for entries made of many tiny tensor
    operations, where more threads only add synchronization; None for the runner's share
    of the cores. ``table(numbers)``, if given, returns ``(headers, rows)`` of strings: the
    summary the pages show above the full list of numbers.
    """

    name: str
    title: str
    deck: str
    slide: str
    claim: str
    tier: str
    version: int
    budgets: Mapping[str, Mapping[str, Any]]
    compute: Callable[..., Measured]
    draw: Callable[[Measured], Drawings]
    rule: Callable[[Mapping[str, Any]], Verdict]
    requires: Callable[[Mapping[str, Any]], Sequence[str]] = field(default=lambda budget: ())
    reference: str = ""
    threads: int | None = None
    table: Callable[[Mapping[str, Any]], tuple[list[str], list[list[str]]]] | None = None

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"entry {self.name!r}: unknown tier {self.tier!r}")
        wanted = set(TIERS[TIERS.index(self.tier) :])
        if set(self.budgets) != wanted:
            raise ValueError(
                f"entry {self.name!r}: budgets for {sorted(self.budgets)}; need {sorted(wanted)}"
            )

    def runs_in(self, tier: str) -> bool:
        """Whether the tier includes this entry (its own tier and every dearer one)."""
        return TIERS.index(tier) >= TIERS.index(self.tier)

    def budget(self, tier: str) -> dict[str, Any]:
        if not self.runs_in(tier):
            raise OptimlabError(
                f"entry {self.name!r} belongs to the {self.tier} tier; run it with "
                f"--tier {' or --tier '.join(TIERS[TIERS.index(self.tier) :])}"
            )
        return dict(self.budgets[tier])


def problem_data(budget: Mapping[str, Any]) -> list[str]:
    """An entry's ``requires`` when its budget names a ``problem``: that problem's dataset
    (none for a synthetic problem)."""
    from optimlab.problems import PROBLEMS

    dataset = PROBLEMS.get(budget["problem"]).dataset
    return [] if dataset == "-" else [dataset]


def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise OptimlabError(f"invalid --tier {tier!r}; valid tiers: {', '.join(TIERS)}")
    return tier


def output_stem(name: str) -> str:
    """A figure stem must be a plain file name (it becomes ``<stem>.png`` and so on)."""
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"invalid figure name {name!r}")
    return name
