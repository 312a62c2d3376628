"""Sphinx configuration of the optimlab documentation site.

Build it with ``make docs`` (warnings are errors, nitpicky mode). Pages are Markdown
(MyST); the API reference is generated from the docstrings (Google style, read by
napoleon). The build needs no network: intersphinx is off unless
``OPTIMLAB_DOCS_INTERSPHINX=1`` is set, and the theme ships its fonts and icons.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# Document the checkout's package, not whichever optimlab is installed.
sys.path.insert(0, str(DOCS.parent / "src"))

import optimlab  # noqa: E402

project = "optimlab"
author = "the optimlab authors"
copyright = "the optimlab authors"
release = optimlab.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "apipage",
    "registrytable",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []

# Broken cross-references are errors (the Makefile passes -n -W).
nitpicky = True

# --- Markdown (MyST) ---------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
# Heading anchors as GitHub makes them, so `page.md#a-heading` works on both.
myst_heading_anchors = 3

# --- API reference -------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# A method without its own docstring shows none, rather than torch's (nn.Module.forward).
autodoc_inherit_docstrings = False
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# "Attributes:" as fields of the class, so dataclass fields are not documented twice.
napoleon_use_ivar = True
# The transforms' docstrings list their group hyperparameters and state keys in
# sections of their own, laid out like "Args:".
napoleon_custom_sections = [("Hyperparameters", "params_style"), ("State", "params_style")]

# Types from other packages cannot be resolved without their inventories, which the
# offline build does not fetch; references to them are left as plain text. These are
# the packages whose types the signatures name; every reference into optimlab must
# resolve. A new dependency that appears in a signature is added here.
EXTERNAL = (
    "torch",
    "numpy",
    "matplotlib",
    "optuna",
    "collections",
    "pathlib",
    "os",
    "argparse",
    "dataclasses",
    "multiprocessing",
    "signal",
)
nitpick_ignore_regex = [
    (r"py:.*", rf"({'|'.join(EXTERNAL)})(\..+)?"),
]
# Annotations that stay strings (a module whose hints name a TYPE_CHECKING-only import
# cannot be evaluated) reach Sphinx unqualified; these are the external types among them.
nitpick_ignore = [("py:class", "Path"), ("py:class", "Tensor")]

intersphinx_mapping: dict[str, tuple[str, None]] = {}
if os.environ.get("OPTIMLAB_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "numpy": ("https://numpy.org/doc/stable", None),
    }

# --- HTML ----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"optimlab {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"index": []}
html_show_sourcelink = True
html_copy_source = True
