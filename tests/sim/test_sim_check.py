"""``voiceface sim check``: how real a world looks to pretrained GE2E and dlib models; the metric helpers."""
from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import torch

from voiceface.errors import InputError, MissingDependencyError
from voiceface.metrics.matching import cosine_matrix
from voiceface.sim.check import (check_table, check_world, nn_identification, verification_eer,
                                 voice_metrics)

needs_models = pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None
                                  or importlib.util.find_spec("dlib") is None,
                                  reason="resemblyzer (GE2E) or dlib (extra 'align') not installed")


def _clusters(rng, people=12, per=6, dim=16, spread=0.2):
    """(people*per, dim) embeddings around one random centre per person, and their (n,) labels."""
    centres = rng.standard_normal((people, dim))
    labels = np.repeat(np.arange(people), per)
    return centres[labels] + spread * rng.standard_normal((len(labels), dim)), labels


# ---------------------------------------------------------------------------------------------------------------
# metric helpers on synthetic arrays


def test_clear_identity_gives_zero_eer_and_perfect_1nn():
    rng = np.random.default_rng(0)
    emb, y = _clusters(rng)
    sim = cosine_matrix(emb)
    v = verification_eer(sim, y)
    assert v["eer"] < 0.01
    assert v["pos"] == 12 * 15 and v["neg"] == 72 * 71 // 2 - 12 * 15
    nn = nn_identification(sim, y)
    assert nn["acc"] == 1.0 and nn["queries"] == 72
    assert nn["chance"] == pytest.approx(5 / 71)


def test_shuffled_labels_give_chance():
    rng = np.random.default_rng(1)
    emb, y = _clusters(rng, people=20, per=6)
    sim = cosine_matrix(emb)
    ys = rng.permutation(y)
    assert 0.4 < verification_eer(sim, ys)["eer"] < 0.6
    nn = nn_identification(sim, ys)
    assert nn["acc"] < 0.2 and nn["chance"] == pytest.approx(5 / 119)


def test_sessions_are_excluded_from_pairs_and_galleries():
    """Voices that only carry their session (no identity): leave-one-out 1-NN finds the same-session twin, the
    cross-session figures fall to chance; genuine pairs are cross-session pairs only."""
    rng = np.random.default_rng(2)
    people, sessions, per_session = 15, 2, 3
    y = np.repeat(np.arange(people), sessions * per_session)
    sess = np.tile(np.repeat(np.arange(sessions), per_session), people)
    key = y * sessions + sess
    emb = rng.standard_normal((people * sessions, 32))[key] + 0.1 * rng.standard_normal((len(y), 32))
    sim = cosine_matrix(emb)
    assert nn_identification(sim, y)["acc"] == 1.0                      # the session twin
    nn = nn_identification(sim, y, sess)
    assert nn["acc"] < 0.25 and nn["queries"] == len(y)
    v = verification_eer(sim, y, sess)
    assert v["pos"] == people * per_session ** 2                          # cross-session pairs of a person
    assert 0.4 < v["eer"] < 0.6
    assert verification_eer(sim, y)["eer"] < v["eer"] - 0.05              # same-session pairs make it look easier


def test_voice_metrics_within_gender():
    rng = np.random.default_rng(3)
    emb, y = _clusters(rng, people=6, per=4)
    gender = np.where(y < 4, "m", "f")                                   # 4 men, 2 women
    out = voice_metrics(emb, y.astype(str), gender)
    assert out["voice_neg_pairs_m"] == 6 * 16 and out["voice_neg_pairs_f"] == 16
    assert out["voice_pos_pairs"] == out["voice_pos_pairs_m"] + out["voice_pos_pairs_f"] == 36
    assert out["voice_eer"] < 0.01 and out["voice_1nn"] == 1.0
    assert out["n_voices"] == 24 and out["n_voice_people"] == 6


# ---------------------------------------------------------------------------------------------------------------
# on the tiny world


@pytest.fixture(scope="module")
def tiny_check(tiny_world):
    return check_world(tiny_world)


@needs_models
def test_check_world_keys_and_ranges(tiny_check):
    r = tiny_check
    assert r["split"] == "test" and r["real_data"] is None
    for k in ("voice_eer", "voice_eer_m", "voice_eer_f", "voice_1nn", "face_1nn", "face_eer"):
        assert 0.0 <= r[f"world.{k}"] <= 1.0, k
    assert r["world.n_voices"] == 12 and r["world.n_voice_people"] == 4      # tiny: 4 test people x 3 voices
    assert r["world.n_faces"] == 12 and r["world.n_faces_skipped"] == 0
    assert r["world.voice_1nn_queries"] == 12
    # the world's voices and faces carry identity: both judges beat a random neighbour
    assert r["world.face_1nn"] > r["world.face_1nn_chance"]
    assert not any(k.startswith("real.") for k in r)
    json.dumps(r, allow_nan=False)
    table = check_table(r)
    assert "the world's test split" in table and "real data" not in table.splitlines()[0]
    assert table.count("\n|") == 5                                      # header rule + 4 rows


def test_missing_dlib_gives_a_note(tiny_world, monkeypatch):
    """Without dlib the face rows say so; the voice rows still come (a stub encoder keeps this fast)."""
    from voiceface.face import descriptors

    def no_dlib(purpose="face detection"):
        raise MissingDependencyError("dlib-bin", "align", purpose)

    class MeanMel:
        def features(self, samples, use_vad=True, path=None):
            frames = samples[:len(samples) // 400 * 400].reshape(-1, 400)              # (T, 400)
            return np.abs(np.fft.rfft(frames, axis=1))[:, :40].astype(np.float32)      # (T, 40)

        def embed(self, feats):
            return torch.nn.functional.normalize(feats.log1p().mean(2), dim=1)

    monkeypatch.setattr(descriptors, "import_dlib", no_dlib)
    r = check_world(tiny_world, encoder=MeanMel())
    assert "align" in r["world.face_note"] and "world.face_1nn" not in r
    assert 0.0 <= r["world.voice_eer"] <= 1.0
    assert "n/a (" in check_table(r)


@needs_models
def test_real_column_on_a_few_real_samples(tiny_world, librispeech, orl_faces, tmp_path):
    """The real-data path on 2 LibriSpeech speakers x 3 files and 2 ORL subjects x 3 photos (seconds)."""
    real = tmp_path / "real"
    (real / "librispeech_test_other").mkdir(parents=True)
    shutil.copy(librispeech / "SPEAKERS.TXT", real / "librispeech_test_other")
    for spk in sorted(p for p in librispeech.iterdir() if p.is_dir())[:2]:
        (real / "librispeech_test_other" / spk.name).mkdir()
        for f in sorted(spk.glob("*.flac"))[:3]:
            (real / "librispeech_test_other" / spk.name / f.name).symlink_to(f)
    for s in ("s1", "s2"):
        (real / "orl_faces" / s).mkdir(parents=True)
        for n in (1, 2, 3):
            (real / "orl_faces" / s / f"{n}.pgm").symlink_to(orl_faces / s / f"{n}.pgm")
    r = check_world(tiny_world, real_data=real)
    assert r["real.n_voices"] == 6 and r["real.voice_1nn"] == 1.0 and r["real.voice_eer"] < 0.2
    assert r["real.n_faces"] + r["real.n_faces_skipped"] == 6 and r["real.face_1nn"] == 1.0
    assert r["real.voice_pos_pairs"] == 2 * 3                             # every pair of files of a speaker
    assert f"real data ({real})" in check_table(r)


# ---------------------------------------------------------------------------------------------------------------
# CLI and storage


@needs_models
def test_cli_check_stores_figures(tiny_world, tmp_path, capsys):
    from voiceface.cli import main

    w = tmp_path / "w"
    shutil.copytree(tiny_world, w, ignore=shutil.ignore_patterns("clips", "meshes", "faces64", ".done"))
    assert main(["sim", "check", str(w), "--split", "val", "--no-real", "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "the world's val split" in out and "--no-real" in out
    info = json.loads((w / "world.json").read_text())
    assert info["check"]["split"] == "val" and 0 <= info["check"]["world.voice_eer"] <= 1
    assert "counts" in info                                               # the rest of world.json is kept
    assert json.loads((tmp_path / "c.json").read_text())["world.n_voices"] == 12


def test_not_a_world(tmp_path, capsys):
    from voiceface.cli import main

    assert main(["sim", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path) in err and "not a simulated world" in err
    with pytest.raises(InputError):
        check_world(tmp_path)
