"""API pages for optimlab's packages, and the autodoc hooks they rely on.

``.. optimlab-package:: optimlab.optim`` writes one page for a whole package: its
docstring, a table of the names it exports (``__all__``) with their one-line
summaries, then every public submodule (found by walking the package, so a new module
appears without editing the page) with everything it defines. Each object is
documented once, in the module that defines it; the name a package exports it under
(``optimlab.optim.Adam`` for ``optimlab.optim.adam.Adam``) is registered as an alias,
so references may use either.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from types import ModuleType
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext.autosummary import extract_summary
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

PACKAGE = "optimlab"
# The command line is documented by its --help, not in the API reference.
NOT_IN_REFERENCE = ("optimlab.cli",)
logger = logging.getLogger(__name__)


def aliases_of(env: BuildEnvironment) -> dict[str, tuple[str, str]]:
    """The exported names noted so far: alias -> (documented name, page)."""
    if not hasattr(env, "optimlab_aliases"):
        env.optimlab_aliases = {}
    return env.optimlab_aliases


def is_private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def public_submodules(package: ModuleType) -> list[str]:
    """Dotted names of the package's submodules, depth first, private ones left out."""
    found = pkgutil.walk_packages(package.__path__, prefix=package.__name__ + ".")
    return sorted(info.name for info in found if not is_private(info.name))


def is_code(obj: Any) -> bool:
    return inspect.isclass(obj) or inspect.isroutine(obj)


def defining_name(package: ModuleType, name: str, modules: list[str]) -> str | None:
    """The dotted name under which ``package.name`` is documented: where its class or
    function is defined, or for data, the module among ``modules`` that assigns it."""
    obj = getattr(package, name)
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if is_code(obj) and module and qualname:
        return f"{module}.{qualname}"
    assign = re.compile(rf"^{re.escape(name)}\s*[:=]", re.M)
    for modname in modules:
        if assign.search(inspect.getsource(importlib.import_module(modname))):
            return f"{modname}.{name}"
    return None


_ROLE = re.compile(r":(?:[\w-]+:)*`~?([^`<]*?)\s*(?:<[^>]*>)?`")


def summary(target: str, obj: Any, settings: Any) -> str:
    """The first sentence of the object's documentation, its cross-references turned
    into literals (the table is parsed in the package's context, not the object's)."""
    if is_code(obj):
        doc = inspect.getdoc(obj) or ""
    else:
        modname, name = target.rsplit(".", 1)
        attr_docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        doc = "\n".join(attr_docs.get(("", name), []))
    text = extract_summary(doc.splitlines(), settings) if doc else ""
    return _ROLE.sub(lambda m: f"``{m.group(1).split('.')[-1]}``", text)


def module_block(modname: str, data: list[str]) -> list[str]:
    """automodule for what ``modname`` itself defines; ``data`` by name (automodule
    leaves out some module-level data: a Registry instance carries its class's
    ``__module__`` and passes for an import, an undocumented tuple has no docstring)."""
    lines = [f".. automodule:: {modname}", "   :members:", "   :undoc-members:"]
    lines.append("   :ignore-module-all:")  # a re-exported name is documented where it lives
    if data:
        lines.append(f"   :exclude-members: {', '.join(t.rsplit('.', 1)[1] for t in data)}")
    lines.append("")
    for target in data:
        lines += [f".. autodata:: {target}", "   :no-value:", ""]
    return lines


class PackagePage(SphinxDirective):
    """``.. optimlab-package:: NAME``; an optional ``:modules:`` list (names relative
    to the package) replaces walking it."""

    required_arguments = 1
    has_content = False
    option_spec = {"modules": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        package = importlib.import_module(name)
        if "modules" in self.options:
            relative = [m.strip() for m in self.options["modules"].split(",") if m.strip()]
            submodules = [f"{name}.{m}" for m in relative]
        else:
            submodules = public_submodules(package)
        aliases = aliases_of(self.env)
        settings = self.state.document.settings
        rows: list[str] = []
        data: dict[str, list[str]] = {}
        for export in getattr(package, "__all__", ()):
            if export.startswith("_"):
                continue
            obj = getattr(package, export)
            target = defining_name(package, export, [name, *submodules])
            if target is None or is_private(target.rsplit(".", 1)[0]):
                raise self.error(
                    f"{name}.{export} is not defined in {name} or one of its public "
                    "modules, so its API page cannot document it"
                )
            aliases[f"{name}.{export}"] = (target, self.env.docname)
            rows += [f"   * - :py:obj:`~{target}`", f"     - {summary(target, obj, settings)}"]
            if not is_code(obj):
                data.setdefault(target.rsplit(".", 1)[0], []).append(target)
        lines = module_block(name, data.get(name, []))
        if rows:
            lines += [".. list-table:: Exported names", "   :widths: 30 70", "", *rows, ""]
        for sub in submodules:
            title = f"``{sub}``"
            lines += [title, "-" * len(title), "", *module_block(sub, data.get(sub, []))]
        container = nodes.container()
        source = self.get_source_info()[0]
        nested_parse_with_titles(self.state, StringList(lines, source=source), container)
        return container.children


def register_aliases(app: Sphinx, env: BuildEnvironment) -> None:
    """Let ``optimlab.optim.Adam`` (and ``optimlab.optim.Adam.step``) resolve to the
    objects documented as ``optimlab.optim.adam.Adam`` (``...Adam.step``)."""
    objects = env.get_domain("py").objects
    for alias, (target, docname) in aliases_of(env).items():
        if target not in objects:
            logger.warning(f"{alias} names {target}, which {docname} did not document")
            continue
        nested = [n for n in objects if n.startswith(target + ".")]
        for name in [target, *nested]:
            new = alias + name[len(target) :]
            if new in objects and not objects[new].aliased:
                continue  # a real object of that name: module ``evaluate`` vs function
            objects[new] = objects[name]._replace(aliased=True)


def resolve_as_imported(
    app: Sphinx, env: BuildEnvironment, node: nodes.Element, contnode: nodes.Element
) -> nodes.Element | None:
    """Resolve a reference as Python would from the docstring's module: ``RunConfig`` in
    a module that imports it names ``optimlab.run.config.RunConfig``. A name that the
    module does not hold stays unresolved, and the build fails on it."""
    modname = node.get("py:module")
    if node.get("refdomain") != "py" or not modname or not modname.startswith(PACKAGE):
        return None
    try:
        obj: Any = importlib.import_module(modname)
        for part in node["reftarget"].lstrip("~.").split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    if inspect.ismodule(obj):
        canonical = obj.__name__
    elif is_code(obj) and getattr(obj, "__module__", "").startswith(PACKAGE):
        canonical = f"{obj.__module__}.{obj.__qualname__}"
    else:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
    )


def check_every_module(app: Sphinx, env: BuildEnvironment) -> None:
    """Every public module has a place in the reference: a new package without an API
    page fails the build instead of going missing."""
    documented = set(env.get_domain("py").modules)
    package = importlib.import_module(PACKAGE)
    for name in [PACKAGE, *public_submodules(package)]:
        if name not in documented and not name.startswith(NOT_IN_REFERENCE):
            logger.warning(f"module {name} is on no API page; give it one in docs/api/")


def purge_aliases(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    aliases = aliases_of(env)
    for alias in [a for a, (_, doc) in aliases.items() if doc == docname]:
        del aliases[alias]


def merge_aliases(app: Sphinx, env: BuildEnvironment, docnames: Any, other: Any) -> None:
    aliases_of(env).update(aliases_of(other))


def skip_foreign(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> Any:
    """Leave out class attributes that are another library's functions (``cos =
    staticmethod(math.cos)``): their docstrings are that library's, not ours."""
    if what == "class" and callable(obj) and not inspect.isclass(obj):
        module = getattr(obj, "__module__", None) or ""
        if module and not module.startswith(PACKAGE):
            return True
    return None


def public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    """Show a private base class (``_Affine``) as the public bases it stands for."""
    out: list[type] = []

    def add(base: type) -> None:
        if base.__name__.startswith("_") and base.__module__.startswith(PACKAGE):
            for grand in base.__bases__:
                add(grand)
        elif base not in out:
            out.append(base)

    for base in bases:
        add(base)
    bases[:] = out


def factory_defaults(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None, ret: Any
) -> tuple[str | None, Any] | None:
    """Write a dataclass field's ``default_factory`` as a call (``dict()``) instead of
    ``<factory>``, which is not Python and would make the signature unparsable."""
    if what != "class" or not signature or not dataclasses.is_dataclass(obj):
        return None
    made = [
        f
        for f in dataclasses.fields(obj)
        if f.init and f.default_factory is not dataclasses.MISSING
    ]
    for f in made:
        factory = f.default_factory
        shown = getattr(factory, "__qualname__", "")
        signature = signature.replace(
            "<factory>", f"{shown}()" if shown.isidentifier() else "...", 1
        )
    return signature, ret


_RULE = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def pipe_tables(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Render the Markdown pipe tables that some docstrings hold (they read as plain
    text in ``help()``) as reStructuredText list tables."""
    i = 0
    while i + 1 < len(lines):
        if lines[i].lstrip().startswith("|") and _RULE.match(lines[i + 1].strip()):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            end = i + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            rows = [_cells(lines[i])] + [_cells(row) for row in lines[i + 2 : end]]
            table = [f"{indent}.. list-table::", f"{indent}   :header-rows: 1", ""]
            for row in rows:
                for k, cell in enumerate(row):
                    table.append(f"{indent}   {'* -' if k == 0 else '  -'} {cell}")
            table.append("")
            lines[i:end] = table
            i += len(table)
        else:
            i += 1


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("optimlab-package", PackagePage)
    app.connect("autodoc-skip-member", skip_foreign)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("autodoc-process-signature", factory_defaults)
    app.connect("autodoc-process-docstring", pipe_tables)
    app.connect("env-purge-doc", purge_aliases)
    app.connect("env-merge-info", merge_aliases)
    app.connect("env-updated", register_aliases)
    app.connect("env-check-consistency", check_every_module)
    app.connect("missing-reference", resolve_as_imported)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
