"""The vectorised log mel against a plain per-frame oracle, the Sphinx filterbank, CMVN, and edge cases."""
from __future__ import annotations

import numpy as np
import pytest

from voiceface.audio import cmvn, logmel, mel_filterbank
from voiceface.audio.features import DEFAULT, mel, mel_inverse


def _oracle(pcm: np.ndarray, standard: bool) -> np.ndarray:
    """Per-frame loop written from the description (not from features.py): (N,) int16 -> (T, 64)."""
    x = pcm.astype(np.float64)
    if standard:
        x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    fb, win, prior, rows = mel_filterbank(), np.hamming(400), 0.0, []
    for t in range(int(len(x) / 160) + 1):
        frame = x[t * 160:t * 160 + 400]
        if len(frame) < 400:
            frame = np.concatenate([frame, np.zeros(400 - len(frame))]) if standard else np.resize(frame, 400)
        if not standard:
            emph = frame - 0.97 * np.concatenate([[prior], frame[:-1]])
            prior = frame[-1]
            frame = emph
        power = np.abs(np.fft.rfft(frame * win, 1024)) ** 2
        rows.append(np.log(np.maximum(power @ fb, 1e-5)))
    return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize("n", [0, 1, 159, 160, 399, 400, 401, 3217, 16000])
@pytest.mark.parametrize("standard", [False, True])
def test_vectorised_logmel_equals_per_frame_loop(n, standard):
    pcm = (np.random.default_rng(n).standard_normal(n) * 3000).astype(np.int16)
    out = logmel(pcm, standard=standard)
    ref = _oracle(pcm, standard)
    assert out.shape == (int(n / 160) + 1, 64) == ref.shape
    assert np.abs(out - ref).max() < 1e-5


def test_float_input_is_scaled_to_int16_range():
    pcm = (np.random.default_rng(1).standard_normal(4000) * 2000).astype(np.int16)
    assert np.abs(logmel(pcm) - logmel(pcm.astype(np.float32) / 32768)).max() < 1e-5


def test_sphinx_filterbank_shape_and_triangles():
    fb = mel_filterbank()  # (513, 64)
    assert fb.shape == (DEFAULT.n_fft // 2 + 1, 64)
    assert (fb >= 0).all()
    dfreq = 16000 / 1024
    peaks = fb.argmax(axis=0)
    assert np.all(np.diff(peaks) > 0)  # centres strictly increasing
    nz = np.nonzero(fb.any(axis=1))[0]
    assert nz[0] * dfreq >= 20 - dfreq and nz[-1] * dfreq <= 7200
    edges = np.round(mel_inverse(np.linspace(mel(20.0), mel(7200.0), 66)) / dfreq).astype(int)
    heights = 2.0 / ((edges[2:] - edges[:-2]) * dfreq)
    assert np.allclose(fb.max(axis=0), heights)  # Sphinx: peak 2 / (width in Hz)
    assert np.allclose(mel_inverse(mel(np.array([20.0, 1000.0, 7200.0]))), [20.0, 1000.0, 7200.0])


def test_cmvn_normalises_each_bin():
    feat = np.random.default_rng(2).standard_normal((300, 64)).astype(np.float32) * 4 + 7
    out = cmvn(feat)
    assert out.dtype == np.float32
    assert np.abs(out.mean(axis=0)).max() < 1e-5
    assert np.abs(out.std(axis=0) - 1).max() < 1e-4


def test_log_floor_on_digital_silence():
    out = logmel(np.zeros(1600, np.int16))
    assert np.allclose(out, np.log(1e-5))


def test_rejects_multichannel():
    with pytest.raises(ValueError, match="mono"):
        logmel(np.zeros((100, 2), np.int16))
