"""The voice-face link is real and controlled by ``coupling``: a ridge regression from simple voice features
(the mean log-mel over the louder frames) predicts the voice-linked AMs of the ground truth above chance,
within gender (women: their nose and mouth reach the voice more strongly), does not predict the unlinked ones, and loses the linked ones at coupling 0."""
from __future__ import annotations

import numpy as np
import pytest

from voiceface.audio.features import logmel
from voiceface.face3d.anthropometry import AM_NAMES
from voiceface.sim import people as ppl
from voiceface.sim import voices


def _features(y: np.ndarray) -> np.ndarray:
    f = logmel(y)
    e = f.mean(1)
    return f[e > np.percentile(e, 40)].mean(0)


def _cv_r2(x: np.ndarray, y: np.ndarray, lam: float = 300.0, k: int = 5) -> float:
    """k-fold cross-validated R^2 of ridge regression (features standardised on each training fold)."""
    fold = np.arange(len(y)) % k
    pred = np.empty_like(y)
    for f in range(k):
        tr, te = fold != f, fold == f
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
        a = (x[tr] - mu) / sd
        w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ (y[tr] - y[tr].mean()))
        pred[te] = (x[te] - mu) / sd @ w + y[tr].mean()
    return float(1.0 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def _link_scores(n: int, seconds: float, gender: str = "f") -> dict[float, tuple[float, float]]:
    pop = ppl.population()
    gt = pop.ground_truth(1.0)[gender]
    linked = [AM_NAMES.index(a) for a in gt["linked_ams"][:3]]
    unlinked = [AM_NAMES.index(a) for a in gt["unlinked_ams"]]
    crowd = [ppl.make_person(f"p{i}", s) for i, s in enumerate(np.random.SeedSequence(21).spawn(3 * n))]
    men = [p for p in crowd if p.gender == gender][:n]
    ams = ppl.coeffs_to_ams(np.array([p.id_coeffs for p in men]))
    out = {}
    for c in (1.0, 0.0):
        x = []
        for p in men:                       # same person, session and babble at both couplings (paired)
            rng = np.random.default_rng(p.seed)
            x.append(_features(voices.synthesize(p.voice(c), seconds, rng, voices.sample_session(rng))))
        x = np.array(x)
        out[c] = (np.mean([_cv_r2(x, ams[:, i]) for i in linked]), np.mean([_cv_r2(x, ams[:, i]) for i in unlinked]))
    return out


def _check(scores: dict, margin: float) -> None:
    (lk1, un1), (lk0, un0) = scores[1.0], scores[0.0]
    assert lk1 > margin, scores                  # linked AMs predicted above chance (R^2 > 0) at coupling 1
    assert un1 < 0.03 and un0 < 0.03, scores     # unlinked AMs are not
    assert lk0 < 0.04, scores                    # the link vanishes at coupling 0
    assert lk1 - lk0 > margin + 0.02, scores


def test_voice_predicts_linked_ams_fast():
    _check(_link_scores(n=200, seconds=3.0), margin=0.06)


@pytest.mark.slow
def test_voice_predicts_linked_ams_large():
    _check(_link_scores(n=600, seconds=4.0), margin=0.08)
