"""Benchmark of the voice-to-face GAN on CPU: generator images/s and Algorithm 1 iterations/s.

Ratios are against baselines measured in the same run: generation batched (B=64) vs one image per call, and the
thesis-size networks (Table 3.2) vs the CPU preset (PRESETS["cpu"] = configs/gan/cpu.yaml). Run:

    .venv/bin/python bench/bm_gan.py [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import torch


from voiceface.methods.gan.config import PRESETS, GANConfig
from voiceface.methods.gan.loss import GANLoss
from voiceface.methods.gan.model import FaceCritics, Generator, VoiceEmbedNet

FULL = GANConfig()
CPU = PRESETS["cpu"]


def rate(fn, items: int, min_time: float = 2.0) -> float:
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        fn()
        n += 1
    return n * items / (time.perf_counter() - t0)


@torch.no_grad()
def gen_rate(channels, batch: int) -> float:
    g = Generator(64, channels).eval()
    e = torch.nn.functional.normalize(torch.randn(batch, 64), dim=1)
    return rate(lambda: g(e), batch)


def train_rate(gen_ch, face_ch, batch: int, frames: int = 300) -> float:
    """Algorithm 1 iterations/s (frozen F_e forward on 3 s crops + D, C, G steps)."""
    torch.manual_seed(0)
    v = VoiceEmbedNet().eval()
    g, c = Generator(64, gen_ch), FaceCritics(100, face_ch)
    adam = lambda ps: torch.optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
    loss = GANLoss(g, c, adam(g.parameters()), adam(c.d_parameters()), adam(c.c_parameters()))
    mel, real = torch.randn(batch, 64, frames), torch.rand(batch, 3, 64, 64) * 2 - 1
    ids = torch.randint(0, 100, (batch,))

    def step():
        with torch.no_grad():
            e = v(mel)
        loss.step(e, ids, real, ids)
    return rate(step, 1, min_time=4.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    for name, ch in (("full (Table 3.2)", FULL.model.gen_channels), ("cpu preset", CPU.model.gen_channels)):
        one, batched = gen_rate(ch, 1), gen_rate(ch, 64)
        print(f"generator {name}: {batched:8.1f} images/s batched (B=64), {one:8.1f} images/s one at a time, "
              f"ratio {batched / one:.2f}x")
    full = train_rate(FULL.model.gen_channels, FULL.model.face_channels, FULL.batch_size)
    cpu = train_rate(CPU.model.gen_channels, CPU.model.face_channels, CPU.batch_size)
    print(f"training full size, batch {FULL.batch_size}: {full:.3f} it/s; cpu preset, batch {CPU.batch_size}: "
          f"{cpu:.3f} it/s "
          f"(ratio {cpu / full:.1f}x)")


if __name__ == "__main__":
    main()
