"""A small fake world for GAN tests (until/independently of ``voiceface.sim``): harmonic "voices" whose pitch and
formant follow the identity, and 64x64 / 128x128 faces whose colour and ellipse width follow the same identity
parameters, written in the manifest layout of the simulated world (``path64`` extra column)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from voiceface.data.manifest import Item, write_manifest

# the tiny GAN config of the tests (here, not in conftest.py: several test folders have a conftest module, so
# ``from conftest import ...`` picks whichever was imported last when folders run together)
TINY = ["steps=6", "batch_size=8", "log_every=2", "checkpoint_every=3", "encoder.pretrain_steps=4",
        "encoder.pretrain_batch=8", "model.gen_channels=[32,16,16,8,8]", "model.face_channels=[8,8,16,16,16]",
        "data.min_frames=50", "data.max_frames=120", "data.test_frames=200", "eval_noise_trials=4",
        "eval_durations=[1,2]", "gender_steps=3", "eval_train_probes=8"]
PRIOR = ["model.gen_pixel_norm=true", "model.gen_upsample=true", "stable.prior_steps=5", "stable.prior_batch=8",
         "model.prior_channels=[8,8,8,16,16]"]                   # + TINY: a tiny run with the face prior


def _voice(rng: np.random.Generator, f0: float, formant: float, seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0t = f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0t) / sr
    k = np.arange(1, 30)[:, None]                                              # harmonics
    amp = np.exp(-0.5 * ((k * f0 - formant) / 300.0) ** 2) + 0.3 / k          # (K, 1)
    x = (amp * np.sin(k * phase[None, :])).sum(0)
    syll = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6))) ** 2   # syllabic envelope
    x = x * syll + 0.01 * rng.standard_normal(len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _face(rng: np.random.Generator, colour: np.ndarray, width: float, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    inside = (xx / width) ** 2 + (yy / 0.4) ** 2 < 1
    img = np.where(inside[..., None], colour[None, None, :], 0.15)
    img = img + 0.03 * rng.standard_normal(img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def build_fake_world(root: Path, n_train: int = 6, n_test: int = 4, voices: int = 4, faces: int = 4,
                     seconds: float = 2.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_train + n_test):
        ident = f"id{i:03d}"
        gender = "f" if i % 2 else "m"
        split = "train" if i < n_train else "test"
        f0 = (200.0 if gender == "f" else 110.0) * rng.uniform(0.9, 1.1)
        formant = rng.uniform(500, 1500)
        colour = np.array([0.8 if gender == "f" else 0.4, rng.uniform(0.2, 0.9), (formant - 500) / 1000])
        width = 0.2 + 0.2 * (formant - 500) / 1000
        for n in range(voices):
            p = root / "voices" / ident / f"{n}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, _voice(rng, f0, formant, seconds), 16000)
            items.append(Item(str(p), "voice", ident, gender, split=split, session=f"s{n // 2}", duration=seconds))
        for n in range(faces):
            p = root / "faces" / ident / f"{n}.png"
            p64 = root / "faces64" / ident / f"{n}.png"
            for q in (p, p64):
                q.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_face(rng, colour, width, 128)).save(p)
            Image.fromarray(_face(rng, colour, width, 64)).save(p64)
            items.append(Item(str(p), "face", ident, gender, split=split, width=128, height=128,
                              extra={"path64": f"faces64/{ident}/{n}.png"}))
    write_manifest(items, root / "manifest.csv")
    return root
