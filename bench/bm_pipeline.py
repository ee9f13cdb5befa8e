"""Benchmark of the input pipeline (``data.pipeline``) against DIMNet's consumption per step, on CPU.

Writes a corpus to a temporary folder: ``--voices`` cached log-mel files (T uniform in 300-1,000 frames x 64, float32
``.npy``, where ``data.loaders.VoiceBank`` finds them, so nothing is re-extracted) and ``--faces`` aligned 128x128
PNG crops. Both banks read from disk every batch (``memory_mb=0``: no RAM cache), as on a corpus too large to hold.
DIMNet's own ``Batches`` builds thesis-size minibatches (128 voice crops of 300-800 frames + 128 faces at 128 px,
flips) for ``--steps`` steps with 0, 2 and 4 DataLoader workers; the ratios are against 0 workers in the same run.
The model side: steps/s of one DIMNet training step (thesis widths, Table 2.2) on the same batch size, i.e. how
many crops/s training consumes. Run:

    .venv/bin/python bench/bm_pipeline.py [--voices 256 --faces 512 --steps 6 --threads 1 --workers 0 2 4 --device auto]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from voiceface.audio.batch import cache_path
from voiceface.data.loaders import FaceBank, VoiceBank
from voiceface.data.manifest import Item
from voiceface.data.pipeline import LoaderOptions, StepDataset, step_batches, to_device
from voiceface.engine.dist import default_device
from voiceface.methods.dimnet.config import DIMNetConfig
from voiceface.methods.dimnet.loss import DIMNetLoss
from voiceface.methods.dimnet.model import build_networks
from voiceface.methods.dimnet.train import Batches, TrainData


def write_corpus(root: Path, n_voices: int, n_faces: int, rng: np.random.Generator) -> list[Item]:
    """Voice items whose cached features exist (sources are never read) and face items with PNG crops."""
    items, cache = [], root / "cache"
    cache.mkdir(parents=True)
    for i in range(n_voices):
        src = root / "wav" / f"id{i % 50:05d}" / f"{i:05d}.wav"
        feats = rng.standard_normal((int(rng.integers(300, 1001)), 64)).astype(np.float32)
        np.save(cache_path(src, cache), feats)
        items.append(Item(str(src), "voice", f"id{i % 50:05d}"))
    for i in range(n_faces):
        p = root / "faces" / f"{i:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        # smooth content (compresses like a photo, unlike noise)
        base = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
        Image.fromarray(base).resize((128, 128), Image.BICUBIC).save(p)
        items.append(Item(str(p), "face", f"id{i % 50:05d}"))
    return items


def pipeline_rate(td: TrainData, cfg: DIMNetConfig, steps: int, workers: int) -> float:
    """Batches/s from ``step_batches`` (the first batch, which includes worker start-up, not counted)."""
    it = step_batches(StepDataset(Batches(td, cfg, 0), steps + 1), 0, LoaderOptions(workers=workers, prefetch=2))
    next(it)
    t0 = time.perf_counter()
    n = sum(1 for _ in it)
    return n / (time.perf_counter() - t0)


def model_rate(cfg: DIMNetConfig, td: TrainData, steps: int, device: torch.device) -> float:
    """DIMNet training steps/s (forward + backward + SGD) on batches of the configured size, on ``device``."""
    torch.manual_seed(0)
    voice, face, heads = (m.to(device) for m in build_networks(cfg.net, {"identity": 50}))
    loss = DIMNetLoss(voice, face, heads, {"identity": 1.0})
    params = [p for m in (voice, face, heads) for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    batches = [to_device(Batches(td, cfg, 0)(s), device) for s in range(steps + 1)]

    def step(b):
        opt.zero_grad()
        total, _ = loss.mixed(b["voices"], b["faces"], b["voice_labels"], b["face_labels"])
        total.backward()
        opt.step()
    step(batches[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for b in batches[1:]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", type=int, default=256)
    ap.add_argument("--faces", type=int, default=512)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--model-steps", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", help="for the model side (auto: CUDA when present)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = DIMNetConfig()   # the thesis: 128 voices (300-800 frames) + 128 faces (128 px) per step
    d = cfg.data
    with tempfile.TemporaryDirectory(prefix="bm_pipeline_") as tmp:
        items = write_corpus(Path(tmp), args.voices, args.faces, np.random.default_rng(0))
        voices = VoiceBank(items, Path(tmp) / "cache", workers=1, memory_mb=0)
        faces = FaceBank(items, cfg.net.face_size, memory_mb=0)
        labels = {"identity": np.arange(len(voices), dtype=np.int64) % 50}
        td = TrainData(voices, faces, {}, labels, {"identity": np.arange(len(faces), dtype=np.int64) % 50})
        print(f"torch {torch.__version__}, {args.threads} thread(s); corpus {len(voices)} voice feature files, "
              f"{len(faces)} PNG faces; batches of {d.voices_per_batch} crops ({d.min_frames}-{d.max_frames} "
              f"frames) + {d.faces_per_batch} faces, read from disk")
        base = None
        for w in args.workers:
            r = pipeline_rate(td, cfg, args.steps, w)
            base = base or r
            print(f"pipeline, {w} workers: {r:6.2f} batches/s = {r * d.voices_per_batch:8.1f} voice crops/s + "
                  f"{r * d.faces_per_batch:8.1f} faces/s (ratio {r / base:.2f}x vs 0 workers)")
        device = default_device(args.device)
        m = model_rate(cfg, td, args.model_steps, device)
        print(f"DIMNet thesis widths on {device}, one training step: {m:.3f} steps/s = consumes {m * d.voices_per_batch:.1f} "
              f"voice crops/s + {m * d.faces_per_batch:.1f} faces/s; pipeline at 0 workers / model = "
              f"{base / m:.1f}x")


if __name__ == "__main__":
    main()
