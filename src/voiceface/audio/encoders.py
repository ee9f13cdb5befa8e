"""Voice embedding networks F_e for the voice-to-face GAN (Sec. 3.2.1: pretrained on speaker identification, frozen).

Three choices, one interface (``VoiceEncoder``):

* ``own``: our ``VoiceEmbedNet`` (Table 3.2) pretrained here by speaker classification on any manifest
  (``pretrain_own``, a short ``engine.fit`` run) -> 64-d.
* ``dimnet``: the voice network of a DIMNet run (``voiceface.methods.dimnet``), when that package offers a loader.
* ``ge2e``: the pretrained GE2E speaker encoder shipped inside the ``resemblyzer`` wheel (3-layer LSTM, 256-d,
  trained on LibriSpeech / VoxCeleb). resemblyzer's own package imports librosa at import time, so we never import
  it: we read ``pretrained.pt`` from the installed wheel (``weights_only=True``, no download) into our own module of
  the same architecture, and compute its 40-band mel input with numpy (librosa's Slaney mel filterbank, 25 ms Hann
  window, 10 ms hop, power spectrum, centred frames).

Every encoder maps audio samples to a (T, F) feature matrix at 100 frames/s (``features``) and a batch of feature
crops (B, F, T) to (B, dim) L2-normalised embeddings (``embed``), so the GAN's training crops work for all three.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError, MissingDependencyError
from .features import cmvn, logmel
from .io import to_float32, to_int16
from .vad import vad

FRAMES_PER_SECOND = 100


class VoiceEncoder(Protocol):
    name: str
    dim: int
    feature_bins: int

    def features(self, samples: np.ndarray, use_vad: bool = True, path=None) -> np.ndarray:
        """(N,) 16 kHz samples -> (T, feature_bins) float32."""

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, feature_bins, T) -> (B, dim), L2-normalised, no grad."""


def logmel_features(samples: np.ndarray, use_vad: bool = True, path=None) -> np.ndarray:
    """The thesis's voice input (Sec. 3.3): WebRTC VAD, 64-band log-mel, per-bin CMVN: (N,) -> (T, 64) float32.

    ``use_vad=False`` skips the VAD (noise inputs for Fig. 3.2 have no speech for it to keep).
    """
    pcm = to_int16(samples)
    if use_vad:
        pcm = vad(pcm, path=path)
    if len(pcm) < 400:
        raise InputError(path if path is not None else "<audio>", "too short for one 25 ms analysis frame")
    return cmvn(logmel(pcm))


def repeat_to(feats: np.ndarray, frames: int) -> np.ndarray:
    """Repeat a (T, F) recording cyclically until it has ``frames`` frames (the authors' 10 s rule); longer ones are kept."""
    t = feats.shape[0]
    if t >= frames:
        return feats
    return feats[np.arange(frames) % t]


class LogMelEncoder:
    """A (frozen) ``VoiceEmbedNet``-like module on 64-band log-mel: the ``own`` and ``dimnet`` choices."""

    feature_bins = 64

    def __init__(self, net: nn.Module, name: str, dim: int, device: torch.device | str = "cpu"):
        self.net = net.eval().to(device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.name, self.dim, self.device = name, dim, torch.device(device)

    def features(self, samples: np.ndarray, use_vad: bool = True, path=None) -> np.ndarray:
        return logmel_features(samples, use_vad, path)

    @torch.no_grad()
    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, 64, T) -> (B, dim) unit vectors (BatchNorm always in eval mode: F_e is frozen)."""
        self.net.eval()
        return F.normalize(self.net(feats.to(self.device)), dim=1)


# ---------------------------------------------------------------------------------------------------------------
# GE2E (resemblyzer's pretrained weights, our own module and mel front end)

GE2E_SR, GE2E_NFFT, GE2E_HOP, GE2E_MELS, GE2E_PARTIAL = 16000, 400, 160, 40, 160


def _slaney_hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep, lin)


def _slaney_mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * (200.0 / 3))


@lru_cache(maxsize=2)
def slaney_mel_filterbank(sr: int = GE2E_SR, n_fft: int = GE2E_NFFT, n_mels: int = GE2E_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney-normalised triangular mel filters (as librosa.filters.mel's defaults)."""
    fft_hz = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_hz = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(0.0), _slaney_hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_hz)                                          # (n_mels + 1,)
    ramps = mel_hz[:, None] - fft_hz[None, :]                        # (n_mels + 2, bins)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]


def ge2e_mel(samples: np.ndarray) -> np.ndarray:
    """(N,) 16 kHz float samples -> (T, 40) float32 mel power spectrogram, T = 1 + N // 160 (centred frames,
    reflect padding, periodic Hann window of 400 samples, |STFT|^2 through the Slaney filterbank)."""
    x = to_float32(samples).astype(np.float64)
    pad = GE2E_NFFT // 2
    mode = "reflect" if len(x) > pad else "constant"
    x = np.pad(x, pad, mode=mode)
    t = 1 + (len(x) - GE2E_NFFT) // GE2E_HOP
    idx = np.arange(GE2E_NFFT)[None, :] + GE2E_HOP * np.arange(t)[:, None]     # (T, 400)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(GE2E_NFFT) / GE2E_NFFT)  # periodic Hann
    spec = np.fft.rfft(x[idx] * window, axis=1)                                # (T, 201)
    power = spec.real ** 2 + spec.imag ** 2
    return (power @ slaney_mel_filterbank().T).astype(np.float32)             # (T, 40)


class GE2ENet(nn.Module):
    """The GE2E speaker encoder architecture: LSTM(40 -> 256, 3 layers) -> Linear(256 -> 256) -> ReLU -> L2 norm."""

    def __init__(self, n_mels: int = GE2E_MELS, hidden: int = 256, dim: int = 256, layers: int = 3):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, dim)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, T, 40) -> (B, 256) unit vectors (from the last layer's final hidden state)."""
        _, (hidden, _) = self.lstm(mels)
        return F.normalize(F.relu(self.linear(hidden[-1])), dim=1)


def resemblyzer_weights() -> Path:
    """Path of ``pretrained.pt`` inside the installed resemblyzer wheel (found without importing the package)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "resemblyzer", None, "the GE2E voice encoder",
            # its declared deps (librosa, a source build of webrtcvad) are not needed: we read only its weights
            command="pip install --no-deps 'resemblyzer>=0.1.4'")
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.is_file():
        raise InputError(path, "resemblyzer is installed but its pretrained.pt is missing")
    return path


class GE2EEncoder:
    """resemblyzer's pretrained GE2E encoder behind the ``VoiceEncoder`` interface (256-d).

    ``features``: volume-normalised (-30 dBFS, increase only, as resemblyzer) and VAD-trimmed samples -> (T, 40) mel.
    ``embed``: each (40, T) crop is cut into 160-frame partials with a hop of 80 frames (short crops repeated), the
    partial embeddings averaged and L2-normalised, as resemblyzer's ``embed_utterance`` does.
    """

    name, dim, feature_bins = "ge2e", 256, GE2E_MELS

    def __init__(self, device: torch.device | str = "cpu", weights: str | os.PathLike | None = None):
        path = Path(weights) if weights else resemblyzer_weights()
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = ckpt.get("model_state", ckpt)
        self.net = GE2ENet()
        self.net.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")})
        self.net.eval().to(device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.device = torch.device(device)

    def features(self, samples: np.ndarray, use_vad: bool = True, path=None) -> np.ndarray:
        x = to_float32(samples)
        if use_vad:
            x = to_float32(vad(to_int16(x), path=path))
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
        if rms > 0:
            gain_db = -30.0 - 20 * np.log10(rms)
            if gain_db > 0:
                x = x * np.float32(10 ** (gain_db / 20))
        return ge2e_mel(x)

    @torch.no_grad()
    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, 40, T) -> (B, 256)."""
        feats = feats.to(self.device).transpose(1, 2)                  # (B, T, 40)
        b, t, m = feats.shape
        if t < GE2E_PARTIAL:
            feats = feats[:, torch.arange(GE2E_PARTIAL, device=feats.device) % t]
            t = GE2E_PARTIAL
        parts = feats.unfold(1, GE2E_PARTIAL, GE2E_PARTIAL // 2)         # (B, P, 40, 160)
        p = parts.shape[1]
        parts = parts.permute(0, 1, 3, 2).reshape(b * p, GE2E_PARTIAL, m)
        emb = self.net(parts).view(b, p, -1).mean(1)                      # (B, 256)
        return F.normalize(emb, dim=1)


# ---------------------------------------------------------------------------------------------------------------
# loading by name

def dimnet_encoder(run: str | os.PathLike, device: torch.device | str = "cpu") -> LogMelEncoder:
    """The voice network of a DIMNet run, through ``voiceface.methods.dimnet``'s public loader ``load_voice_net``."""
    try:
        from ..methods import dimnet
    except ImportError:
        raise ConfigError("encoder.kind=dimnet needs voiceface.methods.dimnet, which is not in this installation") from None
    loader = getattr(dimnet, "load_voice_net", None)
    if loader is None:
        raise ConfigError("voiceface.methods.dimnet offers no load_voice_net(run) loader; use encoder.kind=own")
    net = loader(run)
    dim = int(getattr(net, "embed_dim", 0) or net(torch.zeros(1, 64, 100)).shape[1])
    return LogMelEncoder(net, "dimnet", dim, device)


def encoder_names() -> Sequence[str]:
    return ("own", "dimnet", "ge2e")
