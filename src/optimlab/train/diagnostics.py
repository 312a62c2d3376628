"""Gradient-flow diagnostics: a callback that watches every layer on sampled steps.

``GradientFlow(every=k)`` records, on every k-th optimizer step (steps counted from 1):

- per weighted layer (Linear/Conv, in registration order): the gradient norm
  ``||dL/dW||`` (after accumulation, before the step), and the update-to-weight ratio
  ``||W_after - W_before|| / ||W_before||`` of that step (Karpathy's rule of thumb: near
  1e-3 is healthy);
- per activation module (ReLU, sigmoid, tanh, ...): the mean and standard deviation of
  its output, the fraction of dead units (relu family: units, i.e. features or conv
  channels, that output <= 0 for every example of the batch) and the fraction of
  saturated outputs (sigmoid, tanh: within 1% of the output range of a bound, where the
  derivative is below ~0.04 of its peak).

Hooks are attached only for the sampled step (armed after step s-1, removed after step
s), so unsampled steps run untouched; a sampled step reads its numbers back once. The
first-to-last gradient-norm ratio ``||dL/dW_1|| / ||dL/dW_L||`` is the vanishing-gradient
signal: orders of magnitude below 1 when the early layers barely learn.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError
from optimlab.io import atomic_write_text
from optimlab.nn.activations import record_of
from optimlab.nn.init import WEIGHTED
from optimlab.train.callback import Callback

# Fraction of an activation's output range, at either end, that counts as saturated.
SATURATION_MARGIN = 0.01


def _weight_of(layer: nn.Module) -> nn.Parameter:
    """The trainable weight tensor of a layer (the direction ``v`` under weight norm)."""
    for name, p in layer.named_parameters():
        if "weight" in name and p.dim() >= 2:
            return p
    raise OptimlabError(f"layer {type(layer).__name__} has no weight matrix")


def _finite_or_null(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, so that it is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    return value


class GradientFlow(Callback):
    """Per-layer gradient norms, update ratios and activation statistics every ``every`` steps.

    ``records`` holds one dict per sampled step with lists aligned to ``layer_names`` and
    ``activation_names``. With ``out_dir``, the records (``gradient_flow.json``), a layer x
    step heatmap of gradient norms and per-layer activation histograms are written at
    the end of training. ``sample_size`` values per layer are kept from the last sampled
    step for the histograms. ``sample_first`` also samples step 1 (the network as
    initialized).
    """

    def __init__(
        self,
        every: int = 50,
        out_dir: str | Path | None = None,
        sample_size: int = 4096,
        sample_first: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise OptimlabError(f"invalid every: {every!r}; valid values are integers >= 1")
        self.every = every
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.sample_size = sample_size
        self.sample_first = sample_first
        self.records: list[dict[str, Any]] = []
        self.layer_names: list[str] = []
        self.activation_names: list[str] = []
        self.samples: dict[str, Tensor] = {}
        self._layers: list[nn.Module] = []
        self._acts: list[nn.Module] = []
        self._handles: list[Any] = []
        self._grads: dict[int, Tensor] = {}
        self._stats: dict[int, tuple[Tensor, ...]] = {}
        self._before: list[Tensor] = []
        self._armed = False

    # ------------------------------------------------------------------ hooks

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        model = self.trainer.model
        self._layers, self.layer_names = [], []
        self._acts, self.activation_names = [], []
        for name, module in model.named_modules():
            if isinstance(module, WEIGHTED):
                self._layers.append(module)
                self.layer_names.append(name)
            elif record_of(module) is not None and record_of(module).name != "identity":
                self._acts.append(module)
                self.activation_names.append(name)
        if not self._layers:
            raise OptimlabError("GradientFlow needs a model with Linear or Conv layers")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # Here rather than in on_train_begin: a resumed run knows its step only now.
        if not self._armed and self._due(self.trainer.step + 1):
            self._arm()

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if self._armed:
            self._record(step)
            self._disarm()
        if self._due(step + 1):
            self._arm()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._disarm()
        if self.out_dir is not None and self.records:
            self.write(self.out_dir)

    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = list(state["records"])

    # --------------------------------------------------------------- sampling

    def _due(self, step: int) -> bool:
        return step % self.every == 0 or (self.sample_first and step == 1)

    def _arm(self) -> None:
        self._grads.clear()
        self._stats.clear()
        self._before = [_weight_of(m).detach().clone() for m in self._layers]
        for k, layer in enumerate(self._layers):
            w = _weight_of(layer)
            # Fires once the gradient is fully accumulated into .grad (per micro-batch
            # under accumulation; the last call sees the step's gradient).
            self._handles.append(
                w.register_post_accumulate_grad_hook(
                    lambda p, k=k: self._grads.__setitem__(k, p.grad.detach().double().norm())
                )
            )
        for k, act in enumerate(self._acts):
            self._handles.append(act.register_forward_hook(self._activation_hook(k, act)))
        self._armed = True

    def _disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._armed = False

    def _activation_hook(self, k: int, module: nn.Module) -> Any:
        record = record_of(module)

        def hook(mod: nn.Module, inputs: Any, out: Tensor) -> None:
            if not mod.training:  # evaluation passes are not training signal
                return
            y = out.detach()
            dead = torch.zeros((), device=y.device)
            saturated = torch.zeros((), device=y.device)
            if record is not None and record.dies and y.dim() >= 2:
                units = y.transpose(0, 1).reshape(y.shape[1], -1)
                dead = 1.0 - (units > 0).any(dim=1).float().mean()
            if record is not None and record.bounds is not None:
                lo, hi = record.bounds
                margin = SATURATION_MARGIN * (hi - lo)
                saturated = ((y <= lo + margin) | (y >= hi - margin)).float().mean()
            self._stats[k] = (y.mean(), y.std(), dead, saturated)
            self.samples[self.activation_names[k]] = y.flatten()[: self.sample_size].cpu()

        return hook

    def _record(self, step: int) -> None:
        names = self.layer_names
        grads = [self._grads.get(k) for k in range(len(names))]
        ratios = []
        with torch.no_grad():
            for layer, before in zip(self._layers, self._before, strict=True):
                w = _weight_of(layer).detach()
                ratios.append((w - before).norm() / before.norm().clamp_min(1e-30))
        stats = [self._stats.get(k) for k in range(len(self._acts))]
        # one read-back for everything this step measured
        flat = [g for g in grads if g is not None] + ratios + [v for s in stats if s for v in s]
        values = iter(torch.stack([v.double() for v in flat]).cpu().tolist() if flat else [])
        grad_norms = [next(values) if g is not None else math.nan for g in grads]
        update_ratios = [next(values) for _ in ratios]
        act = [tuple(next(values) for _ in range(4)) if s else (math.nan,) * 4 for s in stats]
        self.records.append(
            {
                "step": step,
                "grad_norm": grad_norms,
                "update_ratio": update_ratios,
                "act_mean": [a[0] for a in act],
                "act_std": [a[1] for a in act],
                "dead_fraction": [a[2] for a in act],
                "saturated_fraction": [a[3] for a in act],
            }
        )

    # --------------------------------------------------------------- results

    def gradient_ratio(self, index: int = 0) -> float:
        """``||dL/dW_first|| / ||dL/dW_last||`` at the ``index``-th sampled step."""
        if not self.records:
            raise OptimlabError("no sampled step yet: train at least `every` steps")
        g = self.records[index]["grad_norm"]
        if not (math.isfinite(g[0]) and math.isfinite(g[-1])):
            return math.nan  # a diverged step
        return g[0] / g[-1] if g[-1] > 0 else math.inf

    def grad_norm_matrix(self) -> tuple[list[str], list[int], list[list[float]]]:
        """(layer names, sampled steps, gradient norms as rows per layer)."""
        steps = [r["step"] for r in self.records]
        rows = [[r["grad_norm"][k] for r in self.records] for k in range(len(self.layer_names))]
        return self.layer_names, steps, rows

    def summary(self) -> dict[str, Any]:
        """The records with the layer names, as plain JSON values."""
        return {
            "every": self.every,
            "layers": self.layer_names,
            "activations": self.activation_names,
            "records": self.records,
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``gradient_flow.json``, ``gradient_flow_heatmap.png`` and
        ``activation_histograms.png`` (when activations were sampled) atomically."""
        from optimlab.viz import gradient_flow as plots

        out = Path(out_dir)
        text = json.dumps(_finite_or_null(self.summary()), allow_nan=False)
        paths = [atomic_write_text(out / "gradient_flow.json", text)]
        names, steps, rows = self.grad_norm_matrix()
        paths.append(plots.heatmap(names, steps, rows, out / "gradient_flow_heatmap.png"))
        if self.samples:
            paths.append(plots.histograms(self.samples, out / "activation_histograms.png"))
        return paths
