"""Voice embedding choices: the GE2E encoder from resemblyzer's wheel (optional) and the thesis log-mel front end."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from fakeworld import TINY
from voiceface.audio.encoders import ge2e_mel, logmel_features, repeat_to, slaney_mel_filterbank
from voiceface.audio.io import load_audio

needs_resemblyzer = pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None,
                                       reason="resemblyzer not installed (optional GE2E encoder)")


def test_repeat_to_and_frontends():
    f = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert repeat_to(f, 7)[:, 0].tolist() == [0, 2, 4, 0, 2, 4, 0]
    assert repeat_to(f, 2) is f
    fb = slaney_mel_filterbank()
    assert fb.shape == (40, 201) and (fb >= 0).all() and (fb.sum(1) > 0).all()
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    assert ge2e_mel(x).shape == (101, 40)
    assert logmel_features(x, use_vad=False).shape == (101, 64)


@needs_resemblyzer
def test_ge2e_separates_real_speakers(librispeech):
    from voiceface.audio.encoders import GE2EEncoder

    enc = GE2EEncoder()
    embs, labels = [], []
    for i, spk in enumerate(sorted(p for p in librispeech.iterdir() if p.is_dir())[:4]):
        for f in sorted(spk.glob("*.flac"))[:2]:
            feats = enc.features(load_audio(f)[:64000])              # the first 4 s keep the test fast
            embs.append(enc.embed(torch.from_numpy(feats.T)[None])[0])
            labels.append(i)
    e, y = torch.stack(embs), torch.tensor(labels)
    assert e.shape[1] == 256
    s = e @ e.T
    same = (y[:, None] == y[None]) & ~torch.eye(len(y), dtype=torch.bool)
    diff = y[:, None] != y[None]
    auc = (s[same][:, None] > s[diff][None]).float().mean()
    assert auc > 0.9, float(auc)


@needs_resemblyzer
def test_gan_trains_on_ge2e(gan_world, tmp_path):
    from voiceface.methods.gan.generate import generate, load_model
    from voiceface.methods.gan.train import train

    run = train(gan_world, tmp_path / "ge2e", overrides=TINY + ["encoder.kind=ge2e", "steps=2"], progress=False)
    model = load_model(run)
    assert model.encoder.dim == 256
    res = generate(model, [next((gan_world / "voices").rglob("*.wav"))])
    assert res.faces.shape == (1, 3, 64, 64)
