"""The lectures' experiments as registered entries, and the gallery page.

Each entry (one module under :mod:`optimlab.gallery.entries`) records a lecture's claim,
runs a budgeted experiment with optimlab, draws its figures and judges the claim from the
numbers it measured (:mod:`optimlab.gallery.entry`); :mod:`optimlab.gallery.registry`
lists them. ``optimlab gallery`` runs them (:func:`run_gallery`) and writes a
self-contained HTML page and a Markdown page.
"""

from optimlab.gallery.entry import (
    AT_BUDGET,
    NOT_REPRODUCED,
    REPRODUCED,
    TIERS,
    VERDICTS,
    Context,
    Entry,
    Measured,
    Verdict,
)
from optimlab.gallery.registry import select
from optimlab.gallery.runner import run_gallery

__all__ = [
    "AT_BUDGET",
    "NOT_REPRODUCED",
    "REPRODUCED",
    "TIERS",
    "VERDICTS",
    "Context",
    "Entry",
    "Measured",
    "Verdict",
    "run_gallery",
    "select",
]
