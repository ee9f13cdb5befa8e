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


def test_short_hair_has_a_per_person_outline_and_glasses_are_drawn_for_wearers():
    p = people.make_person("s", 8, "m")
    bg = np.full((1, 3, 96, 96), 0.5)
    poses = np.array([[np.log(0.3), 0, 0, 0, 48, 60, 0]], dtype=float)
    lights = faces.sample_lights(np.random.default_rng(0), 1)
    short = dataclasses.replace(p.look, hair_length=0.1, recession=0.0, hair_volume=0.2)
    fuller = dataclasses.replace(short, hair_volume=0.9)
    a = looks.paint_hair(bg, poses, lights, short, np.random.default_rng(1))
    b = looks.paint_hair(bg, poses, lights, fuller, np.random.default_rng(1))
    assert not np.allclose(a, bg) and (np.abs(b - bg).max(1) > 0.05).sum() > (np.abs(a - bg).max(1) > 0.05).sum()
    img = np.full((1, 96, 96, 3), 0.5)
    wearer = dataclasses.replace(p.look, traits=dataclasses.replace(p.look.traits, glasses=1.0,
                                                                     glasses_rgb=(0.05, 0.05, 0.05)))
    plain = dataclasses.replace(p.look, traits=dataclasses.replace(p.look.traits, glasses=0.0))
    g = looks.paint_glasses(img, poses, wearer, np.random.default_rng(0))
    assert np.array_equal(looks.paint_glasses(img, poses, plain, np.random.default_rng(0)), img)
    dark = g[0].max(-1) < 0.3
    rows, cols = np.nonzero(dark)
    assert dark.sum() > 20 and (cols < 48).any() and (cols > 48).any()      # two rims, either side of the nose
    assert rows.mean() < 60                                                  # above the face's centre (eyes)
