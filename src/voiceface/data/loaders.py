"""Batch loading shared by every method: voice log-mel crops, face image tensors, label encoders.

Three small pieces (Sec. 2.3 "Preprocessing"; the same inputs serve Chapters 2, 3 and 5):

* ``VoiceBank(items, cache_dir)``: voice items -> per-bin normalised 64-band log-mel (T, 64) float32, extracted once
  through ``voiceface.audio.batch`` (VAD, log mel, CMVN; one cached ``.npy`` per recording, parallel, resumable;
  unusable recordings are reported in ``bank.failures`` and left out). ``bank.crops(idx, rng, 300, 800)`` gives a
  (B, 64, L) training batch of random crops (one length L per batch, drawn with the caller's numpy Generator;
  short recordings repeat cyclically); ``bank.whole(i)`` gives one whole utterance (1, 64, T) for testing.
  ``VoiceBank.from_arrays(feats)`` holds features of another front end already in memory (the GAN's GE2E mel,
  SfV's log-mel) behind the same crops; it is the one voice store and crop gather of DIMNet, the GAN and SfV (SfV
  keeps its own draw of start frames, Sec. 5.3, and reads its windows through ``bank.frames``).
* ``FaceBank(items, size=128)``: aligned face PNGs -> (B, 3, S, S) float tensors in [-1, 1] ((x - 127.5) / 127.5),
  with optional horizontal flips; ``size=64`` reads the ``path64`` column of simulated worlds (else resizes).
* ``LabelEncoder`` / ``fit_label_encoders``: stable value -> class index maps for identity, gender, nationality
  (sorted values), saved with a run as JSON (``save_label_encoders`` / ``load_label_encoders``).

Indices passed to the banks are positions in ``bank.items`` (the usable items, in manifest order).

Training reads go through the tolerant ``sample_crops`` / ``read``: a file that fails to decode mid-training (a
corrupt cache ``.npy``, a damaged image of a bank too large to preload) is replaced by the next readable item
(cyclically, so the replacement is deterministic in any process) and returned with the indices actually used, so
labels follow the replacement; each failure is remembered (not decoded again) and reported once through
``drain_failures()`` (the input pipeline, ``data.pipeline``, ships it to the run's log). ``features`` / ``crops`` /
``images`` / ``batch`` stay strict (they raise ``InputError``).
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from ..errors import InputError
from .manifest import Item, Manifest

COVARIATES = ("identity", "gender", "nationality")


# --------------------------------------------------------------------------------------------------------------
# labels


@dataclass(frozen=True)
class LabelEncoder:
    """Maps the values of one label (e.g. gender) to class indices 0..C-1 in sorted order of the values."""

    name: str
    classes: tuple[str, ...]

    @classmethod
    def fit(cls, name: str, values: Iterable[str]) -> "LabelEncoder":
        return cls(name, tuple(sorted({str(v) for v in values})))

    def __len__(self) -> int:
        return len(self.classes)

    def encode(self, values: Iterable[str]) -> np.ndarray:
        """(n,) int64 class indices; values never seen in fitting map to -1."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index.get(str(v), -1) for v in values], dtype=np.int64)

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.classes[int(i)] for i in indices]

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "LabelEncoder":
        return cls(str(data["name"]), tuple(str(c) for c in data["classes"]))


def item_labels(items: Sequence[Item], name: str) -> list[str]:
    """The ``name`` label (identity, gender, nationality, or an extra column) of every item."""
    if name in COVARIATES:
        return [getattr(it, name) for it in items]
    return [it.extra.get(name, "") for it in items]


def fit_label_encoders(items: Sequence[Item], names: Sequence[str] = COVARIATES) -> dict[str, LabelEncoder]:
    """One encoder per label name, fitted on ``items`` (usually the training split, both modalities)."""
    return {n: LabelEncoder.fit(n, item_labels(items, n)) for n in names}


def save_label_encoders(encoders: Mapping[str, LabelEncoder], path: str | os.PathLike) -> Path:
    from ..engine.runs import write_json

    write_json(path, {k: e.to_dict() for k, e in encoders.items()})
    return Path(path)


def load_label_encoders(path: str | os.PathLike) -> dict[str, LabelEncoder]:
    from ..engine.runs import read_json

    return {k: LabelEncoder.from_dict(v) for k, v in read_json(path).items()}


def encoders_to_dict(encoders: Mapping[str, LabelEncoder]) -> dict:
    """JSON-able form (for checkpoints' ``extra``)."""
    return {k: e.to_dict() for k, e in encoders.items()}


def encoders_from_dict(data: Mapping) -> dict[str, LabelEncoder]:
    return {k: LabelEncoder.from_dict(v) for k, v in data.items()}


# --------------------------------------------------------------------------------------------------------------
# tolerant reads


class Replacing:
    """Mixin for banks: ``_tolerant(indices, read)`` reads every index with ``read(i)`` (which raises
    ``InputError``), replacing failures by the next readable index; ``drain_failures`` reports new failures."""

    def _init_failures(self) -> None:
        self._bad: dict[int, str] = {}
        self._fresh: list[tuple[str, str]] = list(getattr(self, "failures", []))

    def record_failures(self, failures: Sequence[tuple[str, str]]) -> None:
        """Add (path, message) of files left out while building the bank (``failures``; also reported once by
        ``drain_failures``, so the training loop logs them with the others)."""
        self.failures.extend(failures)
        self._fresh.extend(failures)

    def _path_of(self, i: int) -> str:
        raise NotImplementedError

    def _tolerant(self, indices: Sequence[int], read) -> tuple[list, np.ndarray]:
        """([read(j) for the used j], (B,) int64 used indices)."""
        out, used = [], np.asarray(indices, dtype=np.int64).copy()
        n = len(self)
        for b, i in enumerate(used):
            j = int(i)
            for _ in range(n):
                if j not in self._bad:
                    try:
                        out.append(read(j))
                        break
                    except InputError as e:
                        self._bad[j] = str(e)
                        self._fresh.append((self._path_of(j), str(e)))
                j = (j + 1) % n
            else:
                raise InputError(self._path_of(int(i)), "no readable item left in the bank")
            used[b] = j
        return out, used

    def drain_failures(self) -> list[tuple[str, str]]:
        """(path, message) of every read that failed since the last call (the first call also returns the files
        left out while building the bank)."""
        fresh, self._fresh = self._fresh, []
        return fresh


# --------------------------------------------------------------------------------------------------------------
# voices


def default_cache_dir(manifest: Manifest | None, fallback: str | os.PathLike) -> Path:
    """``<manifest folder>/cache/logmel64`` when that folder is writable (shared by runs), else ``fallback``."""
    if manifest is not None and manifest.root is not None:
        cand = Path(manifest.root) / "cache" / "logmel64"
        try:
            cand.mkdir(parents=True, exist_ok=True)
            if os.access(cand, os.W_OK):
                return cand
        except OSError:
            pass
    out = Path(fallback)
    out.mkdir(parents=True, exist_ok=True)
    return out


def crop_starts(lengths: np.ndarray, u: np.ndarray, length: int) -> np.ndarray:
    """Start frames of crops of ``length`` frames: ``floor(u * max(T - length + 1, 1))`` for recordings of
    ``lengths`` T and uniform draws ``u`` in [0, 1) (same shapes): uniform over the valid range; 0 for a recording
    shorter than the crop (it is read cyclically from its start)."""
    return (np.asarray(u) * np.maximum(np.asarray(lengths) - length + 1, 1)).astype(np.int64)


def crop_batch(feats: Sequence[np.ndarray], length: int, rng: np.random.Generator) -> torch.Tensor:
    """Random crops of ``length`` frames from (T_i, F) arrays -> (B, F, length) float32 (``crop_starts``;
    recordings shorter than ``length`` repeat cyclically). Draws ``rng.random(B)`` once."""
    return torch.from_numpy(_crop_frames(feats, rng.random(len(feats)), length)).transpose(1, 2).contiguous()


def _crop_frames(feats: Sequence[np.ndarray], u: np.ndarray, length: int) -> np.ndarray:
    """(B, length, F) float32 crops of ``feats`` at starts ``crop_starts(T_b, u[b], length)`` (cyclic when short)."""
    starts = crop_starts(np.array([f.shape[0] for f in feats], np.int64), u, length)
    return _cyclic_frames(feats, starts, length)


def _cyclic_frames(feats: Sequence[np.ndarray], starts: np.ndarray, length: int,
                   period: np.ndarray | None = None) -> np.ndarray:
    """(B, length, F) float32: frames starts[b] .. starts[b] + length - 1 of feats[b], read cyclically over its
    first ``period[b]`` frames (default: all of them)."""
    out = np.empty((len(feats), length, feats[0].shape[1] if len(feats) else 64), np.float32)
    for b, f in enumerate(feats):  # one slice per utterance of the batch (B <= a few hundred; disk-backed banks)
        t = f.shape[0] if period is None else int(period[b])
        s = int(starts[b])
        out[b] = f[s:s + length] if s + length <= t else f[(s + np.arange(length)) % t]
    return out


class VoiceBank(Replacing):
    """Voice features (T_i, F) of N recordings, cropped for training and read whole for testing: the one voice bank
    of every method (see module docstring).

    Two stores behind one interface:

    * ``VoiceBank(items, cache_dir)``: the cached (T, 64) normalised log-mel of voice items, read from the cache's
      ``.npy`` files (``memory_mb`` bounds what is kept in RAM after the first read); reads may fail mid-training
      and are then replaced (``sample_crops``);
    * ``VoiceBank.from_arrays(feats, items)``: features already in memory (another front end: GE2E's mel, SfV's
      log-mel, generated sets), packed into one (sum T_i, F) array so crops of any index shape are one fancy index.

    Crops: ``crops_at(indices, u, length)`` (any index shape, start ``crop_starts``), ``frames(indices, starts,
    length, period)`` (explicit cyclic windows, e.g. consecutive test segments).
    """

    def __init__(self, items: Sequence[Item], cache_dir: str | os.PathLike, *, workers: int = 1,
                 progress: bool = False, memory_mb: float = 1024.0):
        from ..audio.batch import extract_manifest

        voice = [it for it in items if it.modality == "voice"]
        result = extract_manifest(voice, cache_dir, workers=workers, progress=progress)
        self.failures: list[tuple[str, str]] = list(result.failures)
        keyed = {os.path.abspath(k): v for k, v in result.paths.items()}
        self.items: tuple[Item, ...] = tuple(it for it in voice if os.path.abspath(it.path) in keyed)
        self._files = [keyed[os.path.abspath(it.path)] for it in self.items]
        self._mem: dict[int, np.ndarray] = {}
        self._budget = int(memory_mb * 2**20)
        self.packed: np.ndarray | None = None
        self.offsets = self.lengths = None
        self._init_failures()

    @classmethod
    def from_arrays(cls, feats: Sequence[np.ndarray], items: Sequence[Item] | None = None) -> "VoiceBank":
        """An in-memory bank of ready (T_i, F) features (``items``: what they are, or None)."""
        bank = cls.__new__(cls)
        lengths = np.array([len(f) for f in feats], dtype=np.int64)
        bins = feats[0].shape[1] if len(feats) else 0
        bank.packed = np.concatenate(feats).astype(np.float32, copy=False) if len(feats) else \
            np.zeros((0, bins), np.float32)                                          # (sum T_i, F)
        bank.lengths = lengths                                                       # (N,)
        bank.offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)  # (N,)
        bank.items = tuple(items) if items is not None else (None,) * len(lengths)
        bank.failures = []
        bank._files = [f"<memory #{i}>" for i in range(len(lengths))]
        bank._mem, bank._budget = {}, 0
        bank._init_failures()
        return bank

    def _path_of(self, i: int) -> str:
        return str(self._files[i])

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices: Sequence[int]) -> "VoiceBank":
        """A bank of recordings ``indices`` (in that order) sharing this one's store (no copy in memory)."""
        idx = np.asarray(indices, dtype=np.int64)
        out = copy.copy(self)
        out.items = tuple(self.items[i] for i in idx)
        out._files = [self._files[i] for i in idx]
        out._mem, out._budget = {}, self._budget if self.packed is None else 0
        if self.packed is not None:
            out.offsets, out.lengths = self.offsets[idx], self.lengths[idx]
        out.failures = []
        out._init_failures()
        return out

    def features(self, i: int) -> np.ndarray:
        """(T, F) float32 features of item ``i``."""
        if self.packed is not None:
            return self.packed[self.offsets[i]:self.offsets[i] + self.lengths[i]]
        f = self._mem.get(i)
        if f is None:
            try:
                f = np.load(self._files[i])
            except (OSError, ValueError, EOFError) as e:
                raise InputError(self._files[i], f"cannot read cached features ({e.__class__.__name__})") from None
            if f.ndim != 2 or f.shape[0] == 0:
                raise InputError(self._files[i], f"cached features of shape {f.shape}, expected (T, F)")
            if self._budget >= f.nbytes:
                self._mem[i] = f
                self._budget -= f.nbytes
        return f

    def frames(self, indices: np.ndarray, starts: np.ndarray, length: int,
               period: np.ndarray | None = None) -> np.ndarray:
        """(*S, length, F) float32 windows: frames starts .. starts + length - 1 of recordings ``indices`` (both of
        any shape S), read cyclically over each recording's first ``period`` frames (default: its length)."""
        idx = np.asarray(indices, dtype=np.int64)
        st = np.broadcast_to(np.asarray(starts, dtype=np.int64), idx.shape)
        if self.packed is not None:                                  # one gather, no loop over samples
            per = self.lengths[idx] if period is None else np.broadcast_to(np.asarray(period, np.int64), idx.shape)
            rows = self.offsets[idx][..., None] + (st[..., None] + np.arange(length)) % per[..., None]
            return self.packed[rows]
        flat = idx.reshape(-1)
        per = None if period is None else np.broadcast_to(np.asarray(period, np.int64), idx.shape).reshape(-1)
        out = _cyclic_frames([self.features(int(i)) for i in flat], st.reshape(-1), length, per)
        return out.reshape(*idx.shape, length, out.shape[-1])

    def crops_at(self, indices: np.ndarray, u: np.ndarray, length: int) -> torch.Tensor:
        """(*S, F, length) crops of recordings ``indices`` (any shape S) at starts ``crop_starts(T, u, length)``."""
        idx = np.asarray(indices, dtype=np.int64)
        if self.packed is not None:
            x = self.frames(idx, crop_starts(self.lengths[idx], u, length), length)          # (*S, L, F)
        else:
            x = _crop_frames([self.features(int(i)) for i in idx.reshape(-1)], np.reshape(u, -1), length)
            x = x.reshape(*idx.shape, length, x.shape[-1])
        return torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, -1, -2)))

    def crops(self, indices: Sequence[int], rng: np.random.Generator, min_frames: int = 300,
              max_frames: int = 800) -> torch.Tensor:
        """Training batch (B, F, L), L uniform in [min_frames, max_frames] (Sec. 2.3: 300-800 frames)."""
        length = int(rng.integers(min_frames, max_frames + 1))
        return self.crops_at(np.asarray(indices, np.int64), rng.random(len(indices)), length)

    def sample_crops(self, indices: Sequence[int], rng: np.random.Generator, min_frames: int = 300,
                     max_frames: int = 800) -> tuple[torch.Tensor, np.ndarray]:
        """Like ``crops`` (same draws from ``rng``), unreadable items replaced: ((B, F, L), (B,) used indices)."""
        length = int(rng.integers(min_frames, max_frames + 1))
        if self.packed is not None:                                  # in memory: nothing can fail
            used = np.asarray(indices, np.int64)
            return self.crops_at(used, rng.random(len(used)), length), used
        feats, used = self._tolerant(indices, self.features)
        return crop_batch(feats, length, rng), used

    def whole(self, i: int, min_frames: int = 0) -> torch.Tensor:
        """One whole utterance (1, F, T) (repeated cyclically to at least ``min_frames``)."""
        f = self.features(i)
        if f.shape[0] < min_frames:
            f = f[np.arange(min_frames) % f.shape[0]]
        return torch.from_numpy(np.ascontiguousarray(f.T))[None]


# --------------------------------------------------------------------------------------------------------------
# faces


def face_path(item: Item, size: int, root: str | os.PathLike | None = None) -> str:
    """The image file for ``item`` at ``size``: the ``path64`` column when ``size == 64`` and present."""
    if size == 64 and item.extra.get("path64"):
        p = Path(item.extra["path64"])
        if not p.is_absolute() and root is not None:
            p = Path(root) / p
        return str(p)
    return item.path


def read_face(path: str | os.PathLike, size: int) -> np.ndarray:
    """(S, S, 3) uint8 RGB image, resized (bilinear) when its size differs. Raises ``InputError``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(path, f"cannot read face image ({e.__class__.__name__})") from None


def to_tensor(images: np.ndarray, flips: np.ndarray | None = None) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 in [-1, 1]; rows where ``flips`` (B,) is True are mirrored."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    x = (x - 127.5) / 127.5
    if flips is not None and np.any(flips):
        m = torch.as_tensor(np.asarray(flips, bool))
        x[m] = x[m].flip(-1)
    return x


class FaceBank(Replacing):
    """Aligned face images of face items as (B, 3, S, S) tensors in [-1, 1] (see module docstring).

    Images are decoded once and kept as uint8 when they fit in ``memory_mb``; unreadable files are reported in
    ``bank.failures`` and left out.
    """

    def __init__(self, items: Sequence[Item], size: int = 128, root: str | os.PathLike | None = None,
                 memory_mb: float = 2048.0):
        faces = [it for it in items if it.modality == "face"]
        self.size = size
        self.root = root
        self.failures: list[tuple[str, str]] = []
        keep, paths = [], []
        for it in faces:
            p = face_path(it, size, root)
            if os.path.isfile(p):
                keep.append(it)
                paths.append(p)
            else:
                self.failures.append((p, f"{p}: face image not found"))
        self._preload = len(paths) * size * size * 3 <= memory_mb * 2**20
        self._images: np.ndarray | None = None
        if self._preload:
            imgs, ok = [], []
            for it, p in zip(keep, paths):
                try:
                    imgs.append(read_face(p, size))
                    ok.append((it, p))
                except InputError as e:
                    self.failures.append((p, str(e)))
            keep, paths = [k for k, _ in ok], [p for _, p in ok]
            self._images = np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)
        self.items: tuple[Item, ...] = tuple(keep)
        self._paths = paths
        self._init_failures()

    def _path_of(self, i: int) -> str:
        return self._paths[i]

    def read(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """((B, S, S, 3) uint8, (B,) int64 used indices): like ``images``, unreadable files replaced."""
        if self._images is not None:
            idx = np.asarray(indices, dtype=np.int64)
            return self._images[idx], idx
        imgs, used = self._tolerant(indices, lambda i: read_face(self._paths[i], self.size))
        return (np.stack(imgs) if imgs else np.zeros((0, self.size, self.size, 3), np.uint8)), used

    def __len__(self) -> int:
        return len(self.items)

    def images(self, indices: Sequence[int]) -> np.ndarray:
        """(B, S, S, 3) uint8."""
        idx = np.asarray(indices, dtype=np.int64)
        if self._images is not None:
            return self._images[idx]
        return np.stack([read_face(self._paths[i], self.size) for i in idx])

    def batch(self, indices: Sequence[int], flips: np.ndarray | None = None) -> torch.Tensor:
        """(B, 3, S, S) float32 in [-1, 1]; ``flips`` (B,) bool mirrors those images (augmentation)."""
        return to_tensor(self.images(indices), flips)

    def random_flips(self, n: int, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
        """(n,) bool: flip each image with probability ``p`` (Sec. 2.3: 50%)."""
        return rng.random(n) < p
