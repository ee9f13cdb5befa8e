"""64-band log mel filterbank features as the authors computed them (Sphinx-derived code), vectorised.

The voice features of every method in the thesis (preprocessing paragraphs of Sec. 2.3, 3.3 and 5.2: 64-d log
mel spectrogram, 25 ms window, 10 ms hop, per-bin mean/variance normalisation). Parameters (``LogMelConfig``): 16 kHz input, 25 ms Hamming window (400 samples), 100 frames
per second (hop 160), pre-emphasis 0.97, nfft 1024, 64 triangular mel filters between 20 and 7200 Hz on the Sphinx
mel scale ``2595 log10(1 + f / 700)``, natural log of the filterbank power clipped below at 1e-5; then per-bin
mean and variance normalisation over the utterance (``cmvn``).

Compatible mode (default) reproduces the authors' extractor exactly, including two quirks of their code:

* pre-emphasis is applied per frame, and the "prior" sample of frame ``t`` is the last sample of frame ``t - 1``
  (not the sample just before frame ``t``); 0 for the first frame;
* the utterance gives ``int(N / 160) + 1`` frames; frames running past the end are filled by cyclic repetition of
  their available samples (``numpy.resize``), an empty final frame by zeros.

``standard=True`` computes the textbook version instead: pre-emphasis over the whole signal (``x[n] - 0.97 x[n-1]``),
frames running past the end are zero-padded. Both give (T, 64) float32 with the same T.

The filterbank follows the Sphinx construction: filter edges equally spaced in mel, mapped to Hz and rounded to the
nearest FFT bin; each triangle has height ``2 / (width in Hz)`` at its centre bin, linear slopes in bin units.

Input samples are int16 (the authors' scale); float input in [-1, 1) is scaled by 32768 first.

Speed: frames are strided views of the pre-emphasised signal (the authors' per-frame pre-emphasis only differs
at each frame's first sample, which is patched), processed in cache-sized blocks of 64 frames with one batched
float64 FFT, and the 64 triangles are applied as 8 banded products (each group of 8 filters touches only its own
FFT bins). Float64 throughout, so the compatible output equals the authors' bit for bit on the reference files.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import as_strided

from .io import SAMPLE_RATE


@dataclass(frozen=True)
class LogMelConfig:
    """Log-mel front end settings (the thesis's and the authors' values)."""

    n_filters: int = 64
    lower_hz: float = 20.0
    upper_hz: float = 7200.0
    sample_rate: int = SAMPLE_RATE
    frame_rate: int = 100
    window_s: float = 0.025
    n_fft: int = 1024
    preemphasis: float = 0.97
    log_floor: float = 1e-5

    @property
    def hop(self) -> int:
        return int(round(self.sample_rate / self.frame_rate))

    @property
    def window(self) -> int:
        return int(self.window_s * self.sample_rate)


DEFAULT = LogMelConfig()
_BLOCK = 64  # frames per vectorised block in logmel (cache-sized temporaries)
_GROUP = 8  # filters per banded filterbank product


def mel(f):
    """Sphinx mel scale: Hz -> mel, ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_inverse(m):
    """Sphinx mel scale inverse: mel -> Hz."""
    return 700.0 * (np.power(10.0, np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def _filterbank_cached(cfg: LogMelConfig) -> np.ndarray:
    nbins = cfg.n_fft // 2 + 1
    dfreq = cfg.sample_rate / cfg.n_fft
    if cfg.upper_hz > cfg.sample_rate / 2:
        raise ValueError(f"upper frequency {cfg.upper_hz} Hz exceeds Nyquist {cfg.sample_rate / 2} Hz")
    mmin, mmax = mel(cfg.lower_hz), mel(cfg.upper_hz)
    edges_hz = mel_inverse(mmin + (mmax - mmin) / (cfg.n_filters + 1) * np.arange(cfg.n_filters + 2))
    edges = np.round(edges_hz / dfreq).astype(np.int64)  # (F+2,) FFT bins, round half to even like Python
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (F, 1)
    height = 2.0 / ((right - left) * dfreq)  # (F, 1)
    k = np.arange(nbins)[None, :]  # (1, nbins)
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where(center != left, (k - left) * height / (center - left), 0.0)
        falling = np.where(center != right, (k - right) * height / (center - right), 0.0)
    fb = np.zeros((cfg.n_filters, nbins))
    fb = np.where((k > left) & (k < center), rising, fb)
    # The Sphinx loop sets the centre bin only when it is reached from the left (center > left).
    fb = np.where((k == center) & (center > left), height, fb)
    # The falling slope starts after the centre, or right after the left edge when left == center.
    fb = np.where((k > np.maximum(center, left)) & (k < right), falling, fb)
    return np.ascontiguousarray(fb.T)  # (nbins, F)


def mel_filterbank(cfg: LogMelConfig = DEFAULT) -> np.ndarray:
    """The (n_fft // 2 + 1, n_filters) float64 Sphinx mel filter matrix (power spectrum @ matrix = mel energies)."""
    return _filterbank_cached(cfg).copy()


def _as_pcm_scale(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"expected (N,) mono samples, got shape {samples.shape}")
    if samples.dtype == np.int16 or np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float64)
    return samples.astype(np.float64) * 32768.0


def _frame_parts(x: np.ndarray, cfg: LogMelConfig, standard: bool) -> tuple[np.ndarray, np.ndarray]:
    """(N,) -> (full, tail): ``full`` (T_full, W) a strided view of the frames lying inside the signal (no copy),
    ``tail`` (T - T_full, W) the few frames running past the end, cyclically repeated (compatible, as
    ``numpy.resize``; an empty frame gives zeros) or zero-padded (``standard``). T = int(N / hop) + 1."""
    n, hop, win = len(x), cfg.hop, cfg.window
    t = int(n / hop) + 1
    n_full = min(t, 0 if n < win else (n - win) // hop + 1)
    full = as_strided(x, shape=(n_full, win), strides=(hop * x.strides[0], x.strides[0]), writeable=False)
    starts = np.arange(n_full, t) * hop  # (P,) tail frame starts
    avail = np.minimum(n - starts, win)[:, None]  # (P, 1) samples left, >= 0
    j = np.arange(win)[None, :]  # (1, W)
    if standard:
        idx, valid = starts[:, None] + j, j < avail
    else:
        idx, valid = starts[:, None] + j % np.maximum(avail, 1), np.broadcast_to(avail > 0, (len(starts), win))
    tail = np.where(valid, x[np.clip(idx, 0, max(n - 1, 0))] if n else 0, 0).astype(x.dtype)
    return full, tail


def frames(samples: np.ndarray, cfg: LogMelConfig = DEFAULT, standard: bool = False) -> np.ndarray:
    """(N,) samples -> (T, W) frames (a copy), ``T = int(N / hop) + 1``, ``W`` = window length, before
    pre-emphasis. Frames that run past the end are cyclically repeated (compatible) or zero-padded (``standard``).
    """
    full, tail = _frame_parts(np.ascontiguousarray(samples), cfg, standard)
    return np.concatenate([full, tail])


def logmel(samples: np.ndarray, cfg: LogMelConfig = DEFAULT, standard: bool = False) -> np.ndarray:
    """(N,) samples (int16, or float in [-1, 1)) -> (T, 64) float32 log mel energies, T = int(N / 160) + 1.

    Compatible with the authors' features by default; ``standard=True`` drops their two quirks (module docstring).
    Stateless: each call starts from a fresh "prior" of 0.
    """
    x = _as_pcm_scale(samples)  # (N,) float64, int16 scale
    alpha = cfg.preemphasis
    # Signal-wide pre-emphasis y[n] = x[n] - alpha x[n-1]; inside a frame this is also what the authors' per-frame
    # pre-emphasis computes, except at the frame's first sample, fixed below.
    y = np.empty_like(x)
    y[:1] = x[:1]
    np.subtract(x[1:], alpha * x[:-1], out=y[1:])
    full, tail = _frame_parts(y, cfg, standard=True)  # (T_full, W) strided view; zero-padded tail frames
    if standard:
        first = None
    else:
        raw_full, raw_tail = _frame_parts(x, cfg, standard=False)
        # The authors' prior: the last raw sample of the previous frame (0 for the first frame).
        prior = np.concatenate([[0.0], raw_full[:, -1], raw_tail[:, -1]])  # (T + 1,)
        first = raw_full[:, 0] - alpha * prior[:len(raw_full)]  # (T_full,) first pre-emphasised sample
        tail = np.empty_like(raw_tail)  # the cyclically repeated tail frames, pre-emphasised one by one
        tail[:, 1:] = raw_tail[:, 1:] - alpha * raw_tail[:, :-1]
        tail[:, 0] = raw_tail[:, 0] - alpha * prior[len(raw_full):len(raw_full) + len(raw_tail)]
    t = len(full) + len(tail)
    out = np.empty((t, cfg.n_filters), dtype=np.float32)
    work = _Workspace(cfg, min(_BLOCK, t))
    # Blocks of _BLOCK frames keep the temporaries in cache (whole-utterance arrays run 2-3x slower);
    # every operation inside a block is vectorised over its frames.
    for s in range(0, len(full), _BLOCK):
        e = min(s + _BLOCK, len(full))
        work.log_energies(full[s:e], None if first is None else first[s:e], out=out[s:e])
    if len(tail):
        work.log_energies(tail, None, out=out[len(full):])
    return out


class _Workspace:
    """Reused buffers for ``logmel``'s blocks: B pre-emphasised frames -> (B, F) log energies."""

    def __init__(self, cfg: LogMelConfig, rows: int):
        self.cfg = cfg
        self.groups = _filterbank_groups(cfg)
        self.hamming = _hamming(cfg.window)
        self.buf = np.zeros((rows, cfg.n_fft))  # (B, nfft) zero-padded FFT input
        self.energies = np.empty((rows, cfg.n_filters))  # (B, F)

    def log_energies(self, block: np.ndarray, first: np.ndarray | None, out: np.ndarray) -> None:
        """block: (b, W) pre-emphasised frames; first: (b,) replacement first samples or None;
        out: (b, F) float32 receives the log filterbank energies."""
        cfg, b = self.cfg, len(block)
        emph = self.buf[:b, :cfg.window]  # (b, W) view into the FFT input
        np.multiply(block, self.hamming, out=emph)
        if first is not None:
            np.multiply(first, self.hamming[0], out=emph[:, 0])
        spec = scipy.fft.rfft(self.buf[:b], axis=1, workers=1)  # (b, nfft/2+1) complex128
        parts = spec.view(np.float64)  # (b, nfft+2): re, im interleaved
        np.square(parts, out=parts)
        power = parts[:, 0::2]  # (b, nfft/2+1) strided view
        power += parts[:, 1::2]  # |X|^2
        e = self.energies[:b]
        for f0, f1, k0, k1, weights in self.groups:  # banded filterbank: each group only sees its own bins
            np.matmul(power[:, k0:k1], weights, out=e[:, f0:f1])
        np.log(np.maximum(e, cfg.log_floor, out=e), out=out, casting="same_kind")


@lru_cache(maxsize=4)
def _hamming(n: int) -> np.ndarray:
    return np.hamming(n)


@lru_cache(maxsize=8)
def _filterbank_groups(cfg: LogMelConfig) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """The filterbank cut into groups of ``_GROUP`` consecutive filters, each with the FFT-bin range it covers:
    (first filter, end filter, first bin, end bin, (k1 - k0, f1 - f0) weights). The triangles are narrow, so
    these small products do ~1/8 of the work of the full (nbins, F) matrix product, with identical sums."""
    fb = _filterbank_cached(cfg)  # (nbins, F)
    groups = []
    for f0 in range(0, fb.shape[1], _GROUP):
        sub = fb[:, f0:f0 + _GROUP]
        used = np.nonzero(sub.any(axis=1))[0]
        k0, k1 = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
        groups.append((f0, f0 + sub.shape[1], k0, k1, np.ascontiguousarray(sub[k0:k1])))
    return tuple(groups)


def cmvn(feat: np.ndarray) -> np.ndarray:
    """Per-bin mean and variance normalisation over time: (T, F) -> (T, F) float32 (the authors' float32 steps:
    subtract the mean, divide by std + float32 eps)."""
    feat = np.asarray(feat, dtype=np.float32)
    feat = feat - feat.mean(axis=0)
    return feat / (feat.std(axis=0) + np.finfo(np.float32).eps)


def extract_features(source, sr: int = SAMPLE_RATE, *, standard: bool = False, normalize: bool = True,
                     cfg: LogMelConfig = DEFAULT) -> np.ndarray:
    """The thesis's voice front end for one recording: load, VAD, log mel, CMVN -> (T, 64) float32.

    source: a file path (any format ``load_audio`` reads; resampled to 16 kHz mono), or an (N,) array of samples at
    ``sr`` Hz (int16, or float in [-1, 1); resampled to 16 kHz when ``sr`` differs). ``standard`` selects the
    textbook log mel (``logmel``); ``normalize=False`` returns the log mel before CMVN. Fresh VAD and extractor
    state per call. Raises ``InputError`` for unreadable audio and for recordings where the VAD finds no speech.
    """
    from .io import load_audio, resample, to_float32
    from .vad import vad

    if isinstance(source, np.ndarray):
        samples, name = source, None
        if samples.ndim != 1:
            raise ValueError(f"expected (N,) mono samples, got shape {samples.shape}")
        if sr != cfg.sample_rate:
            samples = resample(to_float32(samples), sr, cfg.sample_rate)
    else:
        name = source
        samples = load_audio(source, cfg.sample_rate)
    speech = vad(samples, cfg.sample_rate, path=name)  # (M,) int16
    feat = logmel(speech, cfg, standard=standard)  # (T, F)
    return cmvn(feat) if normalize else feat
