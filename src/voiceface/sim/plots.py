"""Figures of a simulated world for people to look at: spectrograms, a face contact sheet, a clip strip."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def spectrogram_figure(wavs, out) -> Path:
    """One spectrogram (0-8 kHz, dB) per WAV, stacked, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    wavs = list(wavs)
    fig, axes = plt.subplots(len(wavs), 1, figsize=(10, 2.2 * len(wavs)), squeeze=False)
    for ax, p in zip(axes[:, 0], wavs):
        y, sr = sf.read(p, dtype="float32")
        ax.specgram(y, NFFT=512, Fs=sr, noverlap=384, cmap="magma", vmin=-120)
        ax.set_title(Path(p).name, fontsize=9)
        ax.set_ylabel("Hz")
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return Path(out)


def contact_sheet(world, out, people: int = 8, per_person: int = 6) -> Path:
    """Aligned 128x128 crops, one row per person (first ``people`` identities with faces), as PNG."""
    from PIL import Image

    faces = world.manifest.select(modality="face")
    rows: dict[str, list[str]] = {}
    for it in faces:
        if it.identity in rows or len(rows) < people:
            rows.setdefault(it.identity, []).append(it.path)
    ncol = min(per_person, max(len(v) for v in rows.values())) if rows else 1
    sheet = np.full((max(len(rows), 1) * 128, ncol * 128, 3), 255, np.uint8)
    for r, paths in enumerate(rows.values()):
        for c, p in enumerate(paths[:ncol]):
            sheet[r * 128:(r + 1) * 128, c * 128:(c + 1) * 128] = np.asarray(Image.open(p).convert("RGB"))
    Image.fromarray(sheet).save(out)
    return Path(out)


def clip_strip(path, out) -> Path:
    """A clip's frames (top), with its 68 landmarks drawn, and its face masks (bottom), as PNG."""
    from PIL import Image, ImageDraw

    with np.load(path) as d:
        frames, masks, lms = d["frames"], d["masks"], d["landmarks"]
    f, s = frames.shape[:2]
    strip = Image.new("RGB", (f * s, 2 * s), "white")
    draw = ImageDraw.Draw(strip)
    for i in range(f):
        strip.paste(Image.fromarray(frames[i]), (i * s, 0))
        strip.paste(Image.fromarray((masks[i] * 255).astype(np.uint8)).convert("RGB"), (i * s, s))
        for x, y in lms[i]:      # screen frame: pixel centres at +0.5
            draw.point((i * s + x - 0.5, y - 0.5), fill=(0, 255, 0))
    strip.save(out)
    return Path(out)
