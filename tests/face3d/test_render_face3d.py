"""Rasteriser tests: analytic coverage, exact barycentrics, z-test, finite-difference gradients, UV unwrap / Psi."""
from __future__ import annotations

import math

import pytest
import torch
import trimesh

from voiceface.face3d import geometry as G
from voiceface.face3d import render as R

TRI = torch.tensor([[0, 1, 2]])


def _probe(fn, k: int = 3):
    """Wrap an image-valued function into k random weighted sums, so gradcheck needs k backward passes, not H*W*C."""
    weights = {}

    def wrapped(*args):
        out = fn(*args)
        if "w" not in weights:
            g = torch.Generator().manual_seed(123)
            weights["w"] = torch.rand(k, *out.shape, generator=g, dtype=out.dtype)
        return (weights["w"] * out).flatten(1).sum(1)

    return wrapped


def _sphere(sub: int, radius_px: float, size: int, dtype=torch.float32):
    m = trimesh.creation.icosphere(subdivisions=sub)
    verts = torch.tensor(m.vertices, dtype=dtype)[None]
    faces = torch.tensor(m.faces)
    return verts, faces, G.project(verts, G.make_viewpoint(1, size, radius_px, dtype=dtype))


def test_sphere_mask_area_is_pi_r_squared():
    _, faces, q = _sphere(4, 40.0, 128)
    out = R.render(q, faces, torch.ones(1, q.shape[1], 3), 128)
    area = math.pi * 40.0 ** 2
    assert abs(out["hard_mask"].sum().item() - area) / area < 0.01
    assert abs(out["mask"].sum().item() - area) / area < 0.01
    assert out["mask"].min() >= 0 and out["mask"].max() <= 1 + 1e-6
    # the mask is a disc: pixel centres well inside are covered, well outside are not
    yy, xx = torch.meshgrid(torch.arange(128) + 0.5, torch.arange(128) + 0.5, indexing="ij")
    r = ((xx - 64) ** 2 + (yy - 64) ** 2).sqrt()
    hard = out["hard_mask"][0, 0]
    assert hard[r < 38].min() == 1 and hard[r > 41].max() == 0


def test_antialiased_coverage_matches_triangle_area():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        tri = torch.rand(1, 3, 3, generator=g) * 60 + 2
        x, y = tri[0, :, 0], tri[0, :, 1]
        area = 0.5 * abs(((x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])).item())
        out = R.render(tri, TRI, torch.ones(1, 3, 1), 64)
        # AA coverage is closer to the true area than the hard count is off by (up to perimeter / 2)
        assert abs(out["mask"].sum().item() - area) < max(2.0, 0.01 * area)


def test_flat_triangle_barycentrics_exact():
    verts = torch.tensor([[[0.5, 0.5, 1.0], [8.5, 0.5, 1.0], [0.5, 8.5, 1.0]]], dtype=torch.float64)
    out = R.render(verts, TRI, torch.eye(3, dtype=torch.float64)[None], (10, 12), antialias_edges=False)
    bary = out["bary"][0]
    assert torch.equal(bary[0, 0], torch.tensor([1.0, 0, 0], dtype=torch.float64))
    assert torch.allclose(bary[2, 4], torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64), atol=1e-15)
    assert torch.allclose(bary[6, 1], torch.tensor([0.125, 0.125, 0.75], dtype=torch.float64), atol=1e-15)
    # colours = identity attributes reproduce the barycentrics; pixels outside are background
    assert torch.allclose(out["image"][0, :, 2, 4], bary[2, 4])
    assert out["face_id"][0, 5, 5] == -1 and out["face_id"][0, 4, 3] == 0  # (5.5,5.5) outside, (3.5,4.5) inside
    assert out["hard_mask"][0, 0].sum() == 45  # pixel centres with col + row <= 8: 9 * 10 / 2


def test_depth_test_picks_nearer_triangle():
    big = torch.tensor([[2.0, 2.0], [30.0, 2.0], [2.0, 30.0]])
    a = torch.cat([big, torch.full((3, 1), 5.0)], 1)
    b = torch.cat([big + 1.0, torch.full((3, 1), 3.0)], 1)  # nearer (smaller depth)
    verts = torch.cat([a, b])[None]
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    colors = torch.tensor([[1.0, 0, 0]] * 3 + [[0, 1.0, 0]] * 3)[None]
    for order in (faces, faces.flip(0)):
        out = R.render(verts, order, colors, 32, antialias_edges=False)
        assert torch.allclose(out["image"][0, :, 10, 10], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
        # only a covers (2.5, 2.5)
        assert torch.allclose(out["image"][0, :, 2, 2], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
        assert abs(out["depth"][0, 0, 10, 10].item() - 3.0) < 1e-5
    verts2 = verts.clone()
    verts2[0, 3:, 2] = 7.0  # now b is behind
    out = R.render(verts2, faces, colors, 32, antialias_edges=False)
    assert torch.allclose(out["image"][0, :, 10, 10], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)


def test_chunking_and_batch_consistency():
    _, faces, q = _sphere(3, 20.0, 48)
    q2 = torch.cat([q, q + torch.tensor([3.0, -2.0, 0.0])])
    ids_big = R.rasterize_ids(q2, faces, 48)
    ids_small = R.rasterize_ids(q2, faces, 48, chunk=257)
    assert torch.equal(ids_big, ids_small)
    assert torch.equal(ids_big[0], R.rasterize_ids(q, faces, 48)[0])


def test_backface_culling_and_offscreen():
    verts = torch.tensor([[[2.0, 2.0, 0], [12.0, 2.0, 0], [2.0, 12.0, 0]]])
    # on screen (y down) this triangle is clockwise as seen by the viewer -> back-facing
    assert R.rasterize_ids(verts, TRI, 16, cull_backfaces=True).max() == -1
    assert R.rasterize_ids(verts, TRI.flip(1), 16, cull_backfaces=True).max() == 0
    far = verts + 100.0
    out = R.render(far, TRI, torch.ones(1, 3, 3), 16)
    assert out["mask"].sum() == 0 and out["face_id"].max() == -1


def test_gradcheck_colors_and_vertices_interior():
    verts = torch.tensor([[[1.2, 1.3, 0.0], [10.7, 2.3, 0.5], [2.1, 9.8, 1.0], [11.3, 10.6, 0.2]]],
                         dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    g = torch.Generator().manual_seed(0)
    colors = torch.rand(1, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_probe(lambda c: R.render(verts, faces, c, 12)["image"]), (colors,))
    v = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(_probe(lambda x: R.render(x, faces, colors.detach(), 12)["image"]), (v,), atol=1e-6)


def test_gradcheck_vertices_through_silhouette():
    verts = torch.tensor([[[1.3, 1.7, 0.0], [10.6, 3.2, 0.0], [3.4, 10.9, 0.0]]], dtype=torch.float64,
                         requires_grad=True)
    w = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss(v):
        return (R.render(v, TRI, torch.ones(1, 3, 1, dtype=torch.float64), 12)["mask"] * w).sum()

    assert torch.autograd.gradcheck(loss, (verts,), atol=1e-6)
    grad = torch.autograd.grad(R.render(verts, TRI, torch.ones(1, 3, 1, dtype=torch.float64), 12)["mask"].sum(),
                               verts)[0]
    assert grad.abs().sum() > 0  # a hard mask would give zero gradient
    # the coverage gradient approximates d(area)/d(vertex): moving vertex 0 outwards grows the area
    d_area = torch.autograd.grad(0.5 * torch.abs(
        (verts[0, 1, 0] - verts[0, 0, 0]) * (verts[0, 2, 1] - verts[0, 0, 1])
        - (verts[0, 1, 1] - verts[0, 0, 1]) * (verts[0, 2, 0] - verts[0, 0, 0])), verts)[0]
    cos = (grad[0, :, :2] * d_area[0, :, :2]).sum() / (grad[0, :, :2].norm() * d_area[0, :, :2].norm())
    assert cos > 0.8


def test_gradcheck_vertices_through_occlusion_contour():
    """A small triangle in front of a large one: its outline blends colours and carries vertex gradients."""
    back = torch.tensor([[0.5, 0.5, 5.0], [13.5, 0.5, 5.0], [0.5, 13.5, 5.0], [13.5, 13.5, 5.0]], dtype=torch.float64)
    # one edge at exactly 45 degrees (the horizontal / vertical pair weights keep it differentiable)
    front = torch.tensor([[3.3, 2.6, 1.0], [10.2, 4.7, 1.0], [4.1, 10.8, 1.0]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2], [4, 5, 6]])
    colors = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 3, dtype=torch.float64)[None]
    w = torch.rand(1, 2, 14, 14, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    f = front[None].clone().requires_grad_(True)

    def loss(fr):
        return (R.render(torch.cat([back[None], fr], 1), faces, colors, 14)["image"] * w).sum()

    assert torch.autograd.gradcheck(loss, (f,), atol=1e-6)
    out = R.render(torch.cat([back[None], f], 1), faces, colors, 14)
    assert torch.allclose(out["mask"], torch.ones_like(out["mask"]))  # coverage is full everywhere
    grad = torch.autograd.grad(out["image"][0, 1].sum(), f)[0]
    assert grad[0, :, :2].abs().sum() > 0  # the front triangle's outline moves its colour coverage


def test_gradcheck_light_and_albedo_through_render_face():
    verts, faces, _ = _sphere(1, 6.0, 16, dtype=torch.float64)
    vp = G.make_viewpoint(1, 16, 6.0, dtype=torch.float64, rotation=torch.tensor([[0.1, 0.2, 0.0]]))
    g = torch.Generator().manual_seed(3)
    light = torch.randn(1, 3, 9, generator=g, dtype=torch.float64).requires_grad_(True)
    albedo = torch.rand(1, verts.shape[1], 3, generator=g, dtype=torch.float64).requires_grad_(True)
    f = lambda lt, al: R.render_face(verts, al, vp, lt, 16, faces=faces)["image"]  # noqa: E731
    assert torch.autograd.gradcheck(_probe(f), (light, albedo))
    vp2 = vp.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(_probe(lambda v: R.render_face(verts, albedo.detach(), v, light.detach(), 16,
                                                                   faces=faces)["image"]), (vp2,), atol=1e-5)


def _plane(n: int, size: int, depth: float = 0.0):
    """A flat grid mesh covering [margin, size - margin]^2 on screen, with uv = normalised screen position."""
    lin = torch.linspace(0, 1, n)
    u, v = torch.meshgrid(lin, lin, indexing="xy")
    uv = torch.stack([u.reshape(-1), v.reshape(-1)], -1)
    idx = torch.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].reshape(-1), idx[:-1, 1:].reshape(-1), idx[1:, :-1].reshape(-1), idx[1:, 1:].reshape(-1)
    faces = torch.cat([torch.stack([a, c, b], 1), torch.stack([b, c, d], 1)])
    scr = torch.cat([uv * (size - 8) + 4, torch.full((n * n, 1), depth)], 1)[None]
    return scr, faces, uv


def test_uv_unwrap_and_wrap_round_trip():
    size, s_uv = 64, 32
    scr, faces, uv = _plane(9, size)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    image = torch.stack([xx / size, yy / size, torch.ones_like(xx) * 0.5])[None]  # linear ramps
    tex, mask = R.uv_unwrap(image, scr, faces, uv, s_uv)
    assert mask.mean() > 0.9
    # texel (r, c) at uv ((c + .5) / S, (r + .5) / S) maps to screen x = u * (size - 8) + 4; the ramp is x / size
    rr, cc = torch.meshgrid(torch.arange(s_uv) + 0.5, torch.arange(s_uv) + 0.5, indexing="ij")
    expect_r = ((cc / s_uv) * (size - 8) + 4) / size
    m = mask[0, 0] > 0
    assert torch.allclose(tex[0, 0][m], expect_r[m], atol=1e-5)
    # Psi: the UV map sampled at the vertex uvs gives the image value at the projected vertices
    cols = R.uv_to_vertex(tex, uv)
    inner = (uv > 0.05).all(-1) & (uv < 0.95).all(-1)
    assert torch.allclose(cols[0, inner, 0], scr[0, inner, 0] / size, atol=1e-4)
    # differentiable w.r.t. the image and the vertex positions
    scr_s, faces_s, uv_s = _plane(3, 12)
    img = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    img.requires_grad_(True)
    pos = (scr_s.double() + 0.013).requires_grad_(True)
    uvr = R.uv_rasterize(uv_s, faces_s, 6)
    vis = torch.ones(1, faces_s.shape[0], dtype=torch.bool)
    unwrap = _probe(lambda i, p: R.uv_unwrap(i, p, faces_s, uv_s, uv_raster=uvr, visible=vis)[0])
    assert torch.autograd.gradcheck(unwrap, (img, pos), atol=1e-6)


def test_uv_unwrap_masks_occluded_triangles():
    size = 32
    back, faces, uv = _plane(5, size, depth=5.0)
    front = back.clone()
    front[..., 2] = 1.0
    front[..., 0] = front[..., 0] * 0.5  # covers the left half of the back plane
    verts = torch.cat([back, front], 1)
    all_faces = torch.cat([faces, faces + back.shape[1]])
    all_uv = torch.cat([uv * torch.tensor([0.5, 1.0]), uv * torch.tensor([0.5, 1.0]) + torch.tensor([0.5, 0.0])])
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    tex, mask = R.uv_unwrap(image, verts, all_faces, all_uv, 32, cull_backfaces=False)
    vis = R.visible_faces(R.rasterize_ids(verts, all_faces, size), all_faces.shape[0])[0]
    nf = faces.shape[0]
    assert vis[nf:].all()  # the front plane is fully visible
    assert not vis[:nf].all() and vis[:nf].any()  # the back plane is partly hidden
    assert mask[0, 0, :, 16:].mean() > 0.9  # front plane's chart (right half of the UV map)
    assert 0.2 < mask[0, 0, :, :16].mean() < 0.8  # back plane's chart: occluded triangles masked out
    assert (tex * (1 - mask)).abs().max() == 0
    _, mask_tri = R.uv_unwrap(image, verts, all_faces, all_uv, 32, cull_backfaces=False, visibility="triangle")
    assert mask_tri[0, 0, :, 16:].mean() > 0.9 and 0.2 < mask_tri[0, 0, :, :16].mean() < 0.8


def test_uv_to_vertex_bilinear_exact_on_linear_map():
    s = 16
    rr, cc = torch.meshgrid(torch.arange(s) + 0.5, torch.arange(s) + 0.5, indexing="ij")
    uv_map = torch.stack([cc / s, 1 - rr / s])[None]  # value = texel centre's (u, v); v points up
    uv = torch.rand(50, 2, generator=torch.Generator().manual_seed(0)) * (1 - 1 / s) + 0.5 / s
    assert torch.allclose(R.uv_to_vertex(uv_map, uv)[0], uv, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cpu_and_cuda_agree():
    verts, faces, q = _sphere(3, 20.0, 64)
    colors = torch.rand(1, verts.shape[1], 3, generator=torch.Generator().manual_seed(0))
    cpu = R.render(q, faces, colors, 64, backend="torch")
    gpu = R.render(q.cuda(), faces.cuda(), colors.cuda(), 64, backend="torch")
    assert (cpu["face_id"] == gpu["face_id"].cpu()).float().mean() > 0.999
    assert (cpu["image"] - gpu["image"].cpu()).abs().mean() < 1e-4
    assert torch.allclose(cpu["mask"].sum(), gpu["mask"].sum().cpu(), rtol=1e-3)


def test_bad_inputs_raise_clear_errors():
    verts = torch.zeros(1, 3, 3)
    with pytest.raises(ValueError):
        R.render(verts[0], TRI, torch.ones(1, 3, 3), 8)
    with pytest.raises(ValueError):
        R.render(verts, TRI, torch.ones(1, 4, 3), 8)
    with pytest.raises(ValueError):
        R.render(verts, TRI, torch.ones(1, 3, 3), 8, backend="opengl")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError):
            R.render(verts, TRI, torch.ones(1, 3, 3), 8, backend="nvdiffrast")
    with pytest.raises(ValueError):
        R.uv_unwrap(torch.zeros(1, 3, 8, 8), verts, TRI, torch.zeros(3, 2))


def test_render_background_and_channels():
    verts = torch.tensor([[[2.0, 2.0, 0], [14.0, 2.0, 0], [2.0, 14.0, 0]]])
    out = R.render(verts, TRI, torch.full((1, 3, 5), 0.25), 16, background=torch.arange(5.0))
    assert out["image"].shape == (1, 5, 16, 16)
    assert torch.allclose(out["image"][0, :, 15, 15], torch.arange(5.0))
    assert torch.allclose(out["image"][0, :, 4, 4], torch.full((5,), 0.25))


def test_non_finite_triangles_are_skipped():
    verts = torch.tensor([[[2.0, 2.0, 0], [14.0, 2.0, 0], [2.0, 14.0, 0],
                           [3.0, 3.0, float("nan")], [9.0, 3.0, -1.0], [3.0, 9.0, -1.0]]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    ids = R.rasterize_ids(verts, faces, 16)
    assert ids.max() == 0 and (ids == 0).sum() > 50
    out = R.render(verts, faces, torch.ones(1, 6, 3), 16)
    assert torch.isfinite(out["image"]).all() and torch.isfinite(out["mask"]).all()
