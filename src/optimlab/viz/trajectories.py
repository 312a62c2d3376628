"""Optimizer paths on the 2-D test functions, as a still figure or an animated GIF.

The paths are run by optimlab's own optimizers (``optimlab.optim.create``) on one
2-element float64 parameter, so what the picture shows is what the library does.
A learning rate can be given, taken from the problem's hint, or tuned: ``tune_lr``
runs every rate of a log grid for the same number of steps and keeps the one that
ends closest to a global minimum (lowest final value where the function has none,
as for the saddle); a diverged run scores infinity.

An animation has ``min(frames, steps + 1)`` frames; frame ``i`` of ``n`` shows the paths
up to step ``round(i * steps / (n - 1))``, so the first frame is the start and the last
frame the finished paths.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from optimlab.errors import OptimlabError, check_range, unknown_name
from optimlab.optim import OPTIMIZERS, create
from optimlab.problems.functions2d import FUNCTIONS, Function2D
from optimlab.viz import style

XY = tuple[float, float]
# A coordinate beyond this counts as divergence: no 2-D function here is drawn past |10|.
ESCAPE = 1e6
SGD_FAMILY = ("sgd", "momentum", "nesterov")


@dataclass(frozen=True)
class Trajectory:
    """One optimizer's path: ``points[t]`` is the iterate after ``t`` steps (t = 0..steps),
    ``losses[t]`` the function value there. A diverged path stops at its last finite point."""

    optimizer: str
    lr: float
    points: np.ndarray
    losses: np.ndarray
    diverged: bool
    hyperparameters: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        tail = " (diverged)" if self.diverged else ""
        return f"{self.optimizer}, lr={self.lr:.3g}{tail}"

    def turn_backs(self) -> float:
        """The share of steps that turn back on the previous one (an angle over 90
        degrees between consecutive steps): high for a zig-zag, near 0 along a valley."""
        steps = np.diff(self.points, axis=0)
        steps = steps[np.linalg.norm(steps, axis=1) > 0]
        if len(steps) < 2:
            return 0.0
        return float(np.mean(np.sum(steps[1:] * steps[:-1], axis=1) < 0))

    def steps_to(self, loss: float) -> int | None:
        """The first step whose value is <= ``loss``, or None if never reached."""
        hit = np.nonzero(self.losses <= loss)[0]
        return int(hit[0]) if hit.size else None


def get_function(name: str) -> Function2D:
    if name not in FUNCTIONS:
        raise unknown_name("function", name, FUNCTIONS.names(aliases=False))
    return FUNCTIONS.get(name)


def check_optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise unknown_name("optimizer", name, OPTIMIZERS.names(aliases=False))
    return OPTIMIZERS.get(name).name


def run_path(
    function: Function2D | str,
    optimizer: str,
    lr: float,
    steps: int,
    start: XY | None = None,
    **hyperparameters: float,
) -> Trajectory:
    """Run ``steps`` steps of ``optimizer`` at ``lr`` from ``start`` on ``function``."""
    fn = get_function(function) if isinstance(function, str) else function
    name = check_optimizer(optimizer)
    check_range("lr", lr, 0.0, low_open=True)
    check_range("steps", steps, 1)
    point = torch.tensor(start or fn.start, dtype=torch.float64, requires_grad=True)
    opt = create(name, [point], lr=lr, **hyperparameters)
    points = [point.detach().clone()]
    losses = []
    diverged = False
    for _ in range(steps):
        opt.zero_grad()
        loss = fn(point)
        loss.backward()
        losses.append(loss.item())
        opt.step()
        now = point.detach().clone()
        if not torch.isfinite(now).all() or now.abs().max() > ESCAPE:
            diverged = True
            break
        points.append(now)
    with torch.no_grad():
        last = fn(points[-1]).item()
    losses = losses[: len(points) - 1] + [last]
    if not math.isfinite(last):
        diverged = True
    return Trajectory(
        name, float(lr), torch.stack(points).numpy(), np.asarray(losses), diverged,
        dict(hyperparameters),
    )  # fmt: skip


def score(fn: Function2D, path: Trajectory) -> float:
    """What ``tune_lr`` minimizes: distance from the end to the nearest global minimum
    (the final value where the function has no minimum); infinity for a diverged path."""
    if path.diverged:
        return math.inf
    end = path.points[-1]
    if fn.minima:
        return float(min(np.hypot(*(end - np.asarray(m))) for m in fn.minima))
    return float(path.losses[-1])


def lr_grid(low: float = 1e-4, high: float = 1.0, per_decade: int = 3) -> list[float]:
    """A log grid from ``low`` to ``high`` (both included) with ``per_decade`` points a decade."""
    check_range("low", low, 0.0, low_open=True)
    check_range("high", high, low, low_open=True)
    check_range("per_decade", per_decade, 1)
    n = round(math.log10(high / low) * per_decade)
    return [float(v) for v in np.logspace(math.log10(low), math.log10(high), n + 1)]


def tune_lr(
    function: Function2D | str,
    optimizer: str,
    steps: int,
    start: XY | None = None,
    grid: Sequence[float] | None = None,
    **hyperparameters: float,
) -> tuple[float, Trajectory]:
    """The grid rate whose path ends best (see ``score``); ``len(grid)`` runs of ``steps``.

    Ties go to the smaller rate. Raises OptimlabError if every rate diverges.
    """
    fn = get_function(function) if isinstance(function, str) else function
    best: tuple[float, Trajectory] | None = None
    best_score = math.inf
    for lr in grid or lr_grid():
        path = run_path(fn, optimizer, lr, steps, start, **hyperparameters)
        s = score(fn, path)
        if s < best_score:
            best, best_score = (lr, path), s
    if best is None:
        raise OptimlabError(f"every learning rate diverged for {optimizer} on {fn.name}")
    return best


def hint_lr(function: str, optimizer: str) -> float:
    """The problem's rough rate for the optimizer's family (SGD family or adaptive)."""
    from optimlab.problems import build

    hints = build(function).lr_hints
    return hints["sgd" if check_optimizer(optimizer) in SGD_FAMILY else "adam"]


def compute(
    function: str,
    optimizers: Sequence[str],
    *,
    steps: int = 200,
    lrs: Mapping[str, float] | None = None,
    tune: bool = False,
    start: XY | None = None,
) -> list[Trajectory]:
    """Paths of several optimizers from one start: given rates, tuned ones, or hints."""
    fn = get_function(function)
    if not optimizers:
        raise OptimlabError("invalid --optimizers: give at least one optimizer name")
    paths = []
    for name in optimizers:
        if lrs and name in lrs:
            paths.append(run_path(fn, name, lrs[name], steps, start))
        elif tune:
            paths.append(tune_lr(fn, name, steps, start)[1])
        else:
            paths.append(run_path(fn, name, hint_lr(fn.name, name), steps, start))
    return paths


# --- drawing -----------------------------------------------------------------------


def _levels(fn: Function2D, z: np.ndarray) -> tuple[np.ndarray, LogNorm | None]:
    if fn.log_scale:
        low = max(float(z[z > 0].min()), 1e-3)
        return np.logspace(math.log10(low), math.log10(float(z.max())), 30), LogNorm()
    return np.linspace(float(z.min()), float(z.max()), 30), None


def _draw_contours(ax, fn: Function2D) -> None:
    x, y, z = fn.grid(200)
    levels, norm = _levels(fn, z)
    ax.contour(x, y, z, levels=levels, norm=norm, cmap=style.CONTOUR_CMAP, linewidths=0.7)
    for m in fn.minima:
        ax.plot(*m, marker="*", color="black", markersize=12, linestyle="none")
    for s in fn.saddles:
        ax.plot(*s, marker="x", color="black", markersize=9, linestyle="none")
    ax.set_xlim(fn.xlim)
    ax.set_ylim(fn.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _loss_scale(fn: Function2D, paths: Sequence[Trajectory]) -> str:
    # A log axis shows the linear convergence rates; it needs values above the minimum.
    if fn.min_value is None:
        return "symlog"
    return "log"


def _loss_values(fn: Function2D, losses: np.ndarray) -> np.ndarray:
    if fn.min_value is None:
        return losses
    return np.maximum(losses - fn.min_value, 1e-16)


class _Drawing:
    """The two panels (paths over contours; loss against step) and their artists."""

    def __init__(self, fn: Function2D, paths: Sequence[Trajectory], title: str) -> None:
        self.fn, self.paths = fn, list(paths)
        self.fig = style.figure(11.0, 4.6)
        FigureCanvasAgg(self.fig)
        self.ax_path, self.ax_loss = self.fig.subplots(1, 2, width_ratios=[1.15, 1])
        _draw_contours(self.ax_path, fn)
        colour = style.colour_map(p.optimizer for p in self.paths)
        self.lines, self.heads, self.curves = [], [], []
        for p in self.paths:
            c = colour[p.optimizer]
            self.ax_path.plot(*p.points[0], marker="o", color=c, markersize=6,
                              markeredgecolor="black")  # fmt: skip
            (line,) = self.ax_path.plot(*p.points.T, color=c, linewidth=1.6, label=p.label)
            (head,) = self.ax_path.plot(*p.points[-1], marker="s", color=c, markersize=6,
                                        markeredgecolor="black")  # fmt: skip
            (curve,) = self.ax_loss.plot(np.arange(len(p.losses)), _loss_values(fn, p.losses),
                                         color=c, linewidth=1.5, label=p.label)  # fmt: skip
            self.lines.append(line)
            self.heads.append(head)
            self.curves.append(curve)
        self.ax_path.legend(loc="best", fontsize=8, framealpha=0.85)
        self.ax_loss.set_yscale(_loss_scale(fn, self.paths))
        self.ax_loss.set_xlabel("step")
        self.ax_loss.set_ylabel("f - f*" if fn.min_value is not None else "f")
        self.ax_loss.grid(True, alpha=0.3, linewidth=0.6)
        self.ax_loss.set_xlim(0, max(len(p.losses) for p in self.paths) - 1)
        self.title = title
        self.fig.suptitle(title)

    def show_until(self, step: int) -> None:
        """Cut every path and curve at ``step`` (for an animation frame)."""
        for p, line, head, curve in zip(self.paths, self.lines, self.heads, self.curves,
                                        strict=True):  # fmt: skip
            k = min(step, len(p.points) - 1)
            line.set_data(*p.points[: k + 1].T)
            head.set_data([p.points[k, 0]], [p.points[k, 1]])
            curve.set_data(np.arange(k + 1), _loss_values(self.fn, p.losses[: k + 1]))
        self.fig.suptitle(f"{self.title} - step {step}")


def _title(fn: Function2D) -> str:
    return f"{fn.name}: {fn.description}"


def plot(function: str, paths: Sequence[Trajectory], title: str | None = None) -> Figure:
    """The still figure: contours with the paths (start o, end square), and loss per step."""
    fn = get_function(function)
    return _Drawing(fn, paths, title or _title(fn)).fig


def frame_steps(steps: int, frames: int) -> list[int]:
    """The step each animation frame shows: ``min(frames, steps + 1)`` distinct steps
    from 0 to ``steps``, evenly spread."""
    check_range("frames", frames, 2)
    n = min(frames, steps + 1)
    return [round(i * steps / (n - 1)) for i in range(n)]


def gif_bytes(
    function: str,
    paths: Sequence[Trajectory],
    *,
    frames: int = 60,
    fps: float = 12.0,
    title: str | None = None,
    blit: bool = False,
) -> bytes:
    """The animation as GIF bytes (see the module doc for its frames).

    ``blit=True`` draws the contours, axes and markers once and then, for each frame,
    only what moves (paths, heads, loss curves, the legend above them, the title), and
    maps every frame to the last frame's palette: the same picture up to the stacking of a
    path over an axis line and a few colours, several times faster.
    """
    from PIL import Image

    check_range("fps", fps, 0.0, low_open=True)
    fn = get_function(function)
    steps = max(len(p.points) for p in paths) - 1
    drawing = _Drawing(fn, paths, title or _title(fn))
    fig = drawing.fig
    # Drawn in this order each frame: the order a full draw gives them (zorder).
    moving = [*drawing.lines, *drawing.heads, drawing.ax_path.get_legend(), *drawing.curves,
              fig._suptitle]  # fmt: skip

    def render(step: int) -> Image.Image:
        drawing.show_until(step)
        if not blit:
            fig.canvas.draw()
        else:
            fig.canvas.restore_region(background)
            for artist in moving:
                fig.draw_artist(artist)
        return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])

    palette = None
    if blit:
        for artist in moving:
            artist.set_animated(True)
        fig.canvas.draw()
        background = fig.canvas.copy_from_bbox(fig.bbox)
        # The finished paths show every colour the animation uses.
        palette = render(steps).quantize(colors=128, dither=0)
    images = []
    for step in frame_steps(steps, frames):
        image = render(step)
        images.append(image.quantize(colors=128, dither=0, palette=palette))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0, disposal=1)  # fmt: skip
    return buffer.getvalue()


def save_gif(
    function: str,
    paths: Sequence[Trajectory],
    out: str | os.PathLike[str],
    *,
    frames: int = 60,
    fps: float = 12.0,
    title: str | None = None,
) -> Path:
    """Write the animation to ``out`` (a .gif) atomically; see the module doc for frames."""
    from optimlab.io import atomic_write_bytes

    target = style.check_suffix(out, (".gif",))
    data = gif_bytes(function, paths, frames=frames, fps=fps, title=title)
    return atomic_write_bytes(target, data)


def save(
    function: str,
    paths: Sequence[Trajectory],
    out: str | os.PathLike[str],
    *,
    frames: int = 60,
    title: str | None = None,
) -> Path:
    """Write a still (.png/.svg/.pdf) or an animation (.gif), chosen by the suffix."""
    if Path(out).suffix.lower() == ".gif":
        return save_gif(function, paths, out, frames=frames, title=title)
    style.check_suffix(out, (*style.SUFFIXES, ".gif"))
    return style.save_figure(plot(function, paths, title), out)


# --- the gallery -------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A named picture from the lectures: a function, optimizers, a budget, a start."""

    name: str
    function: str
    optimizers: tuple[str, ...]
    steps: int
    caption: str  # what the function is; what the methods did is measured (``measured``)
    start: XY | None = None
    lrs: Mapping[str, float] | None = None  # None: tuned


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("ravine", "ravine", ("sgd", "momentum", "nesterov"), 100,
               "a ravine of condition number 100"),
        Preset("saddle", "saddle", ("sgd", "adagrad", "rmsprop", "adam"), 60,
               "started next to the saddle point",
               start=(0.5, 1e-3),
               lrs={"sgd": 0.05, "adagrad": 0.05, "rmsprop": 0.05, "adam": 0.05}),
        Preset("rosenbrock", "rosenbrock", ("sgd", "momentum", "rmsprop", "adam"), 400,
               "a curved, flat-bottomed valley"),
        Preset("beale", "beale", ("sgd", "momentum", "adagrad", "adam"), 300,
               "plateaus and sharp ridges"),
        Preset("himmelblau", "himmelblau", ("sgd", "momentum", "adam"), 200,
               "four minima"),
        Preset("rastrigin", "rastrigin", ("sgd", "momentum", "adam"), 200,
               "many local minima"),
    )
}  # fmt: skip


def measured(paths: list[Trajectory]) -> str:
    """What each method did, from its path: final value and the share of steps that
    turned back (zig-zag), e.g. ``"sgd f=0.012, 48% turn back; ..."``."""
    parts = []
    for p in paths:
        end = "diverged" if p.diverged else f"f={p.losses[-1]:.3g}"
        parts.append(f"{p.optimizer} {end}, {p.turn_backs():.0%} turn back")
    return "; ".join(parts)


def title(preset: Preset, paths: list[Trajectory]) -> str:
    """The figure's title: the preset's function and what was measured on it."""
    return f"{preset.function}, {preset.caption}\n{measured(paths)}"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise unknown_name("preset", name, PRESETS)
    return PRESETS[name]


def preset_paths(name: str, steps: int | None = None) -> list[Trajectory]:
    p = get_preset(name)
    return compute(p.function, p.optimizers, steps=steps or p.steps, lrs=p.lrs,
                   tune=p.lrs is None, start=p.start)  # fmt: skip


def write_gallery(
    directory: str | os.PathLike[str], *, gif: bool = False, frames: int = 60
) -> list[Path]:
    """Every preset as ``DIR/<preset>.png`` (and ``.gif`` when ``gif``); the written paths."""
    out = Path(directory)
    written = []
    for name, preset in PRESETS.items():
        paths = preset_paths(name)
        text = title(preset, paths)
        written.append(save(preset.function, paths, out / f"{name}.png", title=text))
        if gif:
            written.append(save(preset.function, paths, out / f"{name}.gif", frames=frames,
                                title=text))  # fmt: skip
    return written
