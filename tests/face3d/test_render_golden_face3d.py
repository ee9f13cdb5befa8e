"""Golden-image test: the built-in model's mean face rendered at 64x64 must match the stored PNG.

Regenerate (after an intended change to the renderer or the built-in model) with:
    .venv/bin/python tests/face3d/test_render_golden_face3d.py --regenerate
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

GOLDEN = Path(__file__).resolve().parent / "golden" / "builtin_mean_front_64.png"


def golden_render() -> np.ndarray:
    """uint8 (64, 64, 3): mean shape, mean albedo, default key light, frontal, white background."""
    from voiceface.face3d import builtin_model, viz

    model = builtin_model()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        img = viz.render_views(model.mean, model.triangles, model.albedo_mean, size=64)[0, 0]
    finally:
        torch.set_num_threads(n)
    return viz.to_uint8(img)


def test_builtin_mean_face_matches_golden():
    if not GOLDEN.exists():
        pytest.fail("golden image missing: run "
                    "`.venv/bin/python tests/face3d/test_render_golden_face3d.py --regenerate`")
    ref = np.asarray(Image.open(GOLDEN).convert("RGB")).astype(np.int16)
    img = golden_render().astype(np.int16)
    diff = np.abs(img - ref)
    # allow float noise across platforms; a changed render (shape, light, framing, AA) moves many pixels a lot
    assert diff.mean() < 1.0, f"mean abs difference {diff.mean():.2f} / 255"
    assert (diff.max(-1) > 24).mean() < 0.005, f"{(diff.max(-1) > 24).mean():.4f} of pixels differ by > 24 / 255"
    # sanity on the content: a face (skin-coloured, not background) fills the centre
    assert (img[24:40, 24:40].min(-1) < 250).mean() > 0.9


def test_builtin_unwrap_then_wrap_recovers_visible_albedo():
    """Eq. 4.8 then Psi on the built-in model: render its albedo unlit, unwrap, wrap back to the vertices."""
    from voiceface.face3d import builtin_model, geometry, render, viz

    model = builtin_model()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        view = viz.fit_viewpoint(model.mean[None], 128)
        out = render.render_face(model.mean[None], model.albedo_mean[None], view, None, 128, faces=model.triangles)
        uvr = render.uv_rasterize(model.uv, model.triangles, 128)
        tex, mask = render.uv_unwrap(out["image"], out["verts_screen"], model.triangles, model.uv, uv_raster=uvr)
        _, mask_tri = render.uv_unwrap(out["image"], out["verts_screen"], model.triangles, model.uv, uv_raster=uvr,
                                       visibility="triangle")
    finally:
        torch.set_num_threads(n)
    back = render.uv_to_vertex(tex, model.uv)[0]
    seen = render.uv_to_vertex(mask, model.uv)[0, :, 0] > 0.999
    facing = geometry.rotate(geometry.vertex_normals(model.mean[None], model.triangles), view)[0, :, 2] > 0.5
    err = (back - model.albedo_mean).abs().amax(-1)
    assert seen.sum() > 0.3 * model.num_vertices * 0.5  # a good part of the front half of the head
    assert seen[facing].float().mean() > 0.9
    # exact up to interpolation where the surface faces the camera (sharp albedo edges such as eyes and lips blur at
    # 128 px; at grazing angles a pixel mixes much surface)
    assert err[seen].median() < 0.01 and (err[seen & facing] > 0.1).float().mean() < 0.08
    # frontal view: the face (nose tip) is seen, the back of the head is not
    z = model.mean[:, 2]
    assert seen[z > z.quantile(0.9)].float().mean() > 0.8 and seen[z < z.quantile(0.2)].float().mean() < 0.01
    # the depth rule keeps more of the visible surface than the triangle-id rule
    assert mask.sum() > mask_tri.sum()


if __name__ == "__main__":
    if "--regenerate" in sys.argv:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(golden_render()).save(GOLDEN)
        print(f"wrote {GOLDEN}")
