"""3D shape yardstick shared by CEST and SfV (face regions, per-region errors) and CEST's loss options."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from voiceface import config as cfglib
from voiceface.errors import ConfigError
from voiceface.face3d import builtin_model
from voiceface.methods.cest.config import PRESETS, LossConfig
from voiceface.methods.cest.loss import CESTLoss, coefficient_energy
from voiceface.metrics.shape import REGIONS, face_regions, region_errors, similarity_vertex_errors


@pytest.fixture(scope="module")
def face():
    return builtin_model()


def test_regions_partition_the_face_and_sit_where_named(face):
    mean, lm = face.mean.numpy(), face.landmarks68.numpy()
    r = face_regions(mean, lm, radius=95.0)
    stack = np.stack([r[k] for k in REGIONS])
    assert (stack.sum(0) == r["face"]).all()                      # disjoint, covering the face crop
    assert all(r[k].sum() > 50 for k in REGIONS)
    assert r["nose"][lm[30]] and r["mouth"][lm[62]] and r["chin"][lm[8]] and r["eyes"][lm[37]]
    y = mean[:, 1]
    assert y[r["forehead"]].mean() > y[r["eyes"]].mean() > y[r["mouth"]].mean() > y[r["chin"]].mean()


def test_region_errors_localise_a_nose_change(face):
    mean, lm = face.mean.numpy(), face.landmarks68.numpy()
    r = face_regions(mean, lm)
    bent = mean.copy()
    bent[r["nose"], 2] += 3.0                                    # a longer nose only
    e = np.linalg.norm(bent - mean, axis=1)[None]                # (1, V) errors without alignment
    t = region_errors(e, r)
    assert t["nose"] == pytest.approx(3.0) and t["mouth"] == 0.0 and t["forehead"] == 0.0
    assert 0 < t["face"] < t["nose"]
    aligned = region_errors(similarity_vertex_errors(bent[None], mean[None]), r)
    assert aligned["nose"] > 2.0 > aligned["cheeks"]             # alignment spreads little of it elsewhere


def test_coefficient_energy_forms():
    c = torch.randn(5, 52)
    assert float(coefficient_energy(c, "sum")) == pytest.approx(52 * float(coefficient_energy(c)), rel=1e-5)
    with pytest.raises(ConfigError):
        LossConfig(rg_form="max")
    with pytest.raises(ConfigError):
        LossConfig(kp_units="mm")


def test_term_gradients_norms_and_direction(clip_world):
    from voiceface.methods.cest.data import load_sim_clips, sample_batch
    from voiceface.methods.cest.train import build_parts

    cfg = cfglib.replace(PRESETS["cpu"], {"loss": {"kp_units": "pixels", "rg_form": "sum"}})
    model = build_parts(cfg, "cpu").models["cest"]
    bank = load_sim_clips(clip_world, ("train",))
    idx, partners = sample_batch(bank, np.random.default_rng(0), 2, 2, "clip", "stochastic")
    batch = bank.tensors(idx)
    batch["partners"] = torch.from_numpy(partners)
    g = CESTLoss(cfg.loss).term_gradients(model, batch, torch.as_tensor(bank.truth["coeffs"][idx]))
    assert set(g) == {"photometric", "landmark", "regulariser"}
    assert g["regulariser"]["norm"] == 0.0                        # the untrained head outputs alpha = 0
    assert g["landmark"]["norm"] > 0 and np.isfinite(g["photometric"]["norm"])
    assert -1.0 <= g["landmark"]["cos_to_truth"] <= 1.0
