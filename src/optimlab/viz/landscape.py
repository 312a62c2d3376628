"""Loss landscapes (Li, Xu, Taylor, Studer & Goldstein, "Visualizing the Loss Landscape
of Neural Nets", NeurIPS 2018).

The loss is evaluated on a plane (or line) through the trained weights theta*:

    L(a, b) = loss(theta* + a d1 + b d2),

with random Gaussian directions that are *filter-normalized*: each filter (a row of a
weight matrix, an output channel of a convolution) of d is rescaled to the norm of the
matching filter of theta*, d_f <- d_f / ||d_f|| * ||theta*_f||, so that plots of
networks with different weight scales are comparable. Directions for biases and
normalization parameters (1-D tensors) are zero by default, as in the paper's
``ignore biasbn``. Batch-norm layers are evaluated in eval mode (running statistics).

Other planes: ``interpolate`` evaluates (1 - t) theta_A + t theta_B between two
checkpoints (Goodfellow et al. 2015); ``pca_directions`` takes the top two principal
directions of the steps theta_i - theta_final of a run, with their explained variance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from optimlab.errors import OptimlabError
from optimlab.io import atomic_write_bytes
from optimlab.viz import style

Direction = list[Tensor]  # one tensor per parameter, in model.parameters() order
LossFn = Callable[[Tensor, Tensor], Tensor]
KINDS = ("contour", "filled", "surface", "all")


def weights(model: nn.Module) -> Direction:
    return [p.detach().clone() for p in model.parameters()]


def filter_normalize(
    direction: Direction, theta: Direction, *, ignore_1d: bool = True
) -> Direction:
    """Rescale each filter of ``direction`` to the norm of the same filter of ``theta``.

    A filter is a slice along the first axis of a tensor with 2+ dimensions. 1-D tensors
    (biases, norm scales) become zero when ``ignore_1d``, else are scaled as one filter.
    """
    out = []
    for d, w in zip(direction, theta, strict=True):
        if d.dim() <= 1:
            if ignore_1d:
                out.append(torch.zeros_like(d))
            else:
                out.append(d * (w.norm() / d.norm().clamp_min(1e-12)))
            continue
        d_norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        w_norm = w.flatten(1).norm(dim=1)
        out.append(d * (w_norm / d_norm).view(-1, *([1] * (d.dim() - 1))))
    return out


def random_direction(model: nn.Module, seed: int = 0, *, ignore_1d: bool = True) -> Direction:
    """A filter-normalized Gaussian direction for ``model``'s parameters."""
    gen = torch.Generator().manual_seed(seed)
    theta = weights(model)
    raw = [torch.randn(w.shape, generator=gen, dtype=w.dtype).to(w.device) for w in theta]
    return filter_normalize(raw, theta, ignore_1d=ignore_1d)


def _set(model: nn.Module, values: Sequence[Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(model.parameters(), values, strict=True):
            p.copy_(v)


def mean_loss(
    model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, batch_size: int = 10_000
) -> float:
    """The example-weighted mean loss over (x, y) in batches, in eval mode, no grad."""
    total, n = 0.0, len(x)
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            total += float(loss_fn(model(xb), yb)) * len(xb)
    return total / n


@dataclass(frozen=True)
class Surface:
    """Loss values ``z[i, j]`` at ``theta + alphas[j] d1 + betas[i] d2`` (1-D: one row)."""

    alphas: np.ndarray
    betas: np.ndarray | None
    z: np.ndarray
    meta: dict

    def save(self, path: str | os.PathLike[str]) -> Path:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, alphas=self.alphas, betas=np.array([]) if self.betas is None
                 else self.betas, z=self.z, meta=json.dumps(self.meta, sort_keys=True))  # fmt: skip
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Surface:
        with np.load(path) as f:
            betas = f["betas"]
            return cls(f["alphas"], betas if betas.size else None, f["z"],
                       json.loads(str(f["meta"])))  # fmt: skip


def _split_first_linear(model: nn.Module) -> tuple[nn.Linear, nn.Module, int, int | None] | None:
    """``(first, rest, weight_index, bias_index)`` when ``model`` is an ``nn.Sequential``
    whose first parametrized module is an ``nn.Linear`` preceded only by Flatten or
    Identity; indices are positions in ``model.parameters()``. Otherwise None."""
    if not isinstance(model, nn.Sequential):
        return None
    for k, module in enumerate(model):
        if isinstance(module, nn.Flatten | nn.Identity):
            continue
        if not isinstance(module, nn.Linear):
            return None
        index = {id(p): i for i, p in enumerate(model.parameters())}
        bias = None if module.bias is None else index[id(module.bias)]
        head = nn.Sequential(*list(model)[:k])
        rest = nn.Sequential(*list(model)[k + 1 :])
        return module, nn.Sequential(head, rest), index[id(module.weight)], bias
    return None


def evaluate_plane(
    model: nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    directions: Sequence[Direction],
    alphas: np.ndarray,
    betas: np.ndarray | None = None,
    *,
    origin: Direction | None = None,
    batch_size: int = 10_000,
    meta: dict | None = None,
    factor_first_layer: bool = True,
) -> Surface:
    """Evaluate the loss over the line (one direction) or plane (two) through ``origin``
    (default: the model's weights). The model's weights and mode are restored after.

    With ``factor_first_layer`` and a model that starts with a linear layer (after an
    optional Flatten), that layer's output is formed per batch as

        x (W0 + a D1 + b D2)^T = x W0^T + a (x D1^T) + b (x D2^T),

    three products computed once per batch and reused by every grid point, so only the
    later layers run per point. This equals the direct evaluation up to float rounding.
    """
    if len(directions) not in (1, 2) or (len(directions) == 2) != (betas is not None):
        raise OptimlabError("invalid directions: give one (with alphas) or two (with betas)")
    theta = origin if origin is not None else weights(model)
    saved, was_training = weights(model), model.training
    grid = [(float(a), float(b)) for b in ([0.0] if betas is None else betas) for a in alphas]
    split = _split_first_linear(model) if factor_first_layer else None
    model.eval()
    try:
        if split is None:
            values = []
            for a, b in grid:
                _set(model, _point(theta, directions, a, b))
                values.append(mean_loss(model, loss_fn, x, y, batch_size))
        else:
            values = _factored_losses(model, split, loss_fn, x, y, theta, directions, grid,
                                      batch_size)  # fmt: skip
    finally:
        _set(model, saved)
        model.train(was_training)
    z = np.asarray(values).reshape(1 if betas is None else len(betas), len(alphas))
    return Surface(np.asarray(alphas), None if betas is None else np.asarray(betas),
                   z[0] if betas is None else z, dict(meta or {}))  # fmt: skip


def _point(theta: Direction, directions: Sequence[Direction], a: float, b: float) -> Direction:
    point = [w + a * d1 for w, d1 in zip(theta, directions[0], strict=True)]
    if len(directions) == 2:
        point = [p + b * d2 for p, d2 in zip(point, directions[1], strict=True)]
    return point


def _factored_losses(
    model: nn.Module,
    split: tuple[nn.Linear, nn.Module, int, int | None],
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    theta: Direction,
    directions: Sequence[Direction],
    grid: list[tuple[float, float]],
    batch_size: int,
) -> list[float]:
    """Mean losses at the grid points, batches outer and points inner (see evaluate_plane)."""
    _, (head, rest), wi, bi = split
    params = list(model.parameters())
    totals = [0.0] * len(grid)
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb, yb = head(x[i : i + batch_size]), y[i : i + batch_size]
            base = xb @ theta[wi].T
            along = [xb @ d[wi].T for d in directions]
            for k, (a, b) in enumerate(grid):
                # Move the weights in place (no fresh allocations); the first layer's
                # weight is not read, its output comes from base and along.
                with torch.no_grad():
                    for j, (p, w) in enumerate(zip(params, theta, strict=True)):
                        if j != wi:
                            p.copy_(w).add_(directions[0][j], alpha=a)
                            if len(directions) == 2:
                                p.add_(directions[1][j], alpha=b)
                h = torch.add(base, along[0], alpha=a)  # one pass per term, in place
                if len(along) == 2:
                    h.add_(along[1], alpha=b)
                if bi is not None:
                    h.add_(params[bi])
                totals[k] += float(loss_fn(rest(h), yb)) * len(xb)
    return [t / len(x) for t in totals]


def interpolate(
    model: nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    theta_a: Direction,
    theta_b: Direction,
    ts: np.ndarray,
    *,
    batch_size: int = 10_000,
) -> Surface:
    """Loss at (1 - t) theta_a + t theta_b for each t (t = 0 is A, t = 1 is B)."""
    diff = [b - a for a, b in zip(theta_a, theta_b, strict=True)]
    return evaluate_plane(model, loss_fn, x, y, [diff], ts, origin=theta_a,
                          batch_size=batch_size, meta={"kind": "interpolation"})  # fmt: skip


def pca_directions(path: Sequence[Direction]) -> tuple[list[Direction], np.ndarray, np.ndarray]:
    """Top two principal directions of the run's offsets theta_i - theta_final.

    Returns ``(directions, explained_variance_ratio, coordinates)`` where
    ``coordinates[i]`` is the projection of theta_i - theta_final on the two (unit)
    directions, for drawing the path.
    """
    if len(path) < 3:
        raise OptimlabError(f"invalid path: need at least 3 checkpoints, got {len(path)}")
    final = torch.cat([t.reshape(-1) for t in path[-1]]).double()
    m = torch.stack([torch.cat([t.reshape(-1) for t in p]).double() - final for p in path[:-1]])
    _, s, vh = torch.linalg.svd(m, full_matrices=False)
    ratio = (s**2 / (s**2).sum()).numpy()
    coords = (m @ vh[:2].T).numpy()
    coords = np.vstack([coords, np.zeros((1, 2))])
    dirs = []
    for row in vh[:2]:
        parts, i = [], 0
        for t in path[-1]:
            parts.append(row[i : i + t.numel()].view_as(t).to(t.dtype))
            i += t.numel()
        dirs.append(parts)
    return dirs, ratio[:2], coords


# --- drawing -----------------------------------------------------------------------


def plot(surface: Surface, kind: str = "all", title: str = "") -> Figure:
    """A 1-D curve, or contour / filled contour / 3-D surface (``kind="all"``: all three)."""
    if kind not in KINDS:
        raise OptimlabError(f"invalid kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if surface.betas is None:
        fig = style.figure(6.4, 4.4)
        ax = fig.subplots()
        ax.plot(surface.alphas, surface.z, color=style.PALETTE[0], linewidth=1.6)
        ax.set_xlabel("t" if surface.meta.get("kind") == "interpolation" else "alpha")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3, linewidth=0.6)
        ax.set_title(title)
        return fig
    kinds = ("contour", "filled", "surface") if kind == "all" else (kind,)
    fig = style.figure(5.2 * len(kinds) + 0.6, 4.6)
    a, b = np.meshgrid(surface.alphas, surface.betas)
    # Log-spaced levels resolve the basin floor, where a linear scale shows one blob.
    z = surface.z
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    levels = np.geomspace(max(lo, 1e-6), hi, 30) if lo > 0 else np.linspace(lo, hi, 30)
    for i, k in enumerate(kinds):
        if k == "surface":
            ax = fig.add_subplot(1, len(kinds), i + 1, projection="3d")
            ax.plot_surface(a, b, z, cmap=style.SURFACE_CMAP, linewidth=0, antialiased=True)
            ax.set_zlabel("loss")
        else:
            ax = fig.add_subplot(1, len(kinds), i + 1)
            draw = ax.contourf if k == "filled" else ax.contour
            cs = draw(a, b, z, levels=levels, cmap=style.CONTOUR_CMAP)
            if k == "contour":
                ax.clabel(cs, cs.levels[::6], fontsize=7, fmt="%.3g")
            else:
                fig.colorbar(cs, ax=ax, label="loss")
            ax.plot([0], [0], marker="*", color="red", markersize=10, linestyle="none")
            if "path" in surface.meta:
                p = np.asarray(surface.meta["path"])
                ax.plot(p[:, 0], p[:, 1], color="red", marker=".", linewidth=1.2)
        ratio = surface.meta.get("explained_variance")
        if ratio is not None:  # the PCA plane of a trajectory
            ax.set_xlabel(f"PC1 ({ratio[0]:.1%} of the variance)")
            ax.set_ylabel(f"PC2 ({ratio[1]:.1%} of the variance)")
        else:
            ax.set_xlabel("alpha (direction 1)")
            ax.set_ylabel("beta (direction 2)")
    fig.suptitle(title)
    return fig
