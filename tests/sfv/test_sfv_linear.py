"""The ridge estimator for Algorithm 2 (methods.sfv.linear): finds the AMs the voice carries, not the others, and
selects nothing when the voice carries nothing (coupling 0)."""
from __future__ import annotations

import numpy as np

from voiceface.methods.sfv.data import synthetic
from voiceface.methods.sfv.evaluate import truth_scores
from voiceface.methods.sfv.linear import linear_selection, person_stats


def test_person_stats_are_each_persons_frame_mean_and_std():
    d = synthetic(n_people=12, n_ams=3, rec_s=1.0, recs=2, n_mels=8, seed=0)
    x = person_stats(d, bands=None, with_std=True, centre=False)
    p = 5
    frames = np.concatenate([d.voices.features(r) for r, o in enumerate(d.rec_person) if o == p])
    np.testing.assert_allclose(x[p, :8], frames.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x[p, 8:], frames.std(0), rtol=1e-4, atol=1e-5)
    pooled = frames.mean(0).reshape(4, 2).mean(1)
    np.testing.assert_allclose(person_stats(d, bands=4, centre=False)[p], pooled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(person_stats(d, bands=4, centre=True)[p], pooled - pooled.mean(), rtol=1e-5, atol=1e-5)


def test_linear_selection_recall_and_null():
    linked = synthetic(n_people=200, n_ams=8, n_linked=3, coupling=1.0, seed=3)
    sel, lay = linear_selection(linked, ("m", "f"), repeats=40, split=(6, 1, 2, 1), seed=0)
    s = truth_scores(linked, sel, lay.genders)
    assert s["sfv_recall"] >= 0.6 and s["sfv_false_positive_rate"] <= 0.1, s
    null = synthetic(n_people=200, n_ams=8, n_linked=3, coupling=0.0, seed=3)
    sel0, _ = linear_selection(null, ("m", "f"), repeats=40, split=(6, 1, 2, 1), seed=0)
    frac = np.mean([sel0.z(g).mean() for g in ("m", "f")])
    assert frac <= 0.15, frac                                                  # 8 AMs x 2 genders: at most 2


def test_decoupled_control_pairs_voices_with_other_people_of_the_same_gender():
    from voiceface.methods.sfv.linear import decoupled

    d = synthetic(n_people=40, n_ams=4, n_linked=2, rec_s=1.0, recs=2, n_mels=8, seed=0)
    c = decoupled(d, np.random.default_rng(0))
    moved = (c.ams != d.ams).any(1)
    assert moved.all()
    src = np.array([np.nonzero((d.ams == row).all(1))[0][0] for row in c.ams])
    assert (d.gender[src] == d.gender).all() and (src != np.arange(len(src))).all()
    assert all((t == 0).all() for t in c.truth.values())
