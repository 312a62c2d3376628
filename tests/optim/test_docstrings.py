"""Every transform documents its equation, each hyperparameter it reads and each
state key it keeps: the docstring's sections name exactly the class's ``defaults``
and ``state_keys``."""

from __future__ import annotations

import inspect
import re
import sys

import pytest

import optimlab.optim as oo

TRANSFORMS = [
    cls
    for name in oo.__all__
    if inspect.isclass(cls := getattr(oo, name))
    and issubclass(cls, oo.Transform)
    and cls is not oo.Transform
]


def section(doc: str, title: str) -> list[str]:
    """The names a Google-style section lists (``name: text`` at its first indent)."""
    lines = doc.splitlines()
    if f"{title}:" not in lines:
        return []
    names = []
    for line in lines[lines.index(f"{title}:") + 1 :]:
        if not line.strip():
            break
        if match := re.match(r"^    (\w+): ", line):
            names.append(match.group(1))
    return names


def test_every_exported_transform_is_checked():
    """Every transform class of optimlab.optim's modules is exported, so checked here."""
    defined = {
        cls
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("optimlab.optim.")
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and issubclass(cls, oo.Transform)
        and cls is not oo.Transform
        and cls.__module__ == module.__name__
        and not cls.__name__.startswith("_")
    }
    assert len(TRANSFORMS) >= 18
    assert defined <= set(TRANSFORMS), sorted(c.__name__ for c in defined - set(TRANSFORMS))


@pytest.mark.parametrize("cls", TRANSFORMS, ids=lambda c: c.__name__)
def test_docstring_has_equation_hyperparameters_state_and_references(cls):
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    assert ".. code-block:: text" in doc
    assert "References:" in doc
    assert section(doc, "Hyperparameters") == list(cls.defaults)
    assert section(doc, "State") == list(cls.state_keys)
