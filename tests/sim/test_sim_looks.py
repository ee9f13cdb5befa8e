"""Sexually dimorphic appearance (``sim.looks``): gender must be visible in the rendered faces of unseen people,
through overlapping cues (not a marker)."""
from __future__ import annotations

import dataclasses

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
    assert 0.65 < np.mean([x.beard >= 0.3 for x in m]) < 0.92 and all(x.beard == 0 for x in f)
    assert all(0 < x.beard for x in m)                     # clean-shaven men: a faint shaved-beard shadow
    assert np.mean([x.brow for x in m]) > np.mean([x.brow for x in f]) + 0.3
    lift = np.mean([x.traits.brow_lift for x in f]) - np.mean([x.traits.brow_lift for x in m])
    arch = np.mean([x.traits.brow_arch for x in f]) - np.mean([x.traits.brow_arch for x in m])
    assert 1.0 < lift < 4.0 and 0.1 < arch < 0.4           # women's brows higher and more arched, overlapping
    assert np.mean([x.recession > 0 for x in m]) == 1.0 and all(x.recession == 0 for x in f)
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


def test_short_hair_ends_at_the_temples_and_men_recede_there_first():
    """Short hair's outline stops above the cheekbones (no bob); a receding hairline recedes most at the
    temples."""
    p = people.make_person("x", 3, "m")
    look = dataclasses.replace(p.look, hair_length=0.25, hair_volume=0.5, recession=12.0, fringe=0.0,
                               traits=dataclasses.replace(p.look.traits, widow=0.0, part=0.0))
    u, v = np.meshgrid(np.linspace(-120, 120, 121), np.linspace(-100, 220, 161))
    cover = looks.hair_outline(look, u[None], v[None], 0.0)[0]
    assert cover[v < 25.0].max() == 0.0 and cover[v > 60.0].max() > 0.9
    r = looks._regions()
    w = looks.hair_weight(look)
    front = (r["front"] > 0.9) & (np.abs(r["y"] - 118.0) < 3.0)
    centre, temple = front & (r["ax"] < 6.0), front & (np.abs(r["ax"] - 34.0) < 4.0)
    assert w[temple].mean() < w[centre].mean() - 0.1
