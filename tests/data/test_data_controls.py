"""The negative-control manifest transform: which items move, and what they take with them."""
from __future__ import annotations

import numpy as np

from voiceface.data.controls import derangement, shuffle_identities, write_control_manifest
from voiceface.data.manifest import Item, Manifest, read_manifest, write_manifest


def _manifest():
    items = []
    for i in range(6):
        split = "train" if i < 4 else "test"
        g = "m" if i % 2 else "f"
        for k in range(2):
            items.append(Item(f"v/{i}_{k}.wav", "voice", f"p{i}", g, f"n{i}", split, age=20.0 + i))
        items.append(Item(f"f/{i}.png", "face", f"p{i}", g, f"n{i}", split, age=20.0 + i, extra={"path64": f"x/{i}"}))
    return Manifest(items)


def test_derangement_has_no_fixed_point():
    rng = np.random.default_rng(0)
    for n in (2, 3, 10):
        p = derangement(n, rng)
        assert sorted(p) == list(range(n)) and not (p == np.arange(n)).any()


def test_voices_move_to_other_people_of_their_split():
    m = _manifest()
    s = shuffle_identities(m, "voice", seed=1, splits=["train"])
    assert len(s) == len(m)
    for a, b in zip(m, s):
        if a.modality == "voice" and a.split == "train":
            assert b.identity != a.identity and b.split == a.split
            i = int(b.identity[1:])        # the new owner's person fields come along
            assert (b.gender, b.nationality, b.age) == ("m" if i % 2 else "f", f"n{i}", 20.0 + i)
            assert int(b.identity[1:]) < 4
        else:
            assert b == a
    # each person's voices stay together (a bijection of identities)
    owners = {}
    for a, b in zip(m, s):
        if a.modality == "voice" and a.split == "train":
            owners.setdefault(a.identity, set()).add(b.identity)
    assert all(len(v) == 1 for v in owners.values()) and len({next(iter(v)) for v in owners.values()}) == 4


def test_written_beside_the_original(tmp_path):
    write_manifest(_manifest(), tmp_path / "manifest.csv")
    p = write_control_manifest(tmp_path, "face", seed=0)
    assert p.parent == tmp_path
    a, b = read_manifest(tmp_path / "manifest.csv"), read_manifest(p)
    assert [it.path for it in a] == [it.path for it in b] and [it.extra for it in a] == [it.extra for it in b]
    assert all(x.identity != y.identity for x, y in zip(a, b) if x.modality == "face")
