"""Sexually dimorphic appearance (``sim.looks``): gender must be visible in the rendered faces of unseen people,
through overlapping cues (not a marker)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from voiceface.sim import faces, looks, people
from voiceface.sim.world import _render_kit


def _render(n_people: int, images: int, seed: int, with_look: bool = True):
    """(N, 64, 64, 3) aligned crops of n_people freshly drawn people, their genders and identities."""
    model = people.face_model()
    genders = people.assign_genders(n_people, seed)
    crops, male, ids = [], [], []
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(n_people)):
        p = people.make_person(f"p{i}", ss, genders[i])
        rng = np.random.default_rng(p.seed)
        expr = torch.as_tensor(p.expressions[rng.integers(0, len(p.expressions), images)], dtype=torch.float32)
        shapes = model.shape(torch.as_tensor(np.repeat(p.id_coeffs[None], images, 0), dtype=torch.float32), expr)
        look = p.look if with_look else None
        if not with_look:
            p.look = None
        st = faces.aligned_stills(_render_kit(), rng, shapes, p.albedo(), 112, sizes=(64,), look=look)
        crops += [s["crops"][64] for s in st]
        male += [p.gender == "m"] * images
        ids += [i] * images
    return np.stack(crops), np.array(male), np.array(ids)


def test_looks_are_gender_dependent_and_overlapping():
    rng = np.random.default_rng(0)
    m = [looks.sample_look(rng, "m", 40.0, "european") for _ in range(400)]
    f = [looks.sample_look(rng, "f", 40.0, "european") for _ in range(400)]
    long_m, long_f = np.mean([x.hair_length > 0.4 for x in m]), np.mean([x.hair_length > 0.4 for x in f])
    assert 0.02 < long_m < 0.2 and 0.75 < long_f < 0.97                     # overlapping, not a marker
    assert 0.65 < np.mean([x.beard > 0 for x in m]) < 0.92 and all(x.beard == 0 for x in f)
    assert np.mean([x.brow for x in m]) > np.mean([x.brow for x in f]) + 0.3
    p = people.make_person("x", 3, "m")
    plain = people.Person(**{**p.__dict__, "look": None}).albedo()
    assert p.albedo().shape == plain.shape and (p.albedo() - plain).abs().max() > 0.1
    assert {"look_hair_length", "look_beard"} <= set(people.person_row(p, 1.0))


def test_face_gender_linear_probe_on_unseen_people():
    """A ridge classifier on raw 64x64 pixels, trained and tested on disjoint people, reads gender well above
    chance (majority ~55 %); without the looks the same probe is much weaker."""
    x, male, ids = _render(160, 2, seed=5)
    acc = looks.gender_probe(x, male, ids, ridge=0.1)
    majority = max(male.mean(), 1 - male.mean())
    assert acc > 0.8 and acc > majority + 0.25, (acc, majority)
    x0, male0, ids0 = _render(160, 2, seed=5, with_look=False)
    assert looks.gender_probe(x0, male0, ids0, ridge=0.1) < acc - 0.08
