"""voiceface.data.loaders: voice crops, face tensors, label encoders, failure reporting."""
from __future__ import annotations

import numpy as np
import torch

from voiceface.data.loaders import (FaceBank, LabelEncoder, VoiceBank, crop_batch, fit_label_encoders,
                                    load_label_encoders, save_label_encoders, to_tensor)
from voiceface.data.manifest import Item, read_manifest


def test_crop_batch_shapes_determinism_and_wrap():
    feats = [np.arange(50 * 64, dtype=np.float32).reshape(50, 64), np.ones((500, 64), np.float32)]
    a = crop_batch(feats, 120, np.random.default_rng(3))
    b = crop_batch(feats, 120, np.random.default_rng(3))
    assert a.shape == (2, 64, 120) and torch.equal(a, b)
    # the 50-frame utterance is repeated cyclically: frame t == frame t mod 50
    assert torch.equal(a[0, :, 0], a[0, :, 50]) and torch.equal(a[0, :, 3], torch.from_numpy(feats[0][3]))


def test_voice_bank_on_world(fake_world, tmp_path):
    m = read_manifest(fake_world / "manifest.csv")
    bad = Item(str(tmp_path / "missing.wav"), "voice", "x")
    bank = VoiceBank(list(m) + [bad], tmp_path / "cache")
    assert len(bank) == sum(it.modality == "voice" for it in m)
    assert len(bank.failures) == 1 and "missing.wav" in bank.failures[0][1]
    f = bank.features(0)
    assert f.ndim == 2 and f.shape[1] == 64 and abs(float(f.mean())) < 0.1  # per-bin normalised
    x = bank.crops([0, 1, 2], np.random.default_rng(0), 300, 800)
    assert x.shape[:2] == (3, 64) and 300 <= x.shape[2] <= 800
    assert bank.whole(0).shape == (1, 64, f.shape[0])


def test_face_bank_range_flip_and_path64(fake_world, tmp_path):
    m = read_manifest(fake_world / "manifest.csv")
    b64 = FaceBank(m, 64, root=m.root)
    b128 = FaceBank(list(m) + [Item(str(tmp_path / "nope.png"), "face", "x")], 128, root=m.root)
    assert len(b128.failures) == 1 and len(b64) == len(b128)
    x = b64.batch([0, 1])
    assert x.shape == (2, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    flipped = b64.batch([0, 1], np.array([True, False]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    assert b128.batch([0]).shape == (1, 3, 128, 128)
    img = np.full((1, 2, 2, 3), 255, np.uint8)
    assert torch.allclose(to_tensor(img), torch.ones(1, 3, 2, 2))


def test_label_encoders_stable_and_saved(tmp_path):
    items = [Item("a", "voice", "p2", "m", "US"), Item("b", "face", "p1", "f", "UK"), Item("c", "voice", "p2", "m")]
    enc = fit_label_encoders(items)
    assert enc["identity"].classes == ("p1", "p2") and enc["gender"].classes == ("f", "m")
    assert enc["identity"].encode(["p2", "p1", "zz"]).tolist() == [1, 0, -1]
    save_label_encoders(enc, tmp_path / "labels.json")
    assert load_label_encoders(tmp_path / "labels.json") == enc
    assert LabelEncoder.fit("g", ["m", "f", "m"]).decode([0, 1]) == ["f", "m"]


def test_in_memory_bank_crops_like_crop_batch_in_any_index_shape():
    """VoiceBank.from_arrays (the GAN's GE2E mel, SfV's log-mel): one gather for (B, M) indices, the same crops as
    crop_batch for the same draws, cyclic windows, subsets sharing the store."""
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(t, 8)).astype(np.float32) for t in (50, 130, 300)]
    bank = VoiceBank.from_arrays(feats)
    idx = np.array([[0, 1, 2], [2, 2, 0]])
    u = np.random.default_rng(5).random(idx.shape)
    x = bank.crops_at(idx, u, 120)
    assert x.shape == (2, 3, 8, 120)
    want = crop_batch([feats[i] for i in idx.reshape(-1)], 120, np.random.default_rng(5))
    assert torch.equal(x.reshape(6, 8, 120), want)
    w = bank.frames(np.array([1]), np.array([100]), 40, period=np.array([110]))          # wraps at frame 110
    assert np.array_equal(w[0], feats[1][(100 + np.arange(40)) % 110])
    sub = bank.subset([2, 0])
    assert len(sub) == 2 and np.array_equal(sub.features(1), feats[0]) and sub.packed is bank.packed
    assert bank.drain_failures() == [] and torch.equal(bank.whole(0, 60)[0, :, 50], torch.from_numpy(feats[0][0]))
