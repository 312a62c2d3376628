"""Fractional max pooling (Graham 2014): shrink feature maps by a factor alpha in (1, 2).

Along each spatial axis, an increasing sequence 0 = a_0 < a_1 < ... < a_{N_out} with
increments a_i - a_{i-1} in {1, 2} cuts the N_in input positions into N_out pooling
intervals: ``[a_{i-1}, a_i - 1]`` (disjoint, a_{N_out} = N_in) or ``[a_{i-1}, a_i]``
(overlapping, a_{N_out} = N_in - 1 so the last interval stays inside the map). A pooling
region is the product of a row interval and a column interval, drawn independently.
Graham's two ways of drawing the sequence:

- ``"random"``: the increments are a random permutation of the right number of 1s and
  2s (their sum must reach a_{N_out});
- ``"pseudorandom"``: ``a_i = ceil(alpha (i + u)) - ceil(alpha u)`` with alpha =
  a_{N_out} / N_out and u ~ U(0, 1); the paper writes ``ceil(alpha (i + u))``, which
  the shift by ``ceil(alpha u)`` starts at 0 without changing the increments.

Here one sequence pair is drawn per image and call and shared by all channels.

``torch.nn.FractionalMaxPool2d`` (``sequence="torch"``) implements a third form: fixed
k x k windows (``kernel_size``) whose starts are ``floor(alpha' (i + u)) - floor(alpha' u)``
with alpha' = (N_in - k) / (N_out - 1), the last start pinned at N_in - k, and one u per
image, channel and axis. It is neither of Graham's interval forms, and its channels do
not share regions.

Pooling is random in evaluation mode too, as in torch; Graham averages the predictions
of several passes at test time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, unknown_name

SEQUENCES = ("pseudorandom", "random", "torch")


def output_length(n_in: int, ratio: float) -> int:
    """``int(n_in * ratio)``: the output length for an output ratio, as torch computes it."""
    return int(n_in * ratio)


def boundaries(
    n_in: int,
    n_out: int,
    count: int,
    *,
    sequence: str = "pseudorandom",
    overlapping: bool = True,
    generator: torch.Generator | None = None,
    u: Tensor | None = None,
) -> Tensor:
    """``count`` sequences a_0..a_{N_out} (int64, shape (count, n_out + 1)) for one axis.

    ``u`` (shape (count,), values in [0, 1)) fixes the pseudorandom offsets instead of
    drawing them."""
    total = n_in - 1 if overlapping else n_in
    if n_out < 1 or not n_out <= total <= 2 * n_out:
        form = "overlapping" if overlapping else "disjoint"
        raise OptimlabError(
            f"invalid output length {n_out} for input length {n_in}: {form} fractional "
            f"pooling needs {n_out} <= {total} <= {2 * n_out} (increments of 1 or 2)"
        )
    if sequence == "pseudorandom":
        if u is None:
            u = torch.rand(count, dtype=torch.float64, generator=generator)
        u = u.to(torch.float64).reshape(count, 1)
        i = torch.arange(n_out + 1, dtype=torch.float64)
        # total * (i + u) / n_out rather than alpha * (i + u): fewer rounding steps
        a = torch.ceil(total * (i + u) / n_out) - torch.ceil(total * u / n_out)
        a = a.to(torch.int64)
        a[:, -1] = total
        return a
    if sequence == "random":
        twos = total - n_out
        steps = torch.ones(count, n_out, dtype=torch.int64)
        where = torch.rand(count, n_out, generator=generator).argsort(dim=1)[:, :twos]
        steps.scatter_(1, where, 2)
        return torch.cat([torch.zeros(count, 1, dtype=torch.int64), steps.cumsum(1)], dim=1)
    raise unknown_name("sequence", sequence, ("pseudorandom", "random"))


def _pool_axis(x: Tensor, bounds: Tensor, dim: int, overlapping: bool) -> Tensor:
    """Max of ``x`` (N, C, H, W) over the intervals ``bounds`` (N, n_out + 1) along ``dim``."""
    start, end = bounds[:, :-1], bounds[:, 1:] + (1 if overlapping else 0)
    width = int((end - start).max())
    offsets = torch.arange(width, device=x.device)
    # Shorter intervals repeat their last index: a duplicate never changes a max.
    index = torch.minimum(start[..., None].to(x.device) + offsets, end[..., None].to(x.device) - 1)
    n, n_out = index.shape[0], index.shape[1]
    shape = list(x.shape)
    shape[dim] = n_out * width
    view = [n, 1, 1, 1]
    view[dim] = n_out * width
    gathered = x.gather(dim, index.reshape(view).expand(shape))
    split = list(x.shape)
    split[dim : dim + 1] = [n_out, width]
    return gathered.reshape(split).amax(dim + 1)


def fractional_max_pool2d(
    x: Tensor, rows: Tensor, cols: Tensor, *, overlapping: bool = True
) -> Tensor:
    """Max over the regions that the row and column boundary sequences (one per image,
    (N, H_out + 1) and (N, W_out + 1)) cut from ``x`` (N, C, H, W)."""
    if x.dim() != 4:
        raise OptimlabError(f"fractional max pooling needs (N, C, H, W) input; got {x.dim()}-D")
    return _pool_axis(_pool_axis(x, rows, 2, overlapping), cols, 3, overlapping)


class FractionalMaxPool2d(nn.Module):
    """Fractional max pooling with Graham's random or pseudorandom sequences, or torch's
    layer (``sequence="torch"``); see the module docstring.

    The output is ``int(H * output_ratio) x int(W * output_ratio)`` (default ratio
    1/sqrt(2), Graham's choice) unless ``output_size`` is given. ``kernel_size`` is used
    by torch's form only.
    """

    def __init__(
        self,
        output_ratio: float = 1 / math.sqrt(2),
        *,
        output_size: int | tuple[int, int] | None = None,
        sequence: str = "pseudorandom",
        overlapping: bool = True,
        kernel_size: int = 2,
    ) -> None:
        super().__init__()
        if sequence not in SEQUENCES:
            raise unknown_name("sequence", sequence, SEQUENCES)
        if output_size is None and not 0.5 <= output_ratio < 1:
            raise OptimlabError(f"invalid output_ratio: {output_ratio!r}; valid range is [0.5, 1)")
        self.output_ratio = float(output_ratio)
        self.output_size = (
            (output_size, output_size) if isinstance(output_size, int) else (output_size)
        )
        self.sequence, self.overlapping = sequence, overlapping
        self.torch_pool = None
        if sequence == "torch":
            if self.output_size is not None:
                self.torch_pool = nn.FractionalMaxPool2d(kernel_size, output_size=self.output_size)
            else:
                self.torch_pool = nn.FractionalMaxPool2d(
                    kernel_size, output_ratio=self.output_ratio
                )

    def _sizes(self, height: int, width: int) -> tuple[int, int]:
        if self.output_size is not None:
            return self.output_size
        return output_length(height, self.output_ratio), output_length(width, self.output_ratio)

    def forward(self, x: Tensor) -> Tensor:
        if self.torch_pool is not None:
            return self.torch_pool(x)
        if x.dim() != 4:
            raise OptimlabError(f"fractional max pooling needs (N, C, H, W) input; got {x.dim()}-D")
        height, width = x.shape[-2:]
        out_h, out_w = self._sizes(height, width)
        kw = {"sequence": self.sequence, "overlapping": self.overlapping}
        rows = boundaries(height, out_h, x.shape[0], **kw)
        cols = boundaries(width, out_w, x.shape[0], **kw)
        return fractional_max_pool2d(x, rows, cols, overlapping=self.overlapping)

    def extra_repr(self) -> str:
        size = (
            f"output_size={self.output_size}"
            if self.output_size
            else (f"output_ratio={self.output_ratio:.4g}")
        )
        return f"{size}, sequence={self.sequence}, overlapping={self.overlapping}"
