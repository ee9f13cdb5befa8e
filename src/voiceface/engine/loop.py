"""The one training loop every method uses.

A method builds its parts (models, optimisers, schedulers, a loss object with named phases) and hands the loop two
functions:

* ``batch_fn(step) -> batch``: the minibatch for a given step, derived only from the run seed and the step number,
  so a resumed run sees exactly the batches an uninterrupted one would;
* ``step_fn(batch, step) -> {name: float}``: runs the loss phases (forward, backward, optimiser steps) and returns
  scalars to log.

Batches come through ``data.pipeline``: in this process (``loader.workers == 0``, the default) or from
``DataLoader`` workers with prefetch and pinned memory; with ``device`` set, the loop moves each batch there (so
``batch_fn`` returns CPU tensors). Reads that failed while building a batch (``sources``' ``drain_failures``) are
logged as ``bad_input`` events and counted in ``bad_inputs`` of the following log rows, never fatal; so are the
files the banks left out while they were built (drained once before the first batch).

The loop resumes from ``RUN/checkpoint.pt`` when present, logs averaged scalars to ``RUN/log.jsonl`` every
``log_every`` steps, and checkpoints atomically every ``checkpoint_every`` steps and at the end, so a kill loses at
most ``checkpoint_every`` steps of work.
"""
from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from . import dist
from ..data.pipeline import FailureSource, LoaderOptions, StepDataset, step_batches, to_device
from ..errors import ConfigError
from .checkpoint import load_checkpoint, save_checkpoint
from .runs import Run

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """Everything the loop checkpoints: modules, optimisers, LR schedulers and other stateful helpers (anything with
    ``state_dict`` / ``load_state_dict``, e.g. a loss scaler: ``Precision.states``) by name, plus JSON-able extras."""

    models: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    schedulers: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def restore(parts: Parts, ckpt: Mapping[str, Any]) -> int:
    """Load model / optimiser / scheduler states from a checkpoint dict; return its step.

    A checkpoint that does not fit the parts (another architecture: a model missing or tensors of other shapes)
    raises ``ConfigError`` naming the model, never a traceback."""
    for name, module in parts.models.items():
        if name not in ckpt["models"]:
            raise ConfigError(f"the checkpoint has no model '{name}' (it holds {', '.join(ckpt['models'])}): the "
                              "config changed the architecture; train into a new run folder")
        try:
            dist.unwrap(module).load_state_dict(ckpt["models"][name])
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            detail = first[1].strip() if len(first) > 1 else first[0] if first else ""
            raise ConfigError(f"the checkpoint's '{name}' does not fit the configured architecture ({detail}); "
                              "train into a new run folder") from None
    for name, opt in parts.optimizers.items():
        if name in ckpt["optimizers"]:
            try:
                opt.load_state_dict(ckpt["optimizers"][name])
            except ValueError as e:
                raise ConfigError(f"the checkpoint's optimiser '{name}' does not fit ({e}); train into a new run "
                                  "folder") from None
    for name, sched in parts.schedulers.items():
        state = ckpt["extra"].get("schedulers", {}).get(name)
        if state is not None:
            sched.load_state_dict(state)
    # the data's path is the run's (``checkpoint`` writes it): Run.create checked it holds the same data, perhaps moved
    parts.extra.update({k: v for k, v in ckpt["extra"].items() if k not in ("schedulers", "data")})
    return int(ckpt["step"])


def runtime(parts: Parts) -> dict[str, Any]:
    """What the run trains on: ``world_size`` (DDP processes) and ``device`` (of the first model parameter)."""
    params = (p for m in parts.models.values() for p in m.parameters())
    first = next(params, None)
    return {"world_size": dist.world_size(), "device": str(first.device) if first is not None else "cpu"}


def checkpoint(run: Run, parts: Parts, *, method: str, config: Mapping[str, Any], step: int,
               metrics: Mapping[str, Any] | None = None) -> None:
    """Write ``RUN/checkpoint.pt`` atomically (rank 0 only). Its extras carry the run's training data path
    (``Run.data``, when recorded), so a checkpoint alone says what it was trained on."""
    if not dist.is_main():
        return
    extra = dict(parts.extra)
    extra["schedulers"] = {k: s.state_dict() for k, s in parts.schedulers.items()}
    if run.data is not None:
        extra["data"] = run.data
    save_checkpoint(run.checkpoint_path, method=method, config=config, step=step,
                    models={k: dist.unwrap(m) for k, m in parts.models.items()},
                    optimizers=parts.optimizers, metrics=metrics, extra=extra)


def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> tqdm:
    """The training bar: ``desc`` (method and run folder), step / total, rate, ETA and the last logged losses.

    On stderr; ``enabled=False`` hides it, and otherwise it still hides itself when stderr is not a terminal
    (``disable=None``), so CI logs and pipes get no carriage-return spam; at most one redraw per second."""
    return tqdm(total=total, initial=initial, desc=desc, disable=None if enabled else True, leave=True,
                dynamic_ncols=True, mininterval=1.0, unit="step")


def announce(message: str, enabled: bool = True) -> None:
    """One line on stderr naming a stage that has no bar of its own (an evaluation, a figure); written through
    ``tqdm.write`` so an open bar is not torn. Silent when ``enabled`` is false and on DDP ranks other than 0."""
    if enabled and dist.is_main():
        tqdm.write(message, file=sys.stderr)


def loss_postfix(values: Mapping[str, float], limit: int = 4) -> dict[str, str]:
    """The bar's postfix: up to ``limit`` logged scalars, losses first (names containing "loss"), 3 digits."""
    keys = sorted(values, key=lambda k: ("loss" not in k, k == "lr"))[:limit]
    return {k.replace("loss/", ""): f"{values[k]:.3g}" for k in keys}


def fit(run: Run, parts: Parts, *, method: str, config: Mapping[str, Any],
        batch_fn: Callable[[int], Any], step_fn: Callable[[Any, int], Mapping[str, float]],
        total_steps: int, log_every: int = 50, checkpoint_every: int = 500,
        progress: bool = True, stop_after: int | None = None, precision: str = "fp32",
        loader: LoaderOptions = LoaderOptions(), device: torch.device | None = None,
        sources: Sequence[FailureSource] = ()) -> dict[str, float]:
    """Train ``parts`` from the last checkpoint (or step 0) to ``total_steps``; return the last logged scalars.

    ``stop_after`` ends the loop after that many steps of this call (without a final checkpoint beyond the
    periodic ones): tests use it to simulate a kill. Each start or resume logs a ``start`` event with
    ``world_size``, ``device`` (of the first parameter), ``precision`` (what the method trains in) and
    ``workers`` (input processes). ``loader``, ``device``, ``sources``: see the module docstring.
    """
    start = 0
    if run.checkpoint_path.exists():
        start = restore(parts, load_checkpoint(run.checkpoint_path))
        log.info("resuming %s from step %d", run.path, start)
    if dist.is_main():
        run.log(start, event="start", resumed=start > 0, precision=precision, workers=loader.workers,
                **runtime(parts))
    for module in parts.models.values():
        module.train()
    sums: dict[str, float] = defaultdict(float)
    count = 0
    last: dict[str, float] = {}
    bad = 0
    t0 = time.perf_counter()
    bar = progress_bar(total_steps, start, f"{method} {run.path.name}", progress and dist.is_main())
    step = start
    done = 0
    non_blocking = loader.workers > 0 and device is not None and device.type == "cuda"
    # files left out while the banks were built: logged now, in this process (before any worker copies the banks)
    bad += report_failures(run, step, [f for s in sources for f in s.drain_failures()])
    batches = step_batches(StepDataset(batch_fn, total_steps, sources), start, loader, device)
    for _, batch, failures in batches:
        bad += report_failures(run, step, failures)
        values = step_fn(to_device(batch, device, non_blocking), step)
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
                run.log(step, **last, steps_per_s=done / max(elapsed, 1e-9), **({"bad_inputs": bad} if bad else {}))
            bar.set_postfix(loss_postfix(last), refresh=False)
            sums.clear()
            count = 0
        if step % checkpoint_every == 0 and step < total_steps:
            checkpoint(run, parts, method=method, config=config, step=step, metrics=last)
        if stop_after is not None and done >= stop_after:
            batches.close()
            bar.close()
            return last
    bar.close()
    if done > 0 or not run.checkpoint_path.exists():
        checkpoint(run, parts, method=method, config=config, step=step, metrics=last)
    dist.barrier()
    return last


def report_failures(run: Run, step: int, failures: Sequence[tuple[str, str]]) -> int:
    """Log each failed read as a ``bad_input`` event (rank 0) and a warning; return how many there were."""
    for path, msg in failures:
        log.warning("replaced an unreadable input at step %d: %s", step, msg)
        if dist.is_main():
            run.log(step, event="bad_input", path=path, error=msg)
    return len(failures)
