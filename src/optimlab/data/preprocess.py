"""Input preprocessing fitted on the training split and applied to every split.

A transform is fitted once, on the training inputs alone, and then maps train,
validation and test inputs the same way, so nothing about held-out examples reaches
training. Its ``state_dict`` holds the fitted statistics, so a run can store it and
evaluation or a resumed run rebuilds the same map with :func:`from_state_dict`.

Transforms, by name (``x`` is one example flattened to D features, ``mu`` the training
mean, ``Sigma = (1/N) sum_i (x_i - mu)(x_i - mu)^T = U diag(lambda) U^T``):

- ``none``: ``x``.
- ``standardize``: ``(x - mu) / sigma`` per feature (scikit-learn's ``StandardScaler``:
  the population std, a constant feature keeps std 1).
- ``mean_image``: ``x - mu``: the training set's mean image (one value per pixel and
  channel) subtracted, nothing scaled (AlexNet's preprocessing, as the lectures cite it).
- ``channel_mean``: ``(x - mu_c) / sigma_c`` with one mean and std per image channel,
  pooled over examples and pixels (the per-channel normalization the lectures cite
  for VGGNet; inputs (N, C, ...)).
- ``pca_whiten``: ``diag(lambda + eps)^(-1/2) U^T (x - mu)``: rotate onto the principal
  axes and scale each to unit variance.
- ``zca_whiten``: ``U diag(lambda + eps)^(-1/2) U^T (x - mu) = (Sigma + eps I)^(-1/2)
  (x - mu)``: the symmetric whitening (Bell & Sejnowski 1997). Among all whitening
  matrices ``W = Q Sigma^(-1/2)`` (Q orthogonal) it is the one closest to the identity,
  both as ``||W - I||_F`` and as the mean squared change ``E||W (x - mu) - (x - mu)||^2``
  (Kessy, Lewin & Strimmer 2018), so whitened images still look like images.

With ``eps = 0`` the whitened training data have covariance exactly ``I``; ``eps > 0``
gives ``diag(lambda / (lambda + eps))`` instead, damping directions whose variance is
below ``eps`` (mostly noise) rather than blowing them up. Whitening keeps the input
shape: the D outputs are laid back out as the input was. Statistics are computed in
float64 and the output keeps the input's dtype.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor

from optimlab.data.splits import Split, Splits
from optimlab.errors import OptimlabError, check_range, unknown_name

# Below this a std counts as zero: a constant feature is centred but not scaled.
_TINY = 1e-12


def _check_inputs(x: Tensor, what: str = "x") -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise OptimlabError(
            f"invalid {what}: need a float tensor (N, ...) with examples first; "
            f"got {getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}"
        )
    if x.shape[0] < 2:
        raise OptimlabError(f"invalid {what}: fitting needs at least 2 examples, got {x.shape[0]}")


class Transform:
    """A preprocessing map fitted on training inputs: ``fit(x)``, then ``t(x)``."""

    name: ClassVar[str] = ""
    #: names of the fitted tensors in the state dict
    tensors: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.shape: tuple[int, ...] | None = None  # per-example shape seen by fit

    @property
    def fitted(self) -> bool:
        return self.shape is not None

    def fit(self, x: Tensor) -> Transform:
        """Fit on training inputs ``x`` (N, ...); returns self."""
        _check_inputs(x)
        self.shape = tuple(x.shape[1:])
        self._fit(x.detach().to(torch.float64))
        return self

    def __call__(self, x: Tensor) -> Tensor:
        """Map inputs (N, ...) of the fitted per-example shape; same dtype and device."""
        if not self.fitted:
            raise OptimlabError(f"the {self.name} transform is not fitted; call fit(x_train)")
        if tuple(x.shape[1:]) != self.shape:
            raise OptimlabError(
                f"invalid input shape {tuple(x.shape)} for the {self.name} transform "
                f"fitted on examples of shape {self.shape}"
            )
        return self._apply(x)

    def _fit(self, x: Tensor) -> None:
        pass

    def _apply(self, x: Tensor) -> Tensor:
        return x

    def _params(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The name, settings and fitted statistics (CPU tensors): enough to rebuild."""
        if not self.fitted:
            raise OptimlabError(f"the {self.name} transform is not fitted; nothing to save")
        state: dict[str, Any] = {"name": self.name, "shape": list(self.shape or ())}
        state.update(self._params())
        for key in self.tensors:
            state[key] = getattr(self, key).detach().cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (for a transform of the same name)."""
        if state.get("name") != self.name:
            raise OptimlabError(
                f"state of transform {state.get('name')!r} cannot be loaded into {self.name!r}"
            )
        missing = [k for k in ("shape", *self.tensors, *self._params()) if k not in state]
        if missing:
            raise OptimlabError(f"{self.name} state lacks {', '.join(missing)}")
        for key in self._params():
            setattr(self, key, state[key])
        for key in self.tensors:
            setattr(self, key, torch.as_tensor(state[key], dtype=torch.float64).clone())
        self.shape = tuple(int(s) for s in state["shape"])

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"


class Identity(Transform):
    """``none``: leaves the inputs as they are."""

    name = "none"


class _Affine(Transform):
    """``(x - mean) / std`` with statistics broadcast against one example."""

    tensors = ("mean", "std")

    def _apply(self, x: Tensor) -> Tensor:
        mean = self.mean.to(x.device, x.dtype)
        std = self.std.to(x.device, x.dtype)
        return (x - mean) / std


def _std_or_one(var: Tensor) -> Tensor:
    std = var.clamp(min=0.0).sqrt()
    return torch.where(std > _TINY, std, torch.ones_like(std))


class Standardize(_Affine):
    """``standardize``: zero mean and unit (population) variance per feature."""

    name = "standardize"

    def _fit(self, x: Tensor) -> None:
        self.mean = x.mean(dim=0)
        self.std = _std_or_one(((x - self.mean) ** 2).mean(dim=0))


class MeanImage(Transform):
    """``mean_image``: subtract the training set's per-pixel (and per-channel) mean."""

    name = "mean_image"
    tensors = ("mean",)

    def _fit(self, x: Tensor) -> None:
        self.mean = x.mean(dim=0)

    def _apply(self, x: Tensor) -> Tensor:
        return x - self.mean.to(x.device, x.dtype)


class ChannelMean(_Affine):
    """``channel_mean``: one mean and std per channel (dim 1), over examples and pixels."""

    name = "channel_mean"

    def _fit(self, x: Tensor) -> None:
        if x.ndim < 3:
            raise OptimlabError(
                f"invalid input for channel_mean: need images (N, C, H, W) or (N, C, L); "
                f"got shape {tuple(x.shape)}; use standardize for flat features"
            )
        dims = [0, *range(2, x.ndim)]
        view = [x.shape[1]] + [1] * (x.ndim - 2)
        mean = x.mean(dim=dims)
        var = ((x - mean.view(view)) ** 2).mean(dim=dims)
        self.mean, self.std = mean.view(view), _std_or_one(var).view(view)


class _Whiten(Transform):
    """``(x - mean) @ matrix.T`` on flattened examples; ``matrix`` is the W above."""

    tensors = ("mean", "matrix")

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        check_range("eps", eps, 0.0)
        self.eps = float(eps)

    def _params(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def _fit(self, x: Tensor) -> None:
        flat = x.reshape(x.shape[0], -1)
        self.mean = flat.mean(dim=0)
        centred = flat - self.mean
        cov = centred.T @ centred / flat.shape[0]
        lam, u = torch.linalg.eigh(cov)
        lam = lam.clamp(min=0.0)  # round-off makes tiny eigenvalues slightly negative
        if self.eps == 0.0 and float(lam[0]) <= _TINY * max(float(lam[-1]), 1.0):
            raise OptimlabError(
                f"invalid eps 0 for {self.name}: the training covariance is singular "
                f"(smallest eigenvalue {float(lam[0]):.3g}); give eps > 0"
            )
        self.eigenvalues = lam
        self.matrix = self._matrix(u, (lam + self.eps).rsqrt())

    def _matrix(self, u: Tensor, scale: Tensor) -> Tensor:
        raise NotImplementedError

    def _apply(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        out = (flat - self.mean.to(x.device)) @ self.matrix.to(x.device).T
        return out.to(x.dtype).reshape(x.shape)


class PCAWhiten(_Whiten):
    """``pca_whiten``: ``W = diag(lambda + eps)^(-1/2) U^T``."""

    name = "pca_whiten"

    def _matrix(self, u: Tensor, scale: Tensor) -> Tensor:
        # eigh sorts ascending; put the largest-variance component first, as PCA does.
        return (scale[:, None] * u.T).flip(0)


class ZCAWhiten(_Whiten):
    """``zca_whiten``: ``W = U diag(lambda + eps)^(-1/2) U^T`` (symmetric)."""

    name = "zca_whiten"

    def _matrix(self, u: Tensor, scale: Tensor) -> Tensor:
        w = (u * scale) @ u.T
        return (w + w.T) / 2  # exactly symmetric despite round-off


TRANSFORMS: dict[str, type[Transform]] = {
    t.name: t for t in (Identity, Standardize, MeanImage, ChannelMean, PCAWhiten, ZCAWhiten)
}


def available() -> list[str]:
    """The preprocessing names."""
    return list(TRANSFORMS)


def create(name: str, *, eps: float = 1e-5) -> Transform:
    """An unfitted transform by name; ``eps`` is used by the whitening transforms only."""
    if name not in TRANSFORMS:
        raise unknown_name("preprocessing", name, TRANSFORMS)
    cls = TRANSFORMS[name]
    if issubclass(cls, _Whiten):
        return cls(eps=eps)
    return cls()


def from_state_dict(state: dict[str, Any]) -> Transform:
    """Rebuild a fitted transform from its ``state_dict`` (e.g. read from a checkpoint)."""
    if not isinstance(state, dict) or "name" not in state:
        raise OptimlabError("invalid transform state: expected a dict with a 'name'")
    transform = create(state["name"], eps=float(state.get("eps", 1e-5)))
    transform.load_state_dict(state)
    return transform


def apply_to_splits(splits: Splits, name: str, *, eps: float = 1e-5) -> tuple[Splits, Transform]:
    """Fit ``name`` on ``splits.train.x`` and apply it to train, validation and test.

    Returns the new splits (targets and metadata unchanged) and the fitted transform.
    For the raw-input pipeline load the data with ``load(..., normalize=False)``; on
    data ``load`` already standardized, whitening then acts on the correlation matrix.
    """
    transform = create(name, eps=eps).fit(splits.train.x)
    return apply_fitted(splits, transform), transform


def apply_fitted(splits: Splits, transform: Transform) -> Splits:
    """Apply an already fitted transform (e.g. one stored with a run) to every split."""

    def mapped(split: Split) -> Split:
        if len(split) == 0:
            return split
        return Split(transform(split.x), split.y)

    return dataclasses.replace(
        splits, train=mapped(splits.train), val=mapped(splits.val), test=mapped(splits.test)
    )
