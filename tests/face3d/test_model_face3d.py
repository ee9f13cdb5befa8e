"""MorphableModel (Eq. 4.6): batched/differentiable shapes, npz round trip, loaders on synthetic files in the real
BFM 2009 / BFM 2017 / FLAME formats, and clear InputErrors."""
from __future__ import annotations

import pickle
import sys
import types

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch

from voiceface.errors import InputError
from voiceface.face3d import builtin_model, load_model
from voiceface.face3d.model import MorphableModel

V, K, F = 40, 5, 30


@pytest.fixture(scope="module")
def model():
    return builtin_model()


def _toy(rng):
    mu = rng.normal(size=(V, 3)) * 40.0                                    # a face-sized point cloud, in mm
    pc, _ = np.linalg.qr(rng.normal(size=(V * 3, K)))
    ev = np.linspace(3.0, 1.0, K)
    tri = rng.integers(0, V, size=(F, 3))
    return mu, pc, ev, tri


def test_shape_batched_differentiable(model):
    c = torch.randn(3, model.num_identity, requires_grad=True)
    e = torch.randn(3, model.num_expression)
    s = model.shape(c, e)
    assert s.shape == (3, model.num_vertices, 3)
    s.square().sum().backward()
    assert c.grad is not None and c.grad.abs().sum() > 0
    # expression changes the shape; identity coefficients are recovered by projection
    assert (model.shape(c) - s).abs().max() > 1.0
    rec = model.project(s.detach(), e)
    assert torch.allclose(rec, c.detach(), atol=2e-3)
    assert model.albedo(torch.randn(2, model.num_albedo)).shape == (2, model.num_vertices, 3)
    assert model.albedo(batch=4).shape == (4, model.num_vertices, 3)


def test_npz_round_trip(model, tmp_path):
    p = model.save(tmp_path / "m.npz")
    m2 = load_model(p)
    for name, buf in model.named_buffers():
        assert torch.equal(buf, getattr(m2, name)), name
    assert m2.exp_names == model.exp_names


def test_bfm2009_mat(tmp_path):
    rng = np.random.default_rng(0)
    mu, pc, ev, tri = _toy(rng)
    scipy.io.savemat(tmp_path / "01_MorphableModel.mat", {
        "shapeMU": (mu.reshape(-1, 1) * 1000.0), "shapePC": pc, "shapeEV": (ev * 1000.0).reshape(-1, 1),
        "texMU": np.full((V * 3, 1), 128.0), "texPC": pc, "texEV": np.ones((K, 1)) * 10.0, "tl": tri + 1})
    m = load_model(tmp_path / "01_MorphableModel.mat")
    assert m.num_vertices == V and m.num_identity == K and m.num_albedo == K
    assert np.allclose(m.mean.numpy(), mu, atol=1e-4)                    # micrometres -> mm
    assert np.array_equal(np.sort(m.triangles.numpy(), 1), np.sort(tri, 1))  # 1-based -> 0-based
    e = torch.zeros(1, K)
    e[0, 1] = 1.0
    assert np.allclose((m.shape(e)[0] - m.mean).numpy().reshape(-1), pc[:, 1] * ev[1], atol=1e-5)
    assert np.allclose(m.albedo_mean.numpy(), 128.0 / 255.0)


def test_bfm2017_h5(tmp_path):
    rng = np.random.default_rng(1)
    mu, pc, ev, tri = _toy(rng)
    path = tmp_path / "model2017-1_face12_nomouth.h5"
    with h5py.File(path, "w") as f:
        f["shape/model/mean"] = mu.reshape(-1)
        f["shape/model/pcaBasis"] = pc
        f["shape/model/pcaVariance"] = ev ** 2
        f["shape/representer/points"] = mu.T
        f["shape/representer/cells"] = tri.T
        f["expression/model/mean"] = np.zeros(V * 3)
        f["expression/model/pcaBasis"] = pc[:, :2]
        f["expression/model/pcaVariance"] = np.array([4.0, 1.0])
        f["color/model/mean"] = np.full(V * 3, 0.5)
        f["color/model/pcaBasis"] = pc
        f["color/model/pcaVariance"] = np.ones(K) * 0.01
    m = load_model(path)
    assert m.num_identity == K and m.num_expression == 2
    assert np.array_equal(np.sort(m.triangles.numpy(), 1), np.sort(tri, 1))
    assert np.allclose(m.id_std.numpy(), ev, atol=1e-5)
    assert np.allclose(m.exp_std.numpy(), [2.0, 1.0], atol=1e-6)


def _write_fake_flame(path, rng):
    """A FLAME-layout pickle whose arrays are chumpy objects (pickled through a stand-in 'chumpy' module)."""
    mod = types.ModuleType("chumpy")
    chmod = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):                       # the state chumpy pickles: x plus bookkeeping
            self.x, self._dirty_vars, self._itr = x, {"x"}, None
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chmod.Ch = Ch
    mod.ch = chmod
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = mod, chmod
    try:
        vt = rng.normal(size=(V, 3)) * 0.1
        sd = rng.normal(size=(V, 3, 8)) * 0.01
        data = {"v_template": Ch(vt), "f": rng.integers(0, V, size=(F, 3)).astype(np.uint32),
                "shapedirs": Ch(sd), "J_regressor": scipy.sparse.csc_matrix(np.eye(5, V)),
                "weights": np.ones((V, 5)) / 5, "bs_style": "lbs"}
        path.write_bytes(pickle.dumps(data, protocol=2))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    return vt, sd


def test_flame_pkl_without_chumpy(tmp_path):
    rng = np.random.default_rng(2)
    vt, sd = _write_fake_flame(tmp_path / "generic_model.pkl", rng)
    assert "chumpy" not in sys.modules
    from voiceface.face3d.model import load_flame
    m = load_flame(tmp_path / "generic_model.pkl", n_shape=5)
    assert m.num_identity == 5 and m.num_expression == 3
    assert np.allclose(m.mean.numpy(), vt * 1000.0, atol=1e-3)            # metres -> mm
    c = torch.zeros(1, 5)
    c[0, 2] = 1.0
    assert np.allclose((m.shape(c)[0] - m.mean).numpy(), sd[:, :, 2] * 1000.0, atol=1e-3)


def test_flame_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"v_template": Evil()}))
    with pytest.raises(InputError, match="refusing"):
        load_model(tmp_path / "evil.pkl")


def test_loader_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "nope.mat")
    scipy.io.savemat(tmp_path / "other.mat", {"a": np.ones(3)})
    with pytest.raises(InputError, match="not a BFM 2009"):
        load_model(tmp_path / "other.mat")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="HDF5"):
        load_model(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="BFM 2017"):
        load_model(tmp_path / "empty.h5")
    np.savez(tmp_path / "x.npz", a=np.ones(3))
    with pytest.raises(InputError, match="not a voiceface"):
        load_model(tmp_path / "x.npz")
    (tmp_path / "x.pkl").write_bytes(b"garbage")
    with pytest.raises(InputError):
        load_model(tmp_path / "x.pkl")
    (tmp_path / "x.obj").write_text("v 0 0 0\n")
    with pytest.raises(InputError, match="unknown model format"):
        load_model(tmp_path / "x.obj")


def test_landmark_file(tmp_path):
    rng = np.random.default_rng(3)
    mu, pc, ev, tri = _toy(rng)
    m = MorphableModel(mu, pc, ev, tri)
    m.save(tmp_path / "toy.npz")
    np.savetxt(tmp_path / "am.txt", np.arange(65) % V, fmt="%d")
    m2 = load_model(tmp_path / "toy.npz", landmarks=tmp_path / "am.txt")
    assert m2.am_landmarks.shape == (65,) and m2.landmarks68.numel() == 0
    np.savetxt(tmp_path / "bad.txt", np.arange(65) + 1000, fmt="%d")
    with pytest.raises(InputError, match="outside"):
        load_model(tmp_path / "toy.npz", landmarks=tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="no 68 landmark"):
        m.landmarks(m.mean[None], "68")


def test_orient_outward_fixes_inward_winding():
    from voiceface.face3d import builtin_model
    from voiceface.face3d.model import orient_outward
    m = builtin_model()
    v, t = m.mean.numpy(), m.triangles.numpy()
    assert np.array_equal(orient_outward(v, t), t)                         # the built-in model is outward already
    assert np.array_equal(orient_outward(v, t[:, [0, 2, 1]]), t)
