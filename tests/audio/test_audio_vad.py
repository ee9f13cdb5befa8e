"""The authors' WebRTC VAD collector: defined behaviour on silence, segment structure, input types."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from voiceface.audio import extract_features, speech_segments, vad
from voiceface.errors import InputError


def test_silence_only_raises_no_speech(tmp_path):
    with pytest.raises(InputError, match="no speech found by the VAD"):
        vad(np.zeros(32000, np.int16))
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(32000, np.float32), 16000)
    with pytest.raises(InputError) as e:
        extract_features(path)
    assert str(e.value) == f"{path}: no speech found by the VAD"


def test_too_short_for_two_frames_raises():
    with pytest.raises(InputError, match="no speech"):
        vad(np.zeros(320, np.int16))


def test_segments_are_whole_frames_of_the_input(voxceleb1_samples):
    pcm, _ = sf.read(voxceleb1_samples / "Damian_Lewis.wav", dtype="int16")
    segs = speech_segments(pcm)
    assert segs and all(a < b for a, b in segs)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(segs, segs[1:]))
    assert segs[-1][1] <= -(-len(pcm) // 320) - 1  # a final frame ending at the last sample is never seen
    kept = vad(pcm)
    assert len(kept) == 320 * sum(b - a for a, b in segs)
    assert np.array_equal(kept, np.concatenate([pcm[a * 320:b * 320] for a, b in segs]))


def test_float_and_int16_inputs_agree(voxceleb1_samples):
    pcm, _ = sf.read(voxceleb1_samples / "Eoin_Macken.wav", dtype="int16")
    assert np.array_equal(vad(pcm), vad(pcm.astype(np.float32) / 32768))


def test_speech_between_silences_is_kept(voxceleb1_samples):
    pcm, _ = sf.read(voxceleb1_samples / "Gilles_Marini.wav", dtype="int16")
    padded = np.concatenate([np.zeros(16000, np.int16), pcm[:32000], np.zeros(16000, np.int16)])
    segs = speech_segments(padded)
    assert segs[0][0] >= 40  # the leading second of digital silence (50 frames) is mostly dropped
    assert len(vad(padded)) < len(padded) - 16000


def test_extract_features_resamples_arrays(voxceleb1_samples):
    from voiceface.audio import load_audio

    x16 = load_audio(voxceleb1_samples / "Suraj_Sharma.wav")
    x48 = load_audio(voxceleb1_samples / "Suraj_Sharma.wav", sr=48000)
    assert abs(len(x48) - 3 * len(x16)) <= 3
    a, b = extract_features(x16), extract_features(x48, sr=48000)
    assert a.shape[1] == b.shape[1] == 64 and abs(len(a) - len(b)) <= 0.1 * len(a)
    assert np.isfinite(b).all()
