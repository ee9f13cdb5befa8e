"""CEST fixtures: a mini clip world (6 people x 1 clip x 4 frames, 64x64) rendered in about a second with the
simulated world's own clip renderer, in the world layout (manifest.csv + clips/<id>_0.npz)."""
from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def clip_world(tmp_path_factory):
    from voiceface.data.manifest import Item, write_manifest
    from voiceface.face3d import builtin_model
    from voiceface.sim import faces

    root = tmp_path_factory.mktemp("cest_world")
    (root / "clips").mkdir()
    model = builtin_model()
    kit = faces.RenderKit.build(model.mean, model.triangles, model.landmarks68.numpy())
    ke = model.num_expression
    exp_basis = (model.exp_basis * model.exp_std).T.reshape(ke, -1, 3)
    rng = np.random.default_rng(0)
    items = []
    for i in range(6):
        ident = f"p{i}"
        coeffs = rng.standard_normal(model.num_identity).astype(np.float32)
        acoef = rng.standard_normal(model.num_albedo).astype(np.float32)
        with torch.no_grad():
            neutral = model.shape(torch.from_numpy(coeffs)[None])[0]
            albedo = model.albedo(torch.from_numpy(acoef)[None])[0].clamp(0, 1)
        clip = faces.render_clip(kit, rng, neutral, exp_basis, 0.5 * rng.standard_normal(ke),
                                 0.5 * rng.standard_normal(ke), albedo, 4, 64)
        np.savez(root / "clips" / f"{ident}_0.npz", frames=clip["frames"], masks=clip["masks"],
                 landmarks=clip["landmarks"], coeffs=coeffs, expression=clip["expression"], pose=clip["pose"],
                 light=clip["light"], albedo=albedo.numpy())
        items.append(Item(path=str(root / "clips" / f"{ident}_0.npz"), modality="clip", identity=ident, gender="m",
                          split="train" if i < 4 else "test", width=64, height=64))
    write_manifest(items, root / "manifest.csv")
    return root
