"""Per-person identity traits (``looks.Traits``): fixed for a person, different between people, and painted."""
from __future__ import annotations

import dataclasses

import numpy as np

from voiceface.sim import faces, looks, people


def test_traits_are_per_person_and_deterministic():
    a, b = people.make_person("a", 11, "m"), people.make_person("b", 12, "m")
    assert a.look.traits == people.make_person("a", 11, "m").look.traits
    assert a.look.traits != b.look.traits
    assert np.array_equal(a.albedo().numpy(), people.make_person("a", 11, "m").albedo().numpy())
    row = people.person_row(a, 1.0)
    assert {"look_t_brow_arch", "look_t_iris_rgb_r", "look_t_moles"} <= set(row)


def test_traits_change_the_albedo_where_expected():
    p = people.make_person("x", 3, "f")
    plain = dataclasses.replace(p, look=dataclasses.replace(p.look, traits=None)).albedo().numpy()
    painted = p.albedo().numpy()
    r = looks._regions()
    diff = np.abs(painted - plain).max(1)
    assert diff[r["lens"] > 0.5].mean() > 0.05                      # eyes repainted (iris colour, sclera)
    t2 = dataclasses.replace(p.look.traits, iris_rgb=(0.25, 0.35, 0.50), brow_arch=1.0 - p.look.traits.brow_arch)
    other = dataclasses.replace(p, look=dataclasses.replace(p.look, traits=t2)).albedo().numpy()
    assert np.abs(other - painted).max() > 0.1


def test_hairdo_is_the_same_in_every_photo():
    p = people.make_person("h", 5, "f")
    look = dataclasses.replace(p.look, hair_length=0.8)
    bg = np.full((1, 3, 64, 64), 0.5)
    poses = np.array([[np.log(0.4), 0, 0, 0, 32, 32, 0]], dtype=float)
    lights = faces.sample_lights(np.random.default_rng(0), 1)
    one = looks.paint_hair(bg, poses, lights, look, np.random.default_rng(1))
    two = looks.paint_hair(bg, poses, lights, look, np.random.default_rng(2))
    assert np.allclose(one, two) and not np.allclose(one, bg)
