"""Mixed precision for every method: one config field ``precision`` (``fp32`` | ``bf16`` | ``fp16``).

``Precision.resolve(name, device)`` validates the choice for the training device and returns the helper a step
function uses:

* ``autocast()``: the forward passes (and losses) run under ``torch.autocast`` in bfloat16 / float16 (a no-op
  context in fp32); parameters, gradients and optimiser states stay float32;
* ``backward(loss)`` / ``step(optimizer)`` / ``update()``: with ``fp16`` on CUDA a ``torch.amp.GradScaler``
  scales the loss (float16 gradients underflow otherwise), unscales before the optimiser step and skips steps with
  inf/NaN gradients; ``unscale(optimizer)`` before gradient clipping. Without a scaler they are plain
  ``loss.backward()`` / ``optimizer.step()``;
* ``states(name)``: ``{name: scaler}`` (empty without one) for a ``Parts``' stateful helpers, so checkpoints keep
  the loss scale and a resumed fp16 run continues from it.

``bf16`` works on CPU and CUDA (float32's exponent range: no scaling needed). ``fp16`` is refused off CUDA with a
one-line ``ConfigError`` (no loss scaler there, so small gradients would underflow to zero).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager

import torch

from ..errors import ConfigError

CHOICES = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    """What ``name`` means on ``device`` (see module docstring); build with ``Precision.resolve``."""

    name: str
    device: torch.device
    scaler: torch.amp.GradScaler | None = None

    @classmethod
    def resolve(cls, name: str, device: torch.device | str) -> "Precision":
        """Validate ``name`` for ``device``; raises ``ConfigError`` (one line) for an unknown or unsafe choice."""
        device = torch.device(device)
        if name not in CHOICES:
            raise ConfigError(f"config key 'precision': {name!r} is not one of {', '.join(CHOICES)}")
        if name == "fp16" and device.type != "cuda":
            raise ConfigError(f"precision=fp16 needs a CUDA device (training on {device.type}); use precision=bf16 "
                              "or fp32")
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("precision=bf16: this CUDA device has no bfloat16 support; use precision=fp16")
        scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None
        return cls(name, device, scaler)

    @property
    def enabled(self) -> bool:
        return self.name != "fp32"

    def autocast(self) -> ContextManager:
        """Context for forward passes: autocast to the chosen dtype (nothing in fp32)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.name])

    def autocast_modules(self, *modules: torch.nn.Module) -> None:
        """Run each module's forward under ``autocast()`` with floating outputs cast back to float32, for methods
        whose other computations must stay in float32 (CEST's geometry and differentiable renderer: screen
        coordinates in bfloat16 would be off by a pixel). No-op in fp32; state dicts are unchanged."""
        if self.enabled:
            for m in modules:
                m.forward = _AutocastForward(m.forward, self)

    def states(self, name: str = "grad_scaler") -> dict[str, torch.amp.GradScaler]:
        """``{name: the loss scaler}`` to add to ``Parts.schedulers`` (checkpointed and restored with the run);
        ``{}`` without a scaler."""
        return {name: self.scaler} if self.scaler is not None else {}

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring ``optimizer``'s gradients back to their true scale (before clipping them); no-op without a
        scaler."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        """Once per training step, after the last ``step``: adapt the loss scale."""
        if self.scaler is not None:
            self.scaler.update()


class _AutocastForward:
    """A module's bound ``forward`` run under ``precision.autocast()``, floating tensor outputs cast to float32."""

    def __init__(self, forward, precision: Precision):
        self.forward, self.precision = forward, precision

    def __call__(self, *args, **kwargs):
        with self.precision.autocast():
            out = self.forward(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out
