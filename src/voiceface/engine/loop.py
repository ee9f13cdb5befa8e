"""The one training loop every method uses.

A method builds its parts (models, optimisers, schedulers, a loss object with named phases) and hands the loop two
functions:

* ``batch_fn(step) -> batch``: the minibatch for a given step, derived only from the run seed and the step number,
  so a resumed run sees exactly the batches an uninterrupted one would;
* ``step_fn(batch, step) -> {name: float}``: runs the loss phases (forward, backward, optimiser steps) and returns
  scalars to log.

The loop resumes from ``RUN/checkpoint.pt`` when present, logs averaged scalars to ``RUN/log.jsonl`` every
``log_every`` steps, and checkpoints atomically every ``checkpoint_every`` steps and at the end, so a kill loses at
most ``checkpoint_every`` steps of work.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from tqdm.auto import tqdm

from . import dist
from .checkpoint import load_checkpoint, save_checkpoint
from .runs import Run

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """Everything the loop checkpoints: modules, optimisers and LR schedulers by name, plus JSON-able extras."""

    models: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    schedulers: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def restore(parts: Parts, ckpt: Mapping[str, Any]) -> int:
    """Load model / optimiser / scheduler states from a checkpoint dict; return its step."""
    for name, module in parts.models.items():
        dist.unwrap(module).load_state_dict(ckpt["models"][name])
    for name, opt in parts.optimizers.items():
        if name in ckpt["optimizers"]:
            opt.load_state_dict(ckpt["optimizers"][name])
    for name, sched in parts.schedulers.items():
        state = ckpt["extra"].get("schedulers", {}).get(name)
        if state is not None:
            sched.load_state_dict(state)
    parts.extra.update({k: v for k, v in ckpt["extra"].items() if k != "schedulers"})
    return int(ckpt["step"])


def checkpoint(run: Run, parts: Parts, *, method: str, config: Mapping[str, Any], step: int,
               metrics: Mapping[str, Any] | None = None) -> None:
    """Write ``RUN/checkpoint.pt`` atomically (rank 0 only)."""
    if not dist.is_main():
        return
    extra = dict(parts.extra)
    extra["schedulers"] = {k: s.state_dict() for k, s in parts.schedulers.items()}
    save_checkpoint(run.checkpoint_path, method=method, config=config, step=step,
                    models={k: dist.unwrap(m) for k, m in parts.models.items()},
                    optimizers=parts.optimizers, metrics=metrics, extra=extra)


def fit(run: Run, parts: Parts, *, method: str, config: Mapping[str, Any],
        batch_fn: Callable[[int], Any], step_fn: Callable[[Any, int], Mapping[str, float]],
        total_steps: int, log_every: int = 50, checkpoint_every: int = 500,
        progress: bool = True, stop_after: int | None = None) -> dict[str, float]:
    """Train ``parts`` from the last checkpoint (or step 0) to ``total_steps``; return the last logged scalars.

    ``stop_after`` ends the loop after that many steps of this call (without a final checkpoint beyond the
    periodic ones): tests use it to simulate a kill.
    """
    start = 0
    if run.checkpoint_path.exists():
        start = restore(parts, load_checkpoint(run.checkpoint_path))
        log.info("resuming %s from step %d", run.path, start)
    for module in parts.models.values():
        module.train()
    sums: dict[str, float] = defaultdict(float)
    count = 0
    last: dict[str, float] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=total_steps, initial=start, desc=method, disable=not (progress and dist.is_main()),
               leave=False, dynamic_ncols=True)
    step = start
    done = 0
    while step < total_steps:
        values = step_fn(batch_fn(step), step)
        for sched in parts.schedulers.values():
            sched.step()
        step += 1
        done += 1
        for k, v in values.items():
            sums[k] += float(v)
        count += 1
        bar.update(1)
        if step % log_every == 0 or step == total_steps:
            last = {k: v / count for k, v in sums.items()}
            elapsed = time.perf_counter() - t0
            if dist.is_main():
                run.log(step, **last, steps_per_s=done / max(elapsed, 1e-9))
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(last.items())[:3]})
            sums.clear()
            count = 0
        if step % checkpoint_every == 0 and step < total_steps:
            checkpoint(run, parts, method=method, config=config, step=step, metrics=last)
        if stop_after is not None and done >= stop_after:
            bar.close()
            return last
    bar.close()
    if done > 0 or not run.checkpoint_path.exists():
        checkpoint(run, parts, method=method, config=config, step=step, metrics=last)
    dist.barrier()
    return last
