"""Loading every supported format, downmixing and resampling, and one-line errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from voiceface.audio import load_audio, resample, to_float32, to_int16
from voiceface.errors import InputError


@pytest.fixture(scope="module")
def speech(voxceleb1_samples):
    x, sr = sf.read(voxceleb1_samples / "Alan_Tudyk.wav", dtype="float32")
    return x[:24000], sr  # 1.5 s of real speech


def _encode_av(path, x, sr, codec):
    av = pytest.importorskip("av")
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV build has no {codec} encoder")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sr, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([x, x]).astype(np.float32), format="fltp", layout="stereo")
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_wav_loads_exactly_and_int16_round_trips(voxceleb1_samples):
    path = voxceleb1_samples / "Alan_Tudyk.wav"
    x = load_audio(path)
    pcm, _ = sf.read(path, dtype="int16")
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.array_equal(to_int16(x), pcm)
    assert np.array_equal(to_int16(to_float32(pcm)), pcm)


def test_flac_is_lossless(tmp_path, speech):
    x, sr = speech
    sf.write(tmp_path / "a.flac", x, sr, subtype="PCM_16")
    assert np.array_equal(load_audio(tmp_path / "a.flac"), x)


def test_ogg_vorbis_loads(tmp_path, speech):
    x, sr = speech
    sf.write(tmp_path / "a.ogg", x, sr, format="OGG", subtype="VORBIS")
    y = load_audio(tmp_path / "a.ogg")
    assert abs(len(y) - len(x)) < 0.05 * sr
    assert _rms(y) == pytest.approx(_rms(x), rel=0.2)


@pytest.mark.parametrize("ext,codec", [("mp3", "libmp3lame"), ("m4a", "aac")])
def test_compressed_formats_load_through_av(tmp_path, speech, ext, codec):
    x, sr = speech
    path = tmp_path / f"a.{ext}"
    _encode_av(path, x, sr, codec)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(x)) < 0.2 * sr  # encoder delay / padding only
    assert _rms(y) == pytest.approx(_rms(x), rel=0.2)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    sr = 44100
    t = np.arange(int(1.0 * sr)) / sr
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), sr, subtype="FLOAT")
    y = load_audio(tmp_path / "s.wav")
    assert y.ndim == 1 and len(y) == 16000
    mid = y[1000:-1000]  # away from the resampler's edges
    expected = 0.4 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)[1000:-1000]
    assert np.abs(mid - expected).max() < 1e-3
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 440) <= 1.0


def test_resample_is_identity_at_target_rate():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert np.array_equal(resample(x, 16000, 16000), x)


def test_missing_file_error(tmp_path):
    with pytest.raises(InputError, match="file not found") as e:
        load_audio(tmp_path / "nope.wav")
    assert "nope.wav" in str(e.value)


def test_corrupt_file_error_names_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage that is not audio" * 3)
    with pytest.raises(InputError) as e:
        load_audio(bad)
    msg = str(e.value)
    assert msg.startswith(str(bad)) and "cannot decode audio" in msg and "\n" not in msg


def test_empty_files_error(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load_audio(tmp_path / "zero.wav")
    sf.write(tmp_path / "nosamples.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match="no samples"):
        load_audio(tmp_path / "nosamples.wav")
