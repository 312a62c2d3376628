"""The LR range test's figure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimlab.errors import OptimlabError
from optimlab.train.lr_find import LRFindResult, smooth
from optimlab.viz.lr_find import plot_lr_find

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_png_svg_pdf_atomically(tmp_path):
    lrs = list(np.logspace(-5, 0, 40))
    losses = [2.0 - math.tanh(2 * (math.log10(lr) + 2.5)) for lr in lrs]
    result = LRFindResult(lrs, losses, smooth(losses, 0.5), lrs[20], (lrs[12], lrs[30]), False)
    plot_lr_find(result, tmp_path / "f.png")
    plot_lr_find(result, tmp_path / "f.svg")
    plot_lr_find(result, tmp_path / "f.pdf")
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG_MAGIC
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:500]
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png", "f.svg"]
    with pytest.raises(OptimlabError, match="path"):
        plot_lr_find(result, tmp_path / "f.jpeg")
    # the result draws itself through the same function
    assert result.plot(tmp_path / "m.png").read_bytes()[:8] == PNG_MAGIC
