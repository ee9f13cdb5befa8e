"""WebRTC voice activity detection exactly as the authors ran it (the preprocessing of every voice recording in the
thesis, Sec. 2.3 and 3.3: speech-bearing regions are kept, the rest dropped).

Settings: aggressiveness mode 2, 20 ms frames (320 samples at 16 kHz), 50 ms padding, i.e. a ring buffer of
``50 // 20 = 2`` frames; a segment starts when more than 90 % of the ring buffer is voiced and ends when more than
90 % of it is unvoiced (the classic py-webrtcvad ``vad_collector``); the speech segments are concatenated.

Two details make the output match the authors' byte for byte (see the data README, "Notes on the reference
features"):

* ``webrtcvad.Vad`` keeps state between calls, and the collector asks it again about every frame still held in
  the padding ring buffer. ``vad`` replays that exact call sequence (``is_speech`` on every buffered frame, oldest
  first, after each new frame) instead of deciding each frame once.
* The frame generator stops while ``offset + frame < len(audio)`` holds, so a final frame that ends exactly at the
  last sample is dropped, and a trailing partial frame is never seen.

Every call of ``vad`` uses a fresh ``webrtcvad.Vad``, so the result depends on the file alone (the authors reused
one object across files, which made results depend on file order).

The frame loop is a Python loop over 20 ms frames by necessity (each decision depends on the detector's state
after the previous calls); the detector itself is C and the loop runs several thousand times faster than real time.
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import InputError
from .io import SAMPLE_RATE, to_int16

MODE = 2
FRAME_MS = 20
PADDING_MS = 50
_TRIGGER_RATIO = 0.9


def _detector_call(detector, sr: int):
    """``call(frame_bytes, n_samples) -> bool``: ``detector.is_speech`` at rate ``sr``; calls the extension function
    directly when the package exposes it (the same C call without the Python wrapper's checks, ~15 % faster)."""
    try:
        import _webrtcvad

        return functools.partial(_webrtcvad.process, detector._vad, sr)
    except (ImportError, AttributeError):
        return lambda buf, n: detector.is_speech(buf, sr, n)


def speech_segments(samples: np.ndarray, sr: int = SAMPLE_RATE, mode: int = MODE, frame_ms: int = FRAME_MS,
                    padding_ms: int = PADDING_MS) -> list[tuple[int, int]]:
    """Speech segments found by the authors' collector, as (first_frame, end_frame) index pairs (end exclusive).

    samples: (N,) int16, or float in [-1, 1). Frame ``k`` covers samples ``[k * L, (k + 1) * L)`` with
    ``L = sr * frame_ms // 1000``.
    """
    import webrtcvad

    pcm = to_int16(samples)
    if sr not in (8000, 16000, 32000, 48000):
        raise ValueError(f"WebRTC VAD needs 8, 16, 32 or 48 kHz audio, got {sr} Hz")
    flen = sr * frame_ms // 1000
    nframes = max(0, -(-len(pcm) // flen) - 1)  # frames with (k + 1) * L < N, as the authors' generator
    data = pcm[: nframes * flen].tobytes()
    nbytes = 2 * flen
    frames = [data[k * nbytes:(k + 1) * nbytes] for k in range(nframes)]
    detector = webrtcvad.Vad(mode)
    process = _detector_call(detector, sr)
    maxlen = padding_ms // frame_ms
    threshold = _TRIGGER_RATIO * maxlen

    segments: list[tuple[int, int]] = []
    ring: list[int] = []  # frame indices held in the padding ring buffer, oldest first
    triggered = False
    start = 0
    for k in range(nframes):
        ring.append(k)
        if len(ring) > maxlen:
            del ring[0]
        voiced = 0
        for j in ring:  # the collector re-asks the detector about every buffered frame, oldest first
            voiced += process(frames[j], flen)
        if not triggered:
            if voiced > threshold:
                triggered = True
                start = ring[0]
                ring = []
        elif len(ring) - voiced > threshold:
            triggered = False
            segments.append((start, k + 1))
            ring = []
    if triggered:
        segments.append((start, nframes))
    return segments


def vad(samples: np.ndarray, sr: int = SAMPLE_RATE, path=None) -> np.ndarray:
    """Keep the speech: (N,) int16 or float samples -> (M,) int16 concatenated speech segments, M <= N.

    Raises ``InputError(path, "no speech found by the VAD")`` when the detector finds no speech (silence, noise,
    or audio shorter than two frames); ``path`` only names the input in that message.
    """
    pcm = to_int16(samples)
    flen = sr * FRAME_MS // 1000
    segments = speech_segments(pcm, sr)
    if not segments:
        raise InputError(path if path is not None else "<audio>", "no speech found by the VAD")
    return np.concatenate([pcm[a * flen:b * flen] for a, b in segments])
