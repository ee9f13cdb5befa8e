"""OBJ / PLY export with vertex colours and OBJ / PLY / NPY / NPZ import."""
from __future__ import annotations

import numpy as np
import pytest

from voiceface.errors import InputError
from voiceface.face3d import builtin_model
from voiceface.face3d.meshio import load_mesh, save_mesh


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_round_trip(tmp_path, suffix):
    m = builtin_model()
    v, f, c = m.mean.numpy(), m.triangles.numpy(), m.albedo_mean.numpy()
    p = save_mesh(tmp_path / f"face{suffix}", v, f, c)
    v2, f2, c2 = load_mesh(p)
    assert np.allclose(v2, v, atol=1e-5) and np.array_equal(f2, f)
    assert c2 is not None and np.abs(c2 - c).max() <= 1.0 / 255 + 1e-6


def test_npy_npz_and_errors(tmp_path):
    v = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    np.save(tmp_path / "v.npy", v)
    np.savez(tmp_path / "m.npz", vertices=v, coeffs=np.zeros(3))
    assert np.array_equal(load_mesh(tmp_path / "v.npy")[0], v)
    v2, f2, c2 = load_mesh(tmp_path / "m.npz")
    assert np.array_equal(v2, v) and f2 is None and c2 is None
    (tmp_path / "points.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")          # vertices only
    pv, pf, pc = load_mesh(tmp_path / "points.obj")
    assert pv.shape == (3, 3) and pv[1, 0] == 1 and pf is None and pc is None
    with pytest.raises(InputError, match="not found"):
        load_mesh(tmp_path / "none.obj")
    np.save(tmp_path / "bad.npy", np.zeros((4, 2)))
    with pytest.raises(InputError, match="vertices"):
        load_mesh(tmp_path / "bad.npy")
    (tmp_path / "x.stl").write_text("solid")
    with pytest.raises(InputError, match="unknown mesh format"):
        load_mesh(tmp_path / "x.stl")
    (tmp_path / "broken.ply").write_bytes(b"ply\nformat nonsense\n")
    with pytest.raises(InputError):
        load_mesh(tmp_path / "broken.ply")
