"""Benchmark: the simulated world's generation speed, on this machine, one thread.

    .venv/bin/python bench/bm_sim.py [identities]

1. Voices: seconds of speech synthesised per second by ``voices.synthesize`` (per-frame filters applied in the
   STFT domain), against a baseline in the same run: the classic time-domain Klatt cascade (the same five formant
   resonators and nasal pole/zero, coefficients updated every 5 ms, ``scipy.signal.lfilter`` per block with its
   state carried over) filtering the same source.
2. Faces: aligned still photos per second rendered in batches of 8 against one at a time.
3. World: people, audio seconds and images (stills + clip frames) per second for a full serial build of
   ``identities`` people with the ``small`` preset's settings.
"""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
from scipy import signal

from voiceface.sim import PRESETS, build_world, faces, people, voices
from voiceface.sim.world import _render_kit


def _klatt_time_domain(src: np.ndarray, form: np.ndarray, bws: np.ndarray, block: int) -> np.ndarray:
    """Baseline: cascade of time-varying 2nd-order resonators, coefficients per block, state carried over.

    Args:
        src: (N,) excitation.  form, bws: (N // block + 1, K) centre frequencies and bandwidths per block.
    """
    y = src.copy()
    zi = np.zeros((form.shape[1], 2))
    out = np.empty_like(y)
    for b in range(0, len(y), block):
        x = y[b:b + block]
        k = b // block
        for j in range(form.shape[1]):
            r = np.exp(-np.pi * bws[k, j] / voices.SAMPLE_RATE)
            c = np.cos(2 * np.pi * form[k, j] / voices.SAMPLE_RATE)
            a = [1.0, -2 * r * c, r * r]
            x, zi[j] = signal.lfilter([1 - 2 * r * c + r * r], a, x, zi=zi[j])
        out[b:b + block] = x
    return out


def bench_voices(n: int = 12, seconds: float = 4.0) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    ps = [people.make_person(f"p{i}", i).voice(1.0) for i in range(n)]
    voices.synthesize(ps[0], 1.0, rng)                                           # warm-up
    t0 = time.perf_counter()
    for p in ps:
        voices.synthesize(p, seconds, rng, voices.sample_session(rng))
    ours = n * seconds / (time.perf_counter() - t0)
    block = voices.SAMPLE_RATE // 200                                           # 5 ms
    nsamp = int(seconds * voices.SAMPLE_RATE)
    t0 = time.perf_counter()
    for p in ps:                                                                # the same work, time domain
        tr = voices._build_tracks(rng, int(seconds * 1000) + 1, p.rate_syl_s)
        f0 = np.full(nsamp, p.f0_hz)
        dflow, _ = voices._glottal_source(rng, f0, p)
        ms = np.arange(0, nsamp, block) * 1000 // voices.SAMPLE_RATE
        form = voices._smooth(tr.formants, 45)[ms] * voices.REF_VTL_CM / p.vtl_cm
        form = np.concatenate([form, np.full((len(ms), 1), 4500.0), np.full((len(ms), 2), p.nasal_pole_hz)], 1)
        bws = np.broadcast_to([60.0, 90.0, 140.0, 200.0, 280.0, p.nasal_bw_hz, p.nasal_bw_hz], form.shape)
        _klatt_time_domain(dflow, form, bws, block)
    base = n * seconds / (time.perf_counter() - t0)
    return ours, base


def bench_faces(n: int = 16, size: int = 160) -> tuple[float, float]:
    kit = _render_kit()
    model = people.face_model()
    p = people.make_person("x", 0)
    shapes = model.shape(torch.as_tensor(np.repeat(p.id_coeffs[None], n, 0), dtype=torch.float32))
    alb = p.albedo()
    rng = np.random.default_rng(0)
    faces.aligned_stills(kit, rng, shapes[:1], alb, size)                      # warm-up
    t0 = time.perf_counter()
    for s in range(0, n, 8):
        faces.aligned_stills(kit, rng, shapes[s:s + 8], alb, size)
    batched = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for s in range(n):
        faces.aligned_stills(kit, rng, shapes[s:s + 1], alb, size)
    single = n / (time.perf_counter() - t0)
    return batched, single


def bench_world(identities: int) -> dict[str, float]:
    small = PRESETS["small"]
    preset = replace(small, name="bench", identities=identities, split=(identities - 2, 1, 1))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build_world(tmp, preset, seed=0, workers=1, progress=False)
        dt = time.perf_counter() - t0
    audio = identities * preset.utterances * np.mean(preset.duration_s)
    images = identities * (preset.images + preset.clips * np.mean(preset.clip_frames))
    return {"seconds": dt, "people_s": identities / dt, "audio_s_s": audio / dt, "images_s": images / dt}


def main(identities: int = 12) -> None:
    torch.set_num_threads(1)
    people.population()
    ours, base = bench_voices()
    print(f"voices: {ours:.1f} s of speech per s (STFT-domain filters) vs {base:.1f} s/s (time-domain Klatt "
          f"cascade, 5 ms blocks): {ours / base:.1f}x")
    batched, single = bench_faces()
    print(f"faces: {batched:.1f} aligned stills/s (batches of 8, 160 px) vs {single:.1f}/s one at a time: "
          f"{batched / single:.1f}x")
    w = bench_world(identities)
    print(f"world (small settings, {identities} people, serial, 1 thread): {w['seconds']:.1f} s -> "
          f"{w['people_s']:.2f} people/s, {w['audio_s_s']:.1f} audio s/s, {w['images_s']:.1f} images/s "
          f"(stills + clip frames)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
