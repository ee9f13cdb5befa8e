"""Benchmark of dlib's 128-d face descriptor on aligned crops: faces/s with one process vs ``--workers`` processes.

``FaceDescriber.describe_aligned_batch(crops, workers=N)`` splits a stack over N processes (dlib's network uses one
core); the ratio against one process is measured in the same run, on the same crops (a world's 64 px faces, or
random crops without ``--data``). The GAN's evaluation describes ~3,000 faces on the small world. Run:

    .venv/bin/python bench/bm_dlib.py [--data WORLD] [-n 256] [--workers 2]

Measured on the 2-core machine, small world, -n 256: 15.6 faces/s in one process, 23.2 in two (x1.49 with the
processes' ~3 s start-up; load average 1.4 from another job). With two other jobs running (load 3.8, no free core)
two processes were slower (x0.59).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from voiceface.face.descriptors import FaceDescriber


def crops(world: Path | None, n: int) -> np.ndarray:
    """(n, 64, 64, 3) uint8: the first n faces of the world's faces64/, or random images."""
    if world is None:
        return np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    files = sorted((world / "faces64").glob("*/*.png"))[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="a simulated world (default: random crops)")
    ap.add_argument("-n", type=int, default=256, help="crops to describe (default 256)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    x = crops(args.data, args.n)
    d = FaceDescriber()
    d.describe_aligned_batch(x[:2])                                 # load the models outside the timing
    rates = {}
    for w in (1, args.workers):
        t = time.perf_counter()
        d.describe_aligned_batch(x, workers=w)
        rates[w] = len(x) / (time.perf_counter() - t)
    print(f"{len(x)} crops, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}: "
          f"1 process {rates[1]:.1f} faces/s, {args.workers} processes {rates[args.workers]:.1f} faces/s "
          f"(x{rates[args.workers] / rates[1]:.2f}, process start-up included)")


if __name__ == "__main__":
    main()
