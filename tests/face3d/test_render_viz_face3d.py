"""Figure helpers: renders, turntable GIF, error heat maps, AMs on the face, contact sheets (on small meshes)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from voiceface.face3d import viz


@pytest.fixture(scope="module")
def head():
    m = trimesh.creation.icosphere(subdivisions=3)
    verts = torch.tensor(m.vertices, dtype=torch.float32) * torch.tensor([60.0, 80.0, 50.0])
    verts[:, 2] += 40 * torch.exp(-(verts[:, 0] ** 2 + verts[:, 1] ** 2) / 200) * (verts[:, 2] > 0)  # a "nose"
    return verts, torch.tensor(m.faces)


def test_front_profile_and_views(head, tmp_path):
    verts, faces = head
    img = viz.front_profile(verts, faces, size=64, path=tmp_path / "fp.png")
    assert img.shape == (64, 128, 3) and img.dtype == np.uint8
    assert (tmp_path / "fp.png").exists()
    fg = img.min(-1) < 250
    assert 0.2 < fg[:, :64].mean() < 0.9 and 0.2 < fg[:, 64:].mean() < 0.9
    # the profile is narrower than the front (the head is 60 wide, 50 + nose deep) and different
    assert not np.array_equal(img[:, :64], img[:, 64:])
    views = viz.render_views(torch.stack([verts, verts * 0.5]), faces, size=32, yaws=(0.0, 0.5), same_scale=True)
    assert views.shape == (2, 2, 32, 32, 3)
    assert (views[0, 1].min(-1) < 0.98).sum() < (views[0, 0].min(-1) < 0.98).sum()  # half-size head is smaller


def test_turntable_gif(head, tmp_path):
    verts, faces = head
    path = viz.turntable_gif(verts, faces, tmp_path / "turn.gif", frames=6, size=32)
    gif = Image.open(path)
    assert gif.n_frames == 6 and gif.size == (32, 32)


def test_error_heatmap_colours_follow_errors(head, tmp_path):
    verts, faces = head
    err = verts[:, 1] - verts[:, 1].min()  # grows with height
    cols = viz.error_colors(err, cmap="viridis")
    lo, hi = int(err.argmin()), int(err.argmax())
    assert np.allclose(cols[lo], [0.267004, 0.004874, 0.329415], atol=1e-3)  # viridis(0)
    assert np.allclose(cols[hi], [0.993248, 0.906157, 0.143936], atol=1e-3)  # viridis(1)
    fig = viz.error_heatmap(verts, faces, err, tmp_path / "heat.png", yaws=(0.0,), size=64, vmax=float(err.max()))
    assert (tmp_path / "heat.png").exists() and len(fig.axes) == 2  # one view + colour bar


def test_draw_ams_and_contact_sheet(head, tmp_path):
    verts, faces = head
    pts = verts[:5]
    segs = viz.am_segments([(1, 2), (1, 2, 3, 4), (3, 4, 5)])
    assert segs == [(0, 1), (0, 1), (2, 3), (2, 3), (3, 4)]
    fig = viz.draw_ams(verts, faces, pts, segs, tmp_path / "ams.png", size=64, label_points=True, title="t")
    assert (tmp_path / "ams.png").exists() and len(fig.axes[0].lines) == len(segs) + 1
    with pytest.raises(ValueError):
        viz.am_segments([(1,)])
    ims = np.zeros((5, 8, 10, 3), np.float32)
    sheet = viz.contact_sheet(ims, ncols=3, pad=1, labels=list("abcde"), path=tmp_path / "s.png")
    assert sheet.shape == (2 * 9 + 1, 3 * 11 + 1, 3)
    assert sheet[1, 1].tolist() == [0, 0, 0] and sheet[0, 0].tolist() == [255, 255, 255]


def test_view_rotation_composes_yaw_then_pitch():
    from voiceface.face3d import geometry

    w = viz.view_rotation(0.3, math.pi / 2)
    r = geometry.rotation_matrix(w)
    rx = geometry.rotation_matrix(torch.tensor([0.3, 0, 0]))
    expect = rx @ geometry.rotation_matrix(torch.tensor([0, math.pi / 2, 0]))
    assert torch.allclose(r, expect, atol=1e-5)
