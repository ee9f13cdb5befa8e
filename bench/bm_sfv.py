"""Benchmark: SfV repeats trained per minute, batched (one stacked AMNet, grouped convolutions) vs sequential (one
AMNet per repeat, stepped in a Python loop), measured in the same run on the same device.

    .venv/bin/python bench/bm_sfv.py [--repeats 10] [--steps 6] [--batch 16] [--frames 250] [--device cpu|cuda]
                                     [--channels 64 96 144 216] [--threads 1]

Both variants do identical work per repeat (same minibatch shape, Eq. 5.2 loss, per-repeat gradient clipping, SGD
momentum 0.9 / weight decay 5e-4); the ratio of repeats-per-minute is printed. To say why batching cannot help on a
CPU, the run also prints each variant's achieved GFLOP/s (the convolutions' multiply-adds, forward + both backward
products) beside the device's matrix-multiply rate measured in the same run (square float32 matmuls, same
threads): when the sequential variant already runs its convolutions near that rate, the time is arithmetic, not
per-call overhead, and stacking the repeats cannot remove it (on a GPU, where one small network leaves most of the
device idle, it can).
"""
from __future__ import annotations

import argparse
import time

import torch

from voiceface.methods.sfv.loss import SfVLoss
from voiceface.methods.sfv.model import AMNet


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(losses, inputs, steps: int, device: torch.device) -> float:
    for loss, (x, t) in zip(losses, inputs):          # warm-up step
        loss.estimator_step(x, t)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        for loss, (x, t) in zip(losses, inputs):
            loss.estimator_step(x, t)
    _sync(device)
    return time.perf_counter() - t0


def conv_flops(net: AMNet, batch: int, frames: int) -> float:
    """FLOPs of one training step's convolutions (forward + input and weight gradients = 3 x 2 x MACs) of a stacked
    AMNet on (batch, M, n_mels, frames) inputs (the heads and BatchNorm are a negligible remainder)."""
    total, t = 0.0, frames
    for stage in net.stages:
        for conv in (stage.down.conv, stage.res1.conv, stage.res2.conv):
            t = (t + 2 - 3) // conv.stride[0] + 1
            total += 3 * 2 * batch * t * conv.out_channels * (conv.in_channels // conv.groups) * conv.kernel_size[0]
    return total


def matmul_gflops(device: torch.device, n: int = 1024, reps: int = 10) -> float:
    """Achieved GFLOP/s of n x n float32 matrix products on ``device`` (the practical peak for dense work)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--ams", type=int, default=94)
    ap.add_argument("--channels", type=int, nargs=4, default=(64, 96, 144, 216))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    g = torch.Generator().manual_seed(0)
    r = a.repeats

    def make(n):
        net = AMNet(n, a.ams, 64, a.channels).to(dev)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        return SfVLoss(net, opt, grad_clip=5.0)

    peak0 = matmul_gflops(dev)
    flops = conv_flops(make(r).model, a.batch, a.frames)                # all r repeats, one step
    x = torch.randn(a.batch, r, 64, a.frames, generator=g).to(dev)
    t = torch.randn(a.batch, r, a.ams, generator=g).to(dev)
    batched = _time_steps([make(r)], [(x, t)], a.steps, dev)
    seq = _time_steps([make(1) for _ in range(r)], [(x[:, i:i + 1], t[:, i:i + 1]) for i in range(r)], a.steps, dev)
    # "repeats trained per minute": repeat-steps per minute divided by the steps one repeat needs (here a.steps)
    per_min_b = r * a.steps / batched * 60 / a.steps
    per_min_s = r * a.steps / seq * 60 / a.steps
    print(f"device={dev} repeats={r} batch={a.batch} frames={a.frames} channels={tuple(a.channels)} "
          f"steps={a.steps} threads={a.threads}")
    print(f"batched:    {batched / a.steps * 1000:8.1f} ms/step for all {r} repeats -> "
          f"{per_min_b:8.1f} repeats/min (of {a.steps}-step trainings)")
    print(f"sequential: {seq / a.steps * 1000:8.1f} ms/step for all {r} repeats -> "
          f"{per_min_s:8.1f} repeats/min")
    peak = max(peak0, matmul_gflops(dev))
    gb, gs = flops * a.steps / batched / 1e9, flops * a.steps / seq / 1e9
    print(f"ratio batched/sequential: {seq / batched:.2f}x")
    print(f"convolutions: {flops / 1e9:.2f} GFLOP per step (all repeats); achieved batched {gb:.1f} GFLOP/s, "
          f"sequential {gs:.1f} GFLOP/s; {1024}^3 matmul peak {peak:.1f} GFLOP/s "
          f"(batched {gb / peak:.0%}, sequential {gs / peak:.0%} of peak)")


if __name__ == "__main__":
    main()
