"""Audio loading: any common container, sample rate and channel count -> 16 kHz mono float32.

WAV, FLAC and OGG/Vorbis are decoded with ``soundfile`` (libsndfile); MP3, M4A/AAC (VoxCeleb2 ships AAC in .m4a)
and anything libsndfile refuses are decoded with PyAV (``av``, which bundles FFmpeg). Multi-channel audio is
downmixed by averaging the channels, then resampled with ``soxr`` (VHQ) to the requested rate. This is the
preprocessing the thesis assumes before the VAD and the log-mel front end (16 kHz speech).

Samples are float32 in [-1, 1). 16-bit PCM loads exactly (k / 32768), so ``to_int16`` gives the file's original
integers back, which is what the WebRTC VAD and the authors' Sphinx-style feature code consume.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".mp4", ".opus", ".webm")
_SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga")


def to_int16(samples: np.ndarray) -> np.ndarray:
    """(N,) samples -> (N,) int16. int16 input is returned as is; float input in [-1, 1) is scaled by 32768,
    rounded and clipped (exact inverse of how 16-bit PCM is read as float)."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples
    if np.issubdtype(samples.dtype, np.integer):
        return np.clip(samples, -32768, 32767).astype(np.int16)
    return np.clip(np.rint(samples.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def to_float32(samples: np.ndarray) -> np.ndarray:
    """(N,) int16 samples -> (N,) float32 in [-1, 1); float input is returned as float32 unchanged."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / np.float32(32768.0)
    return samples.astype(np.float32, copy=False)


def resample(samples: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) or (N, C) float samples at ``sr_in`` -> float32 at ``sr_out`` (soxr, very high quality)."""
    samples = np.asarray(samples, dtype=np.float32)
    if int(sr_in) == int(sr_out):
        return samples
    import soxr

    return soxr.resample(samples, int(sr_in), int(sr_out), quality="VHQ").astype(np.float32, copy=False)


def _downmix(samples: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) -> (N,) mean over channels."""
    return samples if samples.ndim == 1 else samples.mean(axis=1, dtype=np.float64).astype(np.float32)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (N, C)
    return data, int(sr)


def _read_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        streams = container.streams.audio
        if not streams:
            raise ValueError("no audio stream")
        stream = streams[0]
        # Resample every decoded frame to packed float32, keeping the rate and channel layout.
        resampler = None
        chunks = []
        sr = None
        for frame in container.decode(stream):
            if resampler is None:
                sr = frame.sample_rate
                resampler = av.AudioResampler(format="flt", layout=frame.layout.name, rate=sr)
            for out in resampler.resample(frame):
                arr = out.to_ndarray()  # (1, N*C) packed
                chunks.append(arr.reshape(-1, len(out.layout.channels)))
        if resampler is not None:
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, len(out.layout.channels)))
    if not chunks or sr is None:
        return np.zeros((0, 1), np.float32), int(sr or SAMPLE_RATE)
    return np.concatenate(chunks, axis=0).astype(np.float32, copy=False), int(sr)


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as (N,) float32 mono at ``sr`` Hz.

    Raises ``InputError`` naming the file for a missing file, an undecodable (corrupt or unsupported) file, and a
    file with no samples.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a file")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    errors = []
    suffix = path.suffix.lower()
    if suffix in _SOUNDFILE_EXTENSIONS:
        readers = (_read_soundfile, _read_av)
    elif suffix in AUDIO_EXTENSIONS:
        readers = (_read_av,)
    else:  # unknown extension: let either library recognise the content
        readers = (_read_av, _read_soundfile)
    data = None
    for reader in readers:
        try:
            data, file_sr = reader(path)
            break
        except Exception as e:  # noqa: BLE001 - any decoder failure means "cannot decode", reported below
            errors.append(f"{type(e).__name__}: {e}".strip())
    if data is None:
        detail = errors[0].replace(f"'{path}'", "file").replace(str(path), "file")[:200]
        raise InputError(path, f"cannot decode audio (corrupt or unsupported format; {detail})")
    if data.shape[0] == 0:
        raise InputError(path, "audio file has no samples")
    mono = _downmix(data)
    if not np.all(np.isfinite(mono)):
        raise InputError(path, "audio contains NaN or infinite samples")
    return resample(mono, file_sr, sr)
