"""The ridge estimator for Algorithm 2 (methods.sfv.linear): finds the AMs the voice carries, not the others, and
selects nothing when the voice carries nothing (coupling 0)."""
from __future__ import annotations

import numpy as np
import pytest

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


def _murmur_bank(d, rng: np.random.Generator, signal: np.ndarray | None, frames: int = 60, n_mels: int = 16):
    """Replace the voices of triplets ``d`` by frames of four spectral types (vowels: loud, bright; open vowels:
    loud, low-heavy; murmurs: quiet, low-heavy; pauses: quietest, flat), each recording with ``frames`` of each, in
    random order. Murmur frames carry ``signal`` (P, 4) on their first 4 bins; vowel frames a strong person-specific
    offset on the same bins (no facial information). Returns the new triplets and each recording's (T,) types."""
    from dataclasses import replace

    from voiceface.data.loaders import VoiceBank

    shapes = np.zeros((4, n_mels))
    shapes[0, 4:] = 1.5                                        # vowel: tilt -1.5
    shapes[1] = 2.0
    shapes[1, :4] = 3.0                                        # open vowel: tilt +1, loud
    shapes[2, :4], shapes[2, 4:] = 1.0, -1.0                   # murmur: tilt +2, quiet
    shapes[3] = -2.0                                           # pause: tilt 0, quietest
    nuisance = rng.normal(0, 1.0, (len(d.identity), 4))
    feats, kinds = [], []
    for p in d.rec_person:
        kind = rng.permutation(np.repeat(np.arange(4), frames))
        x = shapes[kind] + rng.normal(0, 0.05, (len(kind), n_mels))
        x[kind == 0, :4] += nuisance[p]
        if signal is not None:
            x[kind == 2, :4] += signal[p]
        feats.append(x.astype(np.float32))
        kinds.append(kind)
    return replace(d, voices=VoiceBank.from_arrays(feats)), kinds


def test_murmur_stats_are_each_persons_mean_murmur_frame_and_skip_pauses():
    from voiceface.methods.sfv.linear import murmur_stats

    rng = np.random.default_rng(0)
    d0 = synthetic(n_people=10, n_ams=3, rec_s=1.0, recs=2, n_mels=16, seed=0)
    d, kinds = _murmur_bank(d0, rng, rng.normal(0, 0.2, (10, 4)))
    x = murmur_stats(d, classes=4, upper=0.5, bands=8)                          # (P, 8): bins 0-7 as they are
    for p in range(10):                                                         # naive: loop over recordings
        rows = [d.voices.features(r)[kinds[r] == 2] for r, o in enumerate(d.rec_person) if o == p]
        np.testing.assert_allclose(x[p], np.concatenate(rows).mean(0)[:8], atol=1e-5)
    np.testing.assert_allclose(murmur_stats(d, classes=4, upper=0.5, bands=4)[:, 0], x[:, :2].mean(1), atol=1e-6)
    from dataclasses import replace

    from voiceface.data.loaders import VoiceBank
    from voiceface.errors import InputError

    tilted_up = np.tile(np.r_[np.zeros(4), np.ones(12)].astype(np.float32), (30, 1))          # (30, 16)
    bright = [tilted_up + r for r in range(len(d.rec_person))]
    with pytest.raises(InputError, match="no nasal murmurs"):                # every frame class tilts upwards
        murmur_stats(replace(d, voices=VoiceBank.from_arrays(bright)), classes=2)


def test_ridge_on_murmur_stats_finds_a_link_only_murmurs_carry():
    """The link lives in the murmur frames alone, under a strong identity offset of the vowels' same bins: the ridge
    on murmur statistics finds the linked AMs (measured recall 1.0), the ridge on all frames' mean finds fewer
    (0.17); the same voices with every person's AMs taken from another person of their gender (``decoupled``)
    select at most alpha-level false positives."""
    from voiceface.methods.sfv.linear import decoupled, murmur_stats

    rng = np.random.default_rng(1)
    d0 = synthetic(n_people=200, n_ams=8, n_linked=3, coupling=1.0, rec_s=1.0, recs=2, n_mels=16, seed=3)
    linked = np.nonzero(d0.truth["m"] == 1)[0]
    z = (d0.ams[:, linked] - d0.ams[:, linked].mean(0)) / d0.ams[:, linked].std(0)
    d, _ = _murmur_bank(d0, rng, 0.3 * z @ rng.normal(0, 1, (len(linked), 4)))
    x = murmur_stats(d, classes=4)
    sel, lay = linear_selection(d, ("m", "f"), repeats=40, split=(6, 1, 2, 1), seed=0, x=x)
    s = truth_scores(d, sel, lay.genders)
    assert s["sfv_recall"] >= 0.6 and s["sfv_false_positive_rate"] <= 0.1, s
    sel_mean, _ = linear_selection(d, ("m", "f"), repeats=40, split=(6, 1, 2, 1), seed=0, x=person_stats(d))
    assert truth_scores(d, sel_mean, lay.genders)["sfv_recall"] < s["sfv_recall"]
    sel0, _ = linear_selection(decoupled(d, np.random.default_rng(0)), ("m", "f"), repeats=40, split=(6, 1, 2, 1),
                               seed=0, x=x)
    assert np.mean([sel0.z(g).mean() for g in ("m", "f")]) <= 0.15
