"""CEST fixtures: mini clip worlds rendered with the simulated world's own clip renderer, in the world layout
(manifest.csv + clips/<id>_<k>.npz, each clip holding its frames' ground truth): ``clip_world`` (6 people x 1 clip
x 4 frames, 64x64, about a second) and ``learn_clip_world`` (24 people x 2 clips x 4 frames, 16 train / 8 test
people, a few seconds) for the "does it learn" test."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


def make_clip_world(root: Path, people: int, train_people: int, clips: int, seed: int = 0) -> Path:
    """Render ``people`` random faces of the built-in model (identity, albedo, per-clip expressions, poses and
    lights from ``seed``), ``clips`` clips of 4 64x64 frames each; the first ``train_people`` are split ``train``,
    the rest ``test``. Returns ``root``."""
    from voiceface.data.manifest import Item, write_manifest
    from voiceface.face3d import builtin_model
    from voiceface.sim import faces

    (root / "clips").mkdir()
    model = builtin_model()
    kit = faces.RenderKit.build(model.mean, model.triangles, model.landmarks68.numpy())
    ke = model.num_expression
    exp_basis = (model.exp_basis * model.exp_std).T.reshape(ke, -1, 3)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(people):
        ident = f"p{i}"
        coeffs = rng.standard_normal(model.num_identity).astype(np.float32)
        acoef = rng.standard_normal(model.num_albedo).astype(np.float32)
        with torch.no_grad():
            neutral = model.shape(torch.from_numpy(coeffs)[None])[0]
            albedo = model.albedo(torch.from_numpy(acoef)[None])[0].clamp(0, 1)
        for k in range(clips):
            clip = faces.render_clip(kit, rng, neutral, exp_basis, 0.5 * rng.standard_normal(ke),
                                     0.5 * rng.standard_normal(ke), albedo, 4, 64)
            path = root / "clips" / f"{ident}_{k}.npz"
            np.savez(path, frames=clip["frames"], masks=clip["masks"], landmarks=clip["landmarks"], coeffs=coeffs,
                     expression=clip["expression"], pose=clip["pose"], light=clip["light"], albedo=albedo.numpy())
            items.append(Item(path=str(path), modality="clip", identity=ident, gender="m",
                              split="train" if i < train_people else "test", width=64, height=64))
    write_manifest(items, root / "manifest.csv")
    return root


@pytest.fixture(scope="session")
def clip_world(tmp_path_factory):
    return make_clip_world(tmp_path_factory.mktemp("cest_world"), people=6, train_people=4, clips=1)


@pytest.fixture(scope="session")
def learn_clip_world(tmp_path_factory):
    return make_clip_world(tmp_path_factory.mktemp("cest_learn_world"), people=24, train_people=16, clips=2)
