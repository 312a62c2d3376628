"""The package's layers: lower packages import nothing from the ones above them, and only
the command line knows argparse.

Every module under ``src/optimlab`` of this checkout is parsed with ``ast`` (not imported),
so an import inside a function or under ``TYPE_CHECKING`` counts as much as one at the top.
``regularize`` is a middle layer: lower packages may not import it, and it may take from
above only the trainer's callback protocol (see ``MIDDLE``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "optimlab"

# Building blocks: each may use the others and nothing above.
LOWER = {
    "optim",
    "nn",
    "data",
    "schedules",
    "problems",
    "curvature",
    "io",
    "errors",
    "registry",
}
# Regularizers sit between: MaxNorm, SnapshotEnsemble and WeightAveraging are trainer
# callbacks by design, so regularize builds on the trainer's plug-in protocol (the
# Callback base and evaluate) and on nothing else above the lower layers.
MIDDLE = {"regularize"}
MIDDLE_MAY_IMPORT = {"optimlab.train.callback", "optimlab.train.evaluate"}
# What runs, shows or drives training.
UPPER = {"train", "lab", "cli", "viz", "speedrun", "bench", "run", "gallery", "parallel"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, dotted name)`` for every import in ``source``, relative ones resolved.

    ``from optimlab import train`` yields ``optimlab.train`` (the name may be a module).
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "optimlab":
                found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, target))
    return found


def layer(name: str) -> str | None:
    """The package directly under optimlab that ``name`` belongs to (None if outside)."""
    parts = name.split(".")
    if parts[0] != "optimlab" or len(parts) < 2:
        return None
    return parts[1]


def all_imports() -> list[tuple[str, int, str]]:
    rows = []
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        is_package = path.name == "__init__.py"
        for line, target in imported_modules(path.read_text(), module, is_package):
            rows.append((module, line, target))
    return rows


IMPORTS = all_imports()


def where(module: str, line: int) -> str:
    return f"{module.replace('.', '/')}.py:{line}"


def test_the_scan_sees_every_lower_package():
    """Guard against a scan that silently finds nothing (a wrong root, say)."""
    seen = {layer(module) for module, _, _ in IMPORTS}
    for name in LOWER - {"curvature"} | MIDDLE | {"train", "lab", "cli", "viz", "bench"}:
        assert name in seen, name


def test_imports_inside_functions_and_relative_ones_are_found():
    source = (
        "from optimlab import train\n"
        "def f():\n"
        "    from optimlab.lab.report import figures\n"
        "    import optimlab.viz.style\n"
        "from ..cli import main\n"
    )
    names = [t for _, t in imported_modules(source, "optimlab.data.locate", False)]
    assert "optimlab.train" in names
    assert "optimlab.lab.report" in names
    assert "optimlab.viz.style" in names
    assert "optimlab.cli" in names


def test_lower_layers_import_nothing_from_above():
    above = UPPER | MIDDLE
    bad = [
        f"{where(module, line)} imports {target}"
        for module, line, target in IMPORTS
        if layer(module) in LOWER and layer(target) in above
    ]
    assert not bad, "lower layers import from above:\n" + "\n".join(bad)


def test_regularize_uses_only_the_trainer_protocol_from_above():
    bad = [
        f"{where(module, line)} imports {target}"
        for module, line, target in IMPORTS
        if layer(module) in MIDDLE
        and layer(target) in UPPER
        and not any(target == m or target.startswith(m + ".") for m in MIDDLE_MAY_IMPORT)
    ]
    assert not bad, "regularize imports from above the trainer protocol:\n" + "\n".join(bad)


def test_only_the_command_line_imports_argparse():
    bad = [
        f"{where(module, line)} imports {target}"
        for module, line, target in IMPORTS
        if target.split(".")[0] == "argparse" and layer(module) != "cli"
    ]
    assert not bad, "argparse outside optimlab.cli:\n" + "\n".join(bad)
