"""Device choice and PyTorch DDP set-up for runs started with ``torchrun``.

Single process (plain ``voiceface train``): no process group, ``world_size() == 1``. Under ``torchrun
--nproc_per_node=K -m voiceface.cli train ...`` the environment carries RANK / WORLD_SIZE / LOCAL_RANK;
``init()`` then starts a process group (NCCL on CUDA, Gloo on CPU) and ``wrap`` returns a
``DistributedDataParallel`` module. Only rank 0 writes logs and checkpoints.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as torch_dist


def default_device(prefer: str = "auto") -> torch.device:
    """``auto``: this process's CUDA device when available (LOCAL_RANK under torchrun), else CPU."""
    if prefer != "auto":
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init(device: torch.device) -> None:
    """Start the process group when launched by torchrun (idempotent)."""
    if launched_by_torchrun() and not torch_dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group(backend=backend)


def world_size() -> int:
    return torch_dist.get_world_size() if torch_dist.is_initialized() else 1


def rank() -> int:
    return torch_dist.get_rank() if torch_dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP-wrap ``module`` when a process group is running, else return it unchanged."""
    module = module.to(device)
    if not torch_dist.is_initialized() or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def sync_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (e.g. BatchNorm running statistics, which each rank updates from its own
    batches) to every rank, as DDP does before each forward: evaluating a DDP-trained module mid-training then gives
    the same result on every rank. No-op without a process group."""
    if torch_dist.is_initialized():
        for buf in unwrap(module).buffers():
            torch_dist.broadcast(buf, src)


def barrier() -> None:
    if torch_dist.is_initialized():
        torch_dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the other ranks (which wait at a barrier until rank 0 is done).

    For shared caches (voice features, aligned crops): rank 0 fills the cache, the others then find it full and only
    read it. Without a process group the block simply runs."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()
