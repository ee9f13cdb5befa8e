"""CEST / IEST networks, the objectives of Eq. 4.9-4.12 and their relation (Eq. 4.10 vs 4.11)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from voiceface import config as cfglib
from voiceface.methods.cest.config import CESTConfig, PRESETS, NetConfig, LossConfig
from voiceface.methods.cest.data import load_sim_clips, sample_batch
from voiceface.methods.cest.loss import CESTLoss, photometric, reflectance_sets
from voiceface.methods.cest.model import CEST, UNet, Encoder, build_model


@pytest.fixture(scope="module")
def face():
    from voiceface.face3d import builtin_model
    return builtin_model()


@pytest.mark.parametrize("conditional", [True, False])
def test_model_shapes(face, conditional):
    torch.manual_seed(0)
    cfg = NetConfig(image_size=32, width_mult=0.125, conditional=conditional, per_channel_light=not conditional)
    m = CEST(face, cfg)
    out = m(torch.rand(2, 3, 32, 32))
    v = face.num_vertices
    assert out["viewpoint"].shape == (2, 7)
    assert out["coeffs"].shape == (2, face.num_identity + face.num_expression)
    assert out["shape"].shape == (2, v, 3) and out["reflectance"].shape == (2, v, 3)
    assert out["texture"].shape == (2, 3, 32, 32) and out["uv_reflectance"].shape == (2, 3, 32, 32)
    assert out["light"].shape == ((2, 9) if conditional else (2, 3, 9))
    assert 0 <= float(out["reflectance"].min().detach()) and float(out["reflectance"].max().detach()) <= 1
    # zero-initialised heads: the prior viewpoint, the mean shape and a white ambient light
    assert torch.allclose(out["viewpoint"], m.v0.expand(2, -1))
    assert torch.allclose(out["coeffs"], torch.zeros_like(out["coeffs"]))
    # Eq. 4.8 unwrap: front-facing unoccluded triangles, including those smaller than a pixel (no speckle in T)
    from voiceface.face3d import render
    vis = m.visible_triangles(out["verts_screen"], out["face_id"])
    wins = render.visible_faces(out["face_id"], face.triangles.shape[0])
    assert vis.float().mean() > 0.4 and vis.float().mean() > 2 * wins.float().mean()
    assert out["texture_mask"].mean() > 0.4
    # the mirror map is an involution on a symmetric model
    assert (m.mirror[m.mirror] == torch.arange(v)).float().mean() > 0.95
    sh = m.shading(out["shape"], out["viewpoint"], out["light"])
    r = m.render(out["verts_screen"], sh, out["reflectance"][:, None].expand(-1, 3, -1, -1))
    assert r["image"].shape == (2, 3, 3, 32, 32)


def test_table_architectures():
    """Table 4.1 / 4.2 at 256x256: output shapes and the U-Net's additive (not concatenated) skips."""
    enc = Encoder(3, 7, (32, 32, 64, 64, 128, 128), 256)
    assert enc(torch.rand(1, 3, 256, 256)).shape == (1, 7)
    convs = [m for m in enc.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs if c.stride == (2, 2)] == [32, 32, 64, 64, 128, 128]
    unet = UNet(3, 3, (64, 64, 128, 128, 256, 256), 256)
    assert unet(torch.rand(1, 3, 256, 256)).shape == (1, 3, 256, 256)
    first_up = unet.up[0][0][0]
    assert first_up.in_channels == 256 and first_up.out_channels == 256     # 4x4x256 -> 8x8x256, additive skip


def _hand_E(I, M, Ihat):
    return float((np.abs(I - Ihat) * M).sum() / (3 * M.sum()))


def test_full_objective_n2_matches_hand_computation(face, clip_world):
    """Eq. 4.10 on one clip of n = 2 frames: the 8 reconstruction terms, each rendered separately by hand."""
    torch.manual_seed(0)
    model = build_model(cfglib.replace(PRESETS["cpu"].net, {"image_size": 64}), face).eval()
    with torch.no_grad():                                  # give the reflectance some structure
        for p in model.f_r.parameters():
            p.add_(0.05 * torch.randn_like(p))
    bank = load_sim_clips(clip_world, ("train",))
    idx, partners = sample_batch(bank, np.random.default_rng(0), 1, 2, objective="full")
    batch = bank.tensors(idx)
    batch["partners"] = torch.from_numpy(partners)
    loss = CESTLoss(LossConfig(objective="full"))
    with torch.no_grad():
        got = float(loss(model, batch)["photometric"])
        o = model(batch["images"])
        sh = model.shading(o["shape"], o["viewpoint"], o["light"])
        R = o["reflectance"]
        total = 0.0
        for i in range(2):
            for rj in (R[0], R[1], model.flip(R[0]), model.flip(R[1])):
                img = model.render(o["verts_screen"][i:i + 1], sh[i:i + 1], rj[None, None])["image"][0, 0]
                total += _hand_E(batch["images"][i].numpy(), batch["masks"][i].numpy(), img.numpy())
    assert got == pytest.approx(total / 2, rel=1e-4)      # 2 n^2 = 8 terms, times Eq. 4.11's 1/N (N = 2)


def test_stochastic_objective_agrees_in_expectation(face, clip_world):
    """Eq. 4.11 averaged over its random partner choice equals the matching terms of the full table (Eq. 4.10):
    mean over j != i of E(I_i, R_j), plus E(I_i, R_i^x)."""
    torch.manual_seed(1)
    model = build_model(cfglib.replace(PRESETS["cpu"].net, {"image_size": 64}), face).eval()
    bank = load_sim_clips(clip_world, ("train",))
    n = 3
    idx, full_p = sample_batch(bank, np.random.default_rng(3), 1, n, objective="full")
    batch = bank.tensors(idx)
    cfg = LossConfig(objective="full")
    with torch.no_grad():
        o = model(batch["images"])
        sh = model.shading(o["shape"], o["viewpoint"], o["light"])
        sets, labels = reflectance_sets(model, o["reflectance"], torch.from_numpy(full_p), cfg)
        table = photometric(batch["images"], model.render(o["verts_screen"], sh, sets)["image"], batch["masks"])
        table = table.numpy()                              # (n, 2n): other j = 0..n-1, then flipped j = 0..n-1
        expected = np.mean([np.mean([table[i, j] for j in range(n) if j != i]) + table[i, n + i] for i in range(n)])
        loss = CESTLoss(LossConfig(objective="stochastic"))
        draws = []
        for s in range(12):
            _, p = sample_batch(bank, np.random.default_rng(100 + s), 1, n)
            # same frames, new partners: positions are within the batch
            draws.append(float(loss(model, {**batch, "partners": torch.from_numpy(p)})["photometric"]))
        # enumerate the partner distribution exactly (uniform over the n - 1 others) through the table
    assert np.mean(draws) == pytest.approx(expected, rel=0.05)
    assert set(labels) == {"other", "other_flip"}


def test_degenerate_configs_terms(face):
    m = CEST(face, NetConfig(image_size=32, width_mult=0.125))
    refl = torch.rand(4, face.num_vertices, 3)
    partners = torch.tensor([[1], [0], [3], [2]])
    for cfg, k in ((LossConfig(), 2), (LossConfig(symmetry=False), 1), (LossConfig(consistency=False), 1),
                   (LossConfig(consistency=False, symmetry=False), 1), (LossConfig(self_term=True), 3)):
        sets, labels = reflectance_sets(m, refl, partners, cfg)
        assert sets.shape[1] == k == len(labels)
    sets, labels = reflectance_sets(m, refl, partners, LossConfig(consistency=False, symmetry=False))
    assert labels == ["own"] and torch.equal(sets[:, 0], refl)


def test_light_and_albedo_metrics():
    from voiceface.face3d import geometry
    from voiceface.methods.cest.evaluate import albedo_errors, light_error, sh_energy

    iso = geometry.sh_light(2, 1.0)
    lit = geometry.sh_light(2, 0.5, (0.5, 0.3, 1.0), 0.8)
    assert np.allclose(sh_energy(iso), 0) and (sh_energy(lit) > 0.05).all()
    assert np.allclose(light_error(lit, 3.0 * lit), 0, atol=1e-6)           # gain-free
    assert (light_error(iso, lit) > 0.05).all()
    per_colour = lit[:, None].expand(-1, 3, -1).reshape(2, 27)
    assert np.allclose(light_error(lit, per_colour), 0, atol=1e-6)         # grey vs (3, 9) layouts agree
    a = np.random.default_rng(0).uniform(0.2, 0.8, (2, 50, 3))
    mask = np.ones((2, 50), bool)
    aligned, raw = albedo_errors(0.5 * a, a, mask)
    assert np.allclose(aligned, 0, atol=1e-9) and (raw > 10).all()
