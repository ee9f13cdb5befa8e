"""Faces from any recordings with a trained (or imported) GAN: F_g(F_e(v)) (Sec. 3.2, inference phase).

Each recording is loaded (any format / rate), passed through the encoder's front end (VAD + features), repeated
cyclically to ``data.test_frames`` frames when shorter (the authors repeat to 10 s), embedded and turned into a
64x64 face. Recordings of equal feature length are batched together (the embedding averages over time, so padding
would change it). A file that fails (no speech, corrupt) is reported and skipped; the rest go on.
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...audio.encoders import LogMelEncoder, repeat_to
from ...audio.io import AUDIO_EXTENSIONS, load_audio
from ...engine import load_checkpoint
from ...errors import InputError, VoicefaceError
from .train import TrainedGAN, feature_fn, load_run
from .weights import load_imported


@dataclass
class Generated:
    """faces: (B, 3, 64, 64) in [-1, 1], one per kept source; sources: their paths; failed: [(path, message)]."""

    faces: torch.Tensor
    sources: list[str]
    failed: list[tuple[str, str]]


class ImportedGAN:
    """A voice network + generator imported from the authors' files (``voiceface weights import``)."""

    def __init__(self, voice_ckpt: str | os.PathLike, generator_ckpt: str | os.PathLike,
                 device: str | torch.device = "cpu", test_frames: int = 1000):
        voice = load_imported(voice_ckpt).get("voice")
        gen = load_imported(generator_ckpt).get("generator")
        if voice is None:
            raise InputError(voice_ckpt, "holds no imported voice network (import it with --kind voice)")
        if gen is None:
            raise InputError(generator_ckpt, "holds no imported generator (import it with --kind generator)")
        self.device = torch.device(device)
        self.encoder = LogMelEncoder(voice, "imported", voice.embed_dim, self.device)
        self.generator = gen.eval().to(self.device)
        self.test_frames = test_frames
        self.kind = "own"

    @torch.no_grad()
    def faces(self, feats: torch.Tensor) -> torch.Tensor:
        return self.generator(self.encoder.embed(feats.to(self.device))).clamp(-1, 1)


def load_model(run: str | os.PathLike, voice: str | os.PathLike | None = None,
               device: str | torch.device = "cpu") -> TrainedGAN | ImportedGAN:
    """A GAN run folder / checkpoint, or an imported generator checkpoint ``run`` with an imported ``voice`` one."""
    path = Path(run)
    if path.is_file() and load_checkpoint(path)["config"].get("imported"):
        if voice is None:
            raise InputError(path, "an imported generator needs --voice (an imported voice network checkpoint)")
        return ImportedGAN(voice, path, device)
    return load_run(run, device)


def collect_audio(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given, folders searched recursively for audio files (sorted); a missing input raises InputError."""
    out: list[Path] = []
    for x in inputs:
        p = Path(x)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in AUDIO_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(p, "no such file or folder")
    return out


def _model_frames(model) -> int:
    return model.test_frames if isinstance(model, ImportedGAN) else model.config.data.test_frames


def faces_from_features(model: TrainedGAN | ImportedGAN, feats: Sequence[np.ndarray], batch_size: int = 32
                        ) -> torch.Tensor:
    """List of (T_i, F) features -> (B, 3, 64, 64) faces, same order; short ones repeated to ``test_frames``."""
    frames = _model_frames(model)
    feats = [repeat_to(f, frames) for f in feats]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(feats):
        groups[len(f)].append(i)
    out = torch.zeros(len(feats), 3, 64, 64)
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            x = torch.from_numpy(np.stack([feats[i] for i in chunk])).transpose(1, 2)   # (b, F, T)
            out[chunk] = model.faces(x).cpu()
    return out


def generate(model: TrainedGAN | ImportedGAN, voices: Sequence[str | os.PathLike | np.ndarray],
             batch_size: int = 32, use_vad: bool = True) -> Generated:
    """Faces for recordings (paths, folders, or (N,) 16 kHz sample arrays). Bad files are skipped into ``failed``."""
    kind = getattr(model, "kind", None) or model.config.encoder.kind
    front = feature_fn(kind, "cpu")
    sources: list[str] = []
    feats: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    arrays = [v for v in voices if isinstance(v, np.ndarray)]
    paths = collect_audio([v for v in voices if not isinstance(v, np.ndarray)])
    for i, a in enumerate(arrays):
        try:
            feats.append(front(a, use_vad=use_vad, path=f"<array {i}>"))
            sources.append(f"<array {i}>")
        except VoicefaceError as e:
            failed.append((f"<array {i}>", str(e)))
    for p in paths:
        try:
            feats.append(front(load_audio(p), use_vad=use_vad, path=p))
            sources.append(str(p))
        except VoicefaceError as e:
            failed.append((str(p), str(e)))
    faces = faces_from_features(model, feats, batch_size) if feats else torch.zeros(0, 3, 64, 64)
    return Generated(faces, sources, failed)


def to_uint8(faces: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    x = ((faces.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def contact_sheet(faces: torch.Tensor | np.ndarray, labels: Sequence[str] | None = None, columns: int = 8,
                  scale: int = 2, rows_first: Sequence[np.ndarray] | None = None) -> Image.Image:
    """A grid of faces ((B, 3, 64, 64) in [-1, 1] or (B, 64, 64, 3) uint8) with optional text labels under each."""
    imgs = to_uint8(faces) if isinstance(faces, torch.Tensor) else np.asarray(faces)
    n = len(imgs)
    columns = max(1, min(columns, n))
    rows = max(1, -(-n // columns))
    h, w = imgs.shape[1] * scale, imgs.shape[2] * scale
    label_h = 14 if labels else 0
    sheet = Image.new("RGB", (columns * w, rows * (h + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, img in enumerate(imgs):
        r, c = divmod(i, columns)
        sheet.paste(Image.fromarray(img).resize((w, h), Image.NEAREST), (c * w, r * (h + label_h)))
        if labels:
            draw.text((c * w + 2, r * (h + label_h) + h), str(labels[i])[: max(4, w // 6)], fill="black")
    return sheet


def save_faces(gen: Generated, out: str | os.PathLike, sheet_name: str = "sheet.png") -> list[Path]:
    """One PNG per recording (named after it; duplicates numbered) and a contact sheet; returns the PNG paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written, used = [], set()
    for img, src in zip(to_uint8(gen.faces), gen.sources):
        stem = Path(src).stem if not src.startswith("<") else src.strip("<>").replace(" ", "_")
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}_{k}"
        used.add(name)
        path = out / f"{name}.png"
        Image.fromarray(img).save(path)
        written.append(path)
    if len(gen.faces):
        contact_sheet(gen.faces, [p.stem for p in written]).save(out / sheet_name)
    return written
