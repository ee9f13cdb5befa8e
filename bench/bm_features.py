"""Benchmark: voice front end (WebRTC VAD + 64-band log mel + CMVN), seconds of audio per second on one core.

Ours (``voiceface.audio``: replayed VAD collector, block-vectorised log mel) against a straightforward per-frame
numpy implementation of the same pipeline written here (py-webrtcvad-example style collector over frame objects,
then one Python iteration per 10 ms frame: numpy.resize, pre-emphasis, window, rfft, filterbank, log), timed in the
same run on the same decoded samples: the 10 real VoxCeleb1 utterances and the 100 LibriSpeech test-other FLACs.
Decoding is not timed (both pipelines would share it). Times are CPU seconds of this process
(``time.process_time``), since the machine is shared; BLAS/OpenMP are pinned to one thread. The baseline's output is checked to equal ours first.

Run: .venv/bin/python bench/bm_features.py [--data ../shared/data] [--repeats 3]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, set before numpy loads
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from voiceface.audio import cmvn, load_audio, logmel, to_int16, vad  # noqa: E402
from voiceface.audio.features import mel_filterbank  # noqa: E402


def loop_vad(pcm: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Baseline VAD: frame objects in a deque ring buffer, list comprehensions re-asking the detector."""
    import webrtcvad

    detector = webrtcvad.Vad(2)
    raw = pcm.tobytes()
    step = 2 * sr * 20 // 1000
    chunks = [raw[o:o + step] for o in range(0, len(raw) - step, step)]  # the frames with offset + step < len
    ring = collections.deque(maxlen=2)
    triggered, voiced, out = False, [], []
    for chunk in chunks:
        ring.append(chunk)
        if not triggered:
            if len([c for c in ring if detector.is_speech(c, sr)]) > 0.9 * ring.maxlen:
                triggered = True
                voiced.extend(ring)
                ring.clear()
        else:
            voiced.append(chunk)
            if len([c for c in ring if not detector.is_speech(c, sr)]) > 0.9 * ring.maxlen:
                triggered = False
                out.append(b"".join(voiced))
                ring.clear()
                voiced = []
    if voiced:
        out.append(b"".join(voiced))
    return np.frombuffer(b"".join(out), dtype=np.int16)


def loop_logmel(pcm: np.ndarray, fb: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Baseline log mel: one Python iteration per frame."""
    n_frames = int(len(pcm) / 160) + 1
    out = np.zeros((n_frames, fb.shape[1]))
    prior = 0.0
    for t in range(n_frames):
        frame = pcm[t * 160:t * 160 + 400].astype(np.float64)
        if len(frame) < 400:
            frame = np.resize(frame, 400)
        emph = np.empty(400)
        emph[0] = frame[0] - 0.97 * prior
        emph[1:] = frame[1:] - 0.97 * frame[:-1]
        prior = frame[-1]
        spec = np.fft.rfft(emph * win, 1024)
        out[t] = np.log(np.clip((spec.real ** 2 + spec.imag ** 2) @ fb, 1e-5, None))
    return out.astype(np.float32)


def ours(pcm):
    return cmvn(logmel(vad(pcm)))


def make_loop():
    fb, win = mel_filterbank(), np.hamming(400)
    return lambda pcm: cmvn(loop_logmel(loop_vad(pcm), fb, win))


def time_pipeline(fn, signals) -> float:
    """CPU seconds of this (single-threaded) process: robust to other jobs sharing the machine's cores."""
    start = time.process_time()
    for pcm in signals:
        fn(pcm)
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("VOICEFACE_SHARED_DATA",
                                                     Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per pipeline (best is reported)")
    args = ap.parse_args()
    data = Path(args.data)
    files = sorted((data / "voxceleb1_samples").glob("*.wav")) + sorted(
        (data / "librispeech_test_other").rglob("*.flac"))
    if not files:
        raise SystemExit(f"no audio found under {data}")
    signals = [to_int16(load_audio(f)) for f in files]
    seconds = sum(len(s) for s in signals) / 16000
    loop = make_loop()
    for pcm in signals:  # the baseline computes the same thing
        assert np.abs(loop(pcm) - ours(pcm)).max() < 1e-4
    best = {"vectorised (voiceface.audio)": np.inf, "per-frame loop": np.inf}
    for _ in range(args.repeats):  # alternate so load changes hit both
        best["vectorised (voiceface.audio)"] = min(best["vectorised (voiceface.audio)"], time_pipeline(ours, signals))
        best["per-frame loop"] = min(best["per-frame loop"], time_pipeline(loop, signals))
    vad_only = min(time_pipeline(vad, signals) for _ in range(args.repeats))
    print(f"{len(files)} files, {seconds:.1f} s of audio (VoxCeleb1 + LibriSpeech), one core, CPU time, "
          f"best of {args.repeats}")
    for name, t in best.items():
        print(f"  {name:30s} {t:7.3f} cpu-s   {seconds / t:8.0f}x real time")
    print(f"  {'(our VAD alone)':30s} {vad_only:7.3f} cpu-s   {seconds / vad_only:8.0f}x real time")
    ratio = best["per-frame loop"] / best["vectorised (voiceface.audio)"]
    print(f"speed-up vectorised / loop: {ratio:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
