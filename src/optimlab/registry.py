"""A small registry shared by optimizers, schedules, problems, models and datasets.

Each entry is a record with a name, a builder and metadata. The CLI, the docs and
the tests read registries; nothing keeps a second list of names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from optimlab.errors import unknown_name

#: The record type a registry holds.
R = TypeVar("R")


@dataclass(frozen=True)
class Record:
    """A generic registry record: what most registries need."""

    name: str
    builder: Callable[..., Any]
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    aliases: tuple[str, ...] = ()


class Registry(Generic[R]):
    """Records by name, with aliases; unknown names raise an error listing valid ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._records: dict[str, R] = {}
        self._aliases: dict[str, str] = {}

    def add(self, record: R) -> R:
        name = record.name  # type: ignore[attr-defined]
        if name in self._records or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._records[name] = record
        for alias in getattr(record, "aliases", ()):
            if alias in self._records or alias in self._aliases:
                raise ValueError(f"{self.kind} alias {alias!r} is registered twice")
            self._aliases[alias] = name
        return record

    def get(self, name: str) -> R:
        key = name.strip().lower() if isinstance(name, str) else name
        key = self._aliases.get(key, key)
        try:
            return self._records[key]
        except KeyError:
            raise unknown_name(self.kind, name, self.names()) from None

    def names(self, *, aliases: bool = True) -> list[str]:
        names = list(self._records)
        if aliases:
            names += list(self._aliases)
        return sorted(names)

    def __contains__(self, name: object) -> bool:
        return name in self._records or name in self._aliases

    def __iter__(self) -> Iterator[R]:
        return iter(self._records.values())

    def __len__(self) -> int:
        return len(self._records)
