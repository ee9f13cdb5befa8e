"""One input pipeline for every method: a method's per-step batch function run in ``DataLoader`` workers.

Every method describes its minibatches by ``batch_fn(step) -> batch`` (CPU tensors / numpy arrays), drawn from a
generator seeded by (seed, step, rank) only. :class:`StepDataset` turns that function into a map-style dataset
indexed by step, and :func:`step_batches` iterates the steps ``start .. total - 1`` in order:

* ``workers == 0``: ``batch_fn`` runs in the training process exactly as before (no ``DataLoader``, no change to
  any global random state), so a run with the default config sees the batches it always saw;
* ``workers > 0``: a ``torch.utils.data.DataLoader`` over the steps (in order, ``batch_size=None``: each item is
  already a whole minibatch) builds ``prefetch`` batches ahead per worker, in pinned memory when training on CUDA.
  Because a batch depends only on its step, the workers produce the same batches as ``workers == 0`` (tested).

Under DDP each rank passes its own rank into ``batch_fn``'s seed, so rank r's shard of step s is the draw of
``default_rng([seed, step, r])``: disjoint random streams, reproducible per (seed, step, rank), with no coordination
between ranks.

Decoding failures: the banks a batch reads from (``sources``: objects with ``drain_failures() -> [(path, msg)]``,
e.g. ``data.loaders.FaceBank`` / ``VoiceBank``) replace a file that fails to decode by another sample and remember
it; after each batch the dataset drains those records and ships them with the batch (they happen in the worker
process), so the training loop can log and count them (``engine.loop.fit``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

import torch


class FailureSource(Protocol):
    def drain_failures(self) -> list[tuple[str, str]]:
        """(path, message) of every read that failed since the last call."""


@dataclass(frozen=True)
class LoaderOptions:
    """How batches are produced: ``workers`` processes (0 = in the training process), ``prefetch`` batches ahead
    per worker, ``pin_memory`` (page-locked host memory for faster host-to-GPU copies; only used with CUDA)."""

    workers: int = 0
    prefetch: int = 2
    pin_memory: bool = True


class StepDataset(torch.utils.data.Dataset):
    """Map-style dataset whose item ``step`` is ``(step, batch_fn(step), failures)``; ``len`` = ``total`` steps.

    ``failures``: the (path, message) records the ``sources`` drained after building the batch."""

    def __init__(self, batch_fn: Callable[[int], Any], total: int, sources: Sequence[FailureSource] = ()):
        self.batch_fn = batch_fn
        self.total = int(total)
        self.sources = tuple(sources)

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, step: int) -> tuple[int, Any, list[tuple[str, str]]]:
        batch = self.batch_fn(int(step))
        failures = [f for s in self.sources for f in s.drain_failures()]
        return int(step), batch, failures


def _identity(x: Any) -> Any:
    return x


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # a worker builds one batch at a time; leave the cores to training


def step_batches(dataset: StepDataset, start: int, options: LoaderOptions = LoaderOptions(),
                 device: torch.device | None = None) -> Iterator[tuple[int, Any, list[tuple[str, str]]]]:
    """Yield ``dataset[s]`` for s = start .. len(dataset) - 1, in order (see module docstring)."""
    if options.workers <= 0:
        for step in range(start, len(dataset)):
            yield dataset[step]
        return
    cuda = device is not None and device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(start, len(dataset)), num_workers=options.workers,
        prefetch_factor=max(1, options.prefetch), collate_fn=_identity, worker_init_fn=_worker_init,
        pin_memory=bool(options.pin_memory and cuda),
        generator=torch.Generator().manual_seed(0))  # workers' base seed: leaves the global torch RNG alone
    yield from loader


def to_device(batch: Any, device: torch.device | None, non_blocking: bool = False) -> Any:
    """``batch`` with every tensor moved to ``device`` (dicts, lists, tuples recursed; other values as they are)."""
    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch
