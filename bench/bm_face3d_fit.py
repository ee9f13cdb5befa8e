"""Benchmark: Eq. 5.7 fitting (``face3d.fit.fit_ams``) of B targets in one batched call vs one call per target.

    .venv/bin/python bench/bm_face3d_fit.py [B]

Prints seconds for both and their ratio (measured in the same run, on this machine, one thread).
"""
from __future__ import annotations

import sys
import time

import torch

from voiceface.face3d import anthropometry, builtin_model
from voiceface.face3d.fit import am_prior_scale, fit_ams


def main(b: int = 16) -> None:
    torch.set_num_threads(1)
    model = builtin_model()
    shapes = model.shape(torch.randn(b, model.num_identity, generator=torch.Generator().manual_seed(0)))
    targets = anthropometry.am_from_shape(model, shapes)
    scale = am_prior_scale(model, model.am_landmarks)
    fit_ams(model, model.am_landmarks, targets[:1], scale=scale, iterations=2)          # warm-up (torch.func)
    t0 = time.perf_counter()
    batched = fit_ams(model, model.am_landmarks, targets, scale=scale, lam=1e-4)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(b):
        fit_ams(model, model.am_landmarks, targets[i:i + 1], scale=scale, lam=1e-4)
    t_loop = time.perf_counter() - t0
    err = ((batched.ams - targets) / scale).abs().mean().item()
    print(f"targets={b} batched={t_batched:.2f}s per-target-loop={t_loop:.2f}s speed-up={t_loop / t_batched:.1f}x "
          f"mean |AM error|/sd={err:.4f} iterations={batched.iterations}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)
