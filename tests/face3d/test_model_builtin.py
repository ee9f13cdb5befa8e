"""The built-in anthropometric model: determinism, cache, plausible landmarks, controls that do what they say."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from voiceface.face3d import builtin as B
from voiceface.face3d.landmarks import AM_MIDLINE, AM_MIRROR, IBUG_MIDLINE, IBUG_MIRROR


@pytest.fixture(scope="module")
def model():
    return B.builtin_model()


def test_deterministic_build():
    a, b = B.build_arrays(), B.build_arrays()
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEFACE_CACHE", str(tmp_path))
    m1 = B.builtin_model()
    files = list(tmp_path.glob("face3d-builtin-*.npz"))
    assert len(files) == 1
    B._load_cached.cache_clear()

    def boom():
        raise AssertionError("rebuilt despite the cache")
    monkeypatch.setattr(B, "build_arrays", boom)
    m2 = B.builtin_model()
    assert torch.equal(m1.mean, m2.mean) and torch.equal(m1.id_basis, m2.id_basis)
    B._load_cached.cache_clear()


def test_sizes_and_orientation(model):
    assert 3000 <= model.num_vertices <= 12000
    assert 40 <= model.num_identity <= 80 and model.num_expression >= 3 and model.num_albedo >= 3
    assert float(model.uv.min()) >= 0.0 and float(model.uv.max()) <= 1.0
    assert torch.all(model.id_std[:-1] >= model.id_std[1:])
    # outward normals: at the nose tip the surface faces the viewer (+z)
    from voiceface.face3d.geometry import vertex_normals
    n = vertex_normals(model.mean[None], model.triangles)[0]
    tip = model.am_landmarks[30]
    assert n[tip, 2] > 0.8


def test_landmarks_anatomical(model):
    am = model.mean[model.am_landmarks].numpy()                     # (65, 3), numbers 1..65 -> rows 0..64
    y = lambda *nums: am[[n - 1 for n in nums], 1].mean()           # noqa: E731
    assert y(1, 3, 5, 6, 8, 10) > y(11, 13, 15, 19, 21, 23) > y(31) > y(35) > y(42) > y(48) > y(60)
    assert y(54) > y(53) > y(52) > y(51)                             # forehead midline upwards
    assert am[30, 2] == am[:, 2].max()                              # pronasale is the most anterior point
    assert np.allclose(am[AM_MIRROR, 0], -am[:, 0]) and np.allclose(am[AM_MIRROR, 1:], am[:, 1:])
    assert np.allclose(am[[n - 1 for n in AM_MIDLINE], 0], 0.0)
    assert am[10, 0] < am[14, 0] < 0 < am[18, 0] < am[22, 0]        # ex_r < en_r < 0 < en_l < ex_l
    lm68 = model.mean[model.landmarks68].numpy()
    assert np.allclose(lm68[IBUG_MIRROR, 0], -lm68[:, 0]) and np.allclose(lm68[list(IBUG_MIDLINE), 0], 0.0)
    assert lm68[8, 1] == lm68[:, 1].min() and lm68[30, 2] == lm68[:, 2].max()   # chin lowest, nose tip front
    assert len(set(model.am_landmarks.tolist())) == 65


def test_controls_sampling_and_sex_differences():
    c_m = B.sample_controls(400, "m", 30, np.random.default_rng(0))
    c_f = B.sample_controls(400, "f", 30, np.random.default_rng(1))
    assert c_m.shape == (400, len(B.CONTROL_NAMES)) and len(B.CONTROL_UNITS) == len(B.CONTROL_NAMES)
    i = B.CONTROL_NAMES.index("face_height")
    assert c_m[:, i].mean() - c_f[:, i].mean() > 5.0
    assert abs(c_m[:, i].std() - 6.5) < 1.0
    j = B.CONTROL_NAMES.index("face_width")
    assert np.corrcoef(c_m[:, i], c_m[:, j])[0, 1] > 0.1            # shared size factor
    assert np.array_equal(c_m, B.sample_controls(400, "m", 30, np.random.default_rng(0)))
    old = B.sample_controls(400, "m", 70, np.random.default_rng(0))
    k = B.CONTROL_NAMES.index("nose_height")
    assert old[:, k].mean() > c_m[:, k].mean() + 2.0
    with pytest.raises(ValueError):
        B.sample_controls(2, "x", 30, 0)


def test_controls_drive_their_measurements(model):
    ctrl = B.sample_controls(60, np.array(["m", "f"] * 30), 40, np.random.default_rng(5))
    shapes = B.controls_to_shape(ctrl)                              # (60, V, 3)
    lm = shapes[:, model.am_landmarks.numpy()]
    checks = {"nose_width": (32, 38, 0), "mouth_width": (39, 45, 0), "intercanthal_width": (15, 19, 0),
              "eye_fissure_width": (11, 15, 0), "nose_height": (27, 35, 1)}
    for name, (a, b, axis) in checks.items():
        meas = np.abs(lm[:, a - 1, axis] - lm[:, b - 1, axis])
        c = ctrl[:, B.CONTROL_NAMES.index(name)]
        assert np.corrcoef(meas, c)[0, 1] > 0.97, name
        assert np.abs(meas - c).mean() < 1.0, name


def test_controls_to_coeffs_exact(model):
    ctrl = B.sample_controls(5, "f", 25, np.random.default_rng(3))
    coeffs = torch.from_numpy(B.controls_to_coeffs(ctrl))
    rec = model.shape(coeffs).numpy()
    assert np.abs(rec - B.controls_to_shape(ctrl)).max() < 1e-2


def test_expressions_move_the_right_parts(model):
    names = model.exp_names
    assert names[:4] == ["jaw_open", "smile", "lip_pucker", "brow_raise"]
    am = model.am_landmarks

    def moved(name, amount=1.0):
        e = torch.zeros(1, model.num_expression)
        e[0, names.index(name)] = amount
        return (model.shape(torch.zeros(1, model.num_identity), e)[0] - model.mean)[am]   # (65, 3)

    jaw = moved("jaw_open")
    assert jaw[59, 1] < -5.0 and jaw[47, 1] < -3.0                  # menton and lower lip go down
    assert jaw[[26, 30, 41], :].abs().max() < 0.05                  # nasion, nose tip, upper lip stay
    smile = moved("smile")
    assert smile[38, 1] > 1.0 and smile[44, 1] > 1.0                 # mouth corners go up
    assert smile[38, 0] < 0 < smile[44, 0]                           # and apart
    brow = moved("brow_raise")
    assert (brow[0:10, 1] > 2.0).all() and brow[59].abs().max() < 0.1
