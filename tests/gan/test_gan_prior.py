"""The face prior (stable.prior_steps): a face autoencoder whose decoder is F_g, and a ridge map from voice
embeddings to identity mean codes in front of it; a tiny run trains, loads and resumes exactly."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fakeworld import PRIOR, TINY
from voiceface.engine import Run, load_checkpoint
from voiceface.methods.gan.model import FaceAutoencoder, FaceEncoder, Generator
from voiceface.methods.gan.train import TrainBanks, fit_voice_map, load_run, train
from voiceface import config as cfglib
from voiceface.methods.gan.config import GANConfig


def test_generator_map_gives_unit_codes_to_the_decoder():
    torch.manual_seed(0)
    g = Generator(8, (16, 8, 8, 8, 8), pixel_norm=True, upsample=True, in_dim=5)
    e = torch.randn(3, 5)
    code = F.normalize(g.map(e), dim=1)
    torch.testing.assert_close(g(e), g.decode(code))
    torch.testing.assert_close(g.decode(code), g.net(code[:, :, None, None]))
    assert "map.weight" in g.state_dict() and "net.0.weight" in g.state_dict()      # authors' indices unchanged
    assert Generator(8, (16, 8, 8, 8, 8)).map is None


def test_face_autoencoder_shapes_and_unit_codes():
    torch.manual_seed(0)
    enc = FaceEncoder((8, 8, 8, 16, 16), code_dim=6)
    f = torch.rand(4, 3, 64, 64) * 2 - 1
    z = enc(f)
    assert z.shape == (4, 6)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
    ae = FaceAutoencoder(enc, Generator(6, (16, 8, 8, 8, 8), upsample=True).net)
    assert ae(f).shape == (4, 3, 64, 64) and ae(f, 0.05 * torch.randn(4, 6)).shape == (4, 3, 64, 64)


class _Faces:
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def batch(self, idx):
        return self.x[torch.as_tensor(idx)]


class _Voices:
    def __init__(self, feats):
        self.feats = feats

    def features(self, j):
        return self.feats[j]


class _MeanEncoder:
    def embed(self, x):                                  # (B, F, T) -> (B, F)
        return x.mean(2)


def test_voice_map_is_the_ridge_solution():
    """``fit_voice_map`` (normal equations) against a naive ridge: lstsq on [A; sqrt(ridge) I] with the targets
    c_y = normalise(mean of identity y's codes), on recordings whose identity has faces; an identity without faces is
    left out."""
    rng = np.random.default_rng(0)
    n_ids, code_dim, q = 4, 3, 5
    faces = torch.from_numpy(rng.standard_normal((12, 3, 64, 64)).astype(np.float32))
    face_labels = np.repeat(np.arange(3), 4)                                # identity 3 has no face
    feats = [rng.standard_normal((int(rng.integers(20, 60)), q)).astype(np.float32) for _ in range(10)]
    voice_labels = rng.integers(0, n_ids, 10)
    banks = TrainBanks(_Voices(feats), _Faces(faces), voice_labels, face_labels)
    face_enc = lambda f: F.normalize(f.flatten(1)[:, :code_dim], dim=1)     # noqa: E731
    cfg = cfglib.replace(GANConfig(), {"data": {"test_frames": 40}, "stable": {"prior_ridge": 0.5}})
    g = Generator(code_dim, (8, 8, 8, 8, 8), in_dim=q)
    r2 = fit_voice_map(g, face_enc, banks, _MeanEncoder(), n_ids, cfg, torch.device("cpu"), chunk=3)

    codes = face_enc(faces).numpy()
    means = np.stack([codes[face_labels == k].mean(0) for k in range(3)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    keep = np.flatnonzero(voice_labels < 3)
    emb = np.stack([np.resize(feats[j], (40, q)).mean(0) for j in keep])
    a = np.concatenate([emb, np.ones((len(keep), 1))], 1)
    t = means[voice_labels[keep]]
    big_a = np.concatenate([a, np.sqrt(0.5) * np.eye(q + 1)])
    big_t = np.concatenate([t, np.zeros((q + 1, code_dim))])
    w = np.linalg.lstsq(big_a, big_t, rcond=None)[0]
    np.testing.assert_allclose(g.map.weight.detach().numpy(), w[:-1].T, atol=1e-4)
    np.testing.assert_allclose(g.map.bias.detach().numpy(), w[-1], atol=1e-4)
    expect_r2 = 1 - ((a @ w - t) ** 2).sum() / ((t - t.mean(0)) ** 2).sum()
    assert abs(r2 - expect_r2) < 1e-4


def test_prior_run_trains_loads_and_resumes(gan_world, tmp_path):
    full = train(gan_world, tmp_path / "full", overrides=TINY + PRIOR, seed=0, progress=False)
    prior_log = Run.open(full / "prior").read_log()
    assert prior_log[-1]["step"] == 5 and "loss/prior_l1" in prior_log[-1]
    ckpt = load_checkpoint(full / "checkpoint.pt")
    assert "map.weight" in ckpt["models"]["generator"]
    maps = [r for r in Run.open(full).read_log() if r.get("event") == "face_prior_map"]
    assert len(maps) == 1 and maps[0]["r2"] <= 1
    model = load_run(full)
    faces = model.faces(torch.randn(2, 64, 150))
    assert faces.shape == (2, 3, 64, 64) and faces.abs().max() <= 1
    killed = tmp_path / "killed"                          # a resume restores the GAN without redoing the prior
    train(gan_world, killed, overrides=TINY + PRIOR, seed=0, progress=False, stop_after=4)
    assert load_checkpoint(killed / "checkpoint.pt")["step"] == 3
    train(gan_world, killed, overrides=TINY + PRIOR, seed=0, progress=False)
    assert [r["event"] for r in Run.open(killed).read_log() if r.get("event") == "face_prior_map"] == ["face_prior_map"]
    b = load_checkpoint(killed / "checkpoint.pt")
    for name in ("generator", "critics"):
        for k, v in ckpt["models"][name].items():
            torch.testing.assert_close(b["models"][name][k], v, rtol=0, atol=0, msg=f"{name}.{k}")
