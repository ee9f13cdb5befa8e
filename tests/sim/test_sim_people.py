"""People: covariate distributions, face z-scores, determinism, and the ground truth at coupling 0."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from voiceface.sim import people as ppl


@pytest.fixture(scope="module")
def crowd():
    return [ppl.make_person(f"p{i}", s) for i, s in enumerate(np.random.SeedSequence(11).spawn(400))]


def test_covariate_distributions(crowd):
    male = np.mean([p.gender == "m" for p in crowd])
    assert 0.45 < male < 0.65
    nat = Counter(p.nationality for p in crowd)
    top, share = nat.most_common(1)[0]
    assert top == "USA" and 0.5 < share / len(crowd) < 0.7 and len(nat) >= 7    # skewed, with a long tail
    ages = np.array([p.age for p in crowd])
    assert ages.min() >= 18 and ages.max() <= 80 and 35 < ages.mean() < 50
    skin = np.array([p.skin_rgb for p in crowd])
    assert skin[:, 0].std() > 0.05 and (skin[:, 0] >= skin[:, 2]).all()


def test_face_zscores_are_within_covariate_standard_normal(crowd):
    z = np.array([p.face_z for p in crowd])
    assert np.abs(z.mean(0)).max() < 0.25 and np.all((z.std(0) > 0.8) & (z.std(0) < 1.25))
    ages = np.array([p.age for p in crowd])
    assert max(abs(np.corrcoef(ages, z[:, k])[0, 1]) for k in range(z.shape[1])) < 0.2     # age removed


def test_person_is_deterministic_and_albedo_valid():
    a = ppl.make_person("x", 5)
    b = ppl.make_person("x", 5)
    assert np.array_equal(a.id_coeffs, b.id_coeffs) and np.array_equal(a.voice_noise, b.voice_noise)
    alb = a.albedo()
    assert alb.shape == (ppl.face_model().num_vertices, 3) and float(alb.min()) >= 0.0 and float(alb.max()) <= 1.0
    assert a.expressions.shape == (ppl.N_EXPRESSIONS, ppl.face_model().num_expression)


def test_ground_truth_vanishes_at_coupling_zero():
    pop = ppl.population()
    g1, g0 = pop.ground_truth(1.0), pop.ground_truth(0.0)
    for g in ("m", "f"):
        assert max(g1[g]["r2_voice"].values()) > 0.5
        assert max(g0[g]["r2_voice"].values()) < 0.02
