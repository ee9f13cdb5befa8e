"""Self-describing checkpoints, written atomically and loaded with ``weights_only=True``.

A checkpoint is a plain dict of tensors and JSON-like values, never pickled code::

    {"format": "voiceface-checkpoint/1", "method": "dimnet", "config": {...},   # the run's config as a dict
     "step": 1200, "models": {"voice": state_dict, ...}, "optimizers": {"sgd": state_dict, ...},
     "metrics": {...}, "extra": {...}}

``save_checkpoint`` writes to a temporary file in the same folder, flushes and fsyncs it, then renames it over the
target, so a kill at any moment leaves either the old or the new checkpoint, never a torn one.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import InputError

FORMAT = "voiceface-checkpoint/1"


def atomic_write_bytes(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path`` and rename it into place atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | os.PathLike, *, method: str, config: Mapping[str, Any], step: int,
                    models: Mapping[str, torch.nn.Module | Mapping[str, torch.Tensor]],
                    optimizers: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
                    extra: Mapping[str, Any] | None = None) -> None:
    """Write a self-describing checkpoint atomically (see module docstring for the layout)."""
    def state(m):
        if isinstance(m, torch.nn.parallel.DistributedDataParallel):
            m = m.module
        return m.state_dict() if hasattr(m, "state_dict") and not isinstance(m, Mapping) else dict(m)

    payload = {
        "format": FORMAT,
        "method": method,
        "config": dict(config),
        "step": int(step),
        "models": {k: state(m) for k, m in models.items()},
        "optimizers": {k: (o.state_dict() if hasattr(o, "state_dict") else o)
                       for k, o in (optimizers or {}).items()},
        "metrics": dict(metrics or {}),
        "extra": dict(extra or {}),
    }
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` (``weights_only=True``: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise InputError(path, f"not a readable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(path, f"not a voiceface checkpoint (expected format {FORMAT})")
    return ckpt
