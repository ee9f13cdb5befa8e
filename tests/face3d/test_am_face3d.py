"""Table 5.1 AMs: counts, kinds, invariances, values and gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from voiceface.face3d import anthropometry as A
from voiceface.face3d import builtin_model


@pytest.fixture(scope="module")
def landmarks():
    m = builtin_model()
    shapes = m.shape(torch.randn(4, m.num_identity, generator=torch.Generator().manual_seed(0)))
    return shapes[:, m.am_landmarks].double()


def _rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return torch.from_numpy(q * np.sign(np.linalg.det(q)))


def test_table():
    assert A.NUM_AMS == len(A.AM_NAMES) == len(A.AM_KINDS) == len(A.AM_REGIONS) == len(A.AM_LANDMARKS) == 94
    assert [A.AM_KINDS.count(k) for k in ("distance", "proportion", "angle")] == [48, 28, 18]
    assert len(set(A.AM_NAMES)) == 94
    assert A.AM_REGIONS[A.AM_NAMES.index("32-38")] == "nose"
    assert A.AM_REGIONS[A.AM_NAMES.index("39-45 / 28-31")] == "mouth"
    assert list(A.am_index(["11-15", "28-31 / 28-54", "30-31-35"])) == [0, 75, 93]
    with pytest.raises(ValueError):
        A.am_index(["1-2"])


def test_values(landmarks):
    am = A.measure(landmarks)
    lm = landmarks
    d = lambda a, b: (lm[:, a - 1] - lm[:, b - 1]).norm(dim=-1)      # noqa: E731
    assert torch.allclose(am[:, A.am_index(["11-15"])[0]], d(11, 15))
    assert torch.allclose(am[:, A.am_index(["32-38 / 60-54"])[0]], d(32, 38) / d(60, 54))
    u, v = lm[:, 56] - lm[:, 57], lm[:, 58] - lm[:, 57]
    ang = torch.rad2deg(torch.arccos((u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))))
    assert torch.allclose(am[:, A.am_index(["57-58-59"])[0]], ang, atol=1e-6)
    square = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=torch.float64)
    lm2 = torch.zeros(65, 3, dtype=torch.float64)
    lm2[[56, 57, 58]] = square
    assert math.isclose(float(A.measure(lm2)[A.am_index(["57-58-59"])[0]]), 90.0, abs_tol=1e-9)


def test_rigid_and_scale_invariance(landmarks):
    am = A.measure(landmarks)
    moved = landmarks @ _rotation(1).T + torch.tensor([10.0, -5.0, 3.0], dtype=torch.float64)
    assert torch.allclose(A.measure(moved), am, atol=1e-8)
    scaled = A.measure(landmarks * 1.7)
    dist = torch.from_numpy(A.kind_mask("distance"))
    assert torch.allclose(scaled[:, ~dist], am[:, ~dist], atol=1e-8)
    assert torch.allclose(scaled[:, dist], 1.7 * am[:, dist], atol=1e-8)


def test_gradients(landmarks):
    lm = landmarks[:1].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: A.measure(x), (lm,), eps=1e-6, atol=1e-4)


def test_am_from_shape():
    m = builtin_model()
    out = A.am_from_shape(m, m.mean[None])
    assert out.shape == (1, 94) and torch.isfinite(out).all()
    dist = torch.from_numpy(A.kind_mask("distance"))
    assert (out[0, dist] > 0).all()
