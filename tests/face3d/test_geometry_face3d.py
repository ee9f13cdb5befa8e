"""Geometry tests: Rodrigues (Eq. 4.7), projection conventions, the alignment warp (Eq. 4.5), normals, SH shading."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from voiceface.face3d import geometry as G


def test_rotation_matches_scipy_and_is_orthonormal():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 3, generator=g, dtype=torch.float64) * 1.5
    w[0] = 0.0
    w[1] = 1e-5
    r = G.rotation_matrix(w)
    ref = torch.from_numpy(Rotation.from_rotvec(w.numpy()).as_matrix())
    assert torch.allclose(r, ref, atol=1e-12)
    eye = torch.eye(3, dtype=torch.float64).expand(16, 3, 3)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(16, dtype=torch.float64))


def test_rotation_gradient_stable_at_zero():
    w = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(G.rotation_matrix, (w,))
    # dR/dw at 0 is the cross-product generator: d(R v)/dw = -[v]_x
    v = torch.tensor([0.3, -0.2, 0.9], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda x: G.rotation_matrix(x)[0] @ v, w)[:, 0]
    assert torch.allclose(jac, -G.skew(v), atol=1e-12)
    w2 = torch.tensor([[0.4, -1.1, 2.0], [1e-4, 0.0, 2e-4]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(G.rotation_matrix, (w2,))


def test_project_conventions():
    s = torch.tensor([[[1.0, 2.0, 3.0]]])
    v = torch.tensor([[math.log(2.0), 0, 0, 0, 10.0, 20.0, 5.0]])
    q = G.project(s, v)
    # x right, y down (flipped), depth away from the viewer (flipped), times the scale, plus t
    assert torch.allclose(q, torch.tensor([[[12.0, 16.0, -1.0]]]))
    # a rotation of pi about y turns the face away: the nose (z = +1) goes to larger depth
    v2 = v.clone()
    v2[0, 2] = math.pi
    q2 = G.project(torch.tensor([[[0.0, 0.0, 1.0]]]), v2)
    assert q2[0, 0, 2] > 5.0


def test_alignment_warp_agrees_with_projection_in_plane():
    """Eq. 4.5 and Eq. 4.7 agree for an in-plane rotation: the crop maps canonical (x', y') to projected (x, y)."""
    g = torch.Generator().manual_seed(1)
    h = w = 64
    v = torch.tensor([[math.log(7.0), 0.0, 0.0, 0.6, 30.0, 27.0, 0.0]])
    pts = torch.randn(1, 5, 3, generator=g)
    q = G.project(pts, v)[0, :, :2]
    theta = G.alignment_theta(v, (h, w), 4.0)[0]
    # canonical normalised coordinates of the points: x' = S_x, y' = -S_y, normalised by extent / 2
    xn = torch.stack([pts[0, :, 0] / 2.0, -pts[0, :, 1] / 2.0, torch.ones(5)], 0)
    img_norm = theta @ xn  # normalised image coordinates
    pix = torch.stack([(img_norm[0] + 1) * w / 2, (img_norm[1] + 1) * h / 2], -1)
    assert torch.allclose(pix, q, atol=1e-4)


def test_align_crop_identity_and_gradient():
    g = torch.Generator().manual_seed(2)
    img = torch.rand(2, 3, 16, 16, generator=g)
    v = G.make_viewpoint(2, 16, 4.0)
    crop = G.align_crop(img, v, 16, extent=4.0)  # 16 px / 4 px per unit = 4 units: the identity crop
    assert torch.allclose(crop, img, atol=1e-5)
    v64 = v.double().requires_grad_(True)
    img64 = img.double().requires_grad_(True)
    v64.data[:, 3] = 0.3
    assert torch.autograd.gradcheck(lambda a, b: G.align_crop(a, b, 8, extent=3.0), (img64, v64))


def test_vertex_normals_of_sphere_are_radial():
    m = trimesh.creation.icosphere(subdivisions=2)
    verts = torch.tensor(m.vertices, dtype=torch.float32)[None]
    n = G.vertex_normals(verts, torch.tensor(m.faces))
    cos = (n * verts / verts.norm(dim=-1, keepdim=True)).sum(-1)
    assert cos.min() > 0.995
    assert torch.allclose(n.norm(dim=-1), torch.ones(1, len(m.vertices)), atol=1e-5)


def _fibonacci_sphere(n: int) -> torch.Tensor:
    i = torch.arange(n, dtype=torch.float64) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = math.pi * (1 + 5 ** 0.5) * i
    return torch.stack([torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], -1)


def test_sh_basis_is_orthonormal():
    d = _fibonacci_sphere(20000)
    y = G.sh_basis(d)
    gram = y.T @ y * (4 * math.pi / len(d))
    assert torch.allclose(gram, torch.eye(9, dtype=torch.float64), atol=2e-3)


def test_sh_lambertian_shading():
    d = _fibonacci_sphere(2000)[None].float()
    amb = G.sh_shading(d, G.sh_light(1, ambient=0.7))
    assert torch.allclose(amb, torch.full_like(amb, 0.7), atol=1e-6)
    direction = torch.tensor([0.3, 0.5, 0.8])
    lit = G.sh_shading(d, G.sh_light(1, ambient=0.0, direction=direction, intensity=1.0))[0, :, 0]
    clamped = (d[0] @ (direction / direction.norm())).clamp_min(0)
    err = (lit - clamped).abs()
    assert err.mean() < 0.05 and err.max() < 0.15  # order-2 SH approximation of the clamped cosine
    # per-colour light gives three channels, each matching the grey result
    light3 = G.sh_light(1, 0.2, direction, 1.0)[:, None].expand(1, 3, 9)
    col = G.shade(torch.ones(1, 2000, 3), d, light3)
    assert col.shape == (1, 2000, 3)
    assert torch.allclose(col[..., 1], G.sh_shading(d, G.sh_light(1, 0.2, direction, 1.0))[..., 0], atol=1e-6)


def test_viewpoint_validation():
    with pytest.raises(ValueError):
        G.project(torch.zeros(1, 3, 3), torch.zeros(1, 6))
    assert np.isclose(G.SH_C0, 0.2820947917738781)
