"""Similarity-aligned per-vertex errors (metrics.shape.similarity_vertex_errors)."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from voiceface.metrics.shape import similarity_vertex_errors


def test_similarity_transform_is_removed_and_noise_is_not():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(4, 50, 3))
    rot = Rotation.random(4, random_state=1).as_matrix()                           # (4, 3, 3)
    moved = 2.5 * np.einsum("nij,nvj->nvi", rot, true) + rng.normal(size=(4, 1, 3))
    err = similarity_vertex_errors(moved, true)
    assert err.shape == (4, 50) and err.max() < 1e-9
    noisy = true + 0.1 * rng.normal(size=true.shape)
    e = similarity_vertex_errors(noisy, true).mean()
    assert 0.05 < e <= np.linalg.norm(noisy - true, axis=-1).mean()                # alignment can only reduce it
    mirrored = true * np.array([-1.0, 1.0, 1.0])                                    # no reflections allowed
    assert similarity_vertex_errors(mirrored, true).mean() > 0.1
