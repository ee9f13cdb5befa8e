"""Tiny GAN training: runs end to end, logs Algorithm 1's phases, and a killed + resumed run equals a straight one."""
from __future__ import annotations

import torch

from fakeworld import TINY
from voiceface.engine import Run, load_checkpoint
from voiceface.methods.gan.train import load_run, split_data, train
from voiceface.data.manifest import read_manifest
from voiceface.methods.gan.config import GANConfig


def test_split_holds_out_sessions_of_training_identities(gan_world):
    gd = split_data(read_manifest(gan_world / "manifest.csv"), GANConfig())
    assert len(gd.identities) == 6
    held_sessions = {(it.identity, it.session) for it in gd.heldout_voice}
    train_sessions = {(it.identity, it.session) for it in gd.train_voice}
    assert held_sessions and not (held_sessions & train_sessions)
    assert {it.identity for it in gd.heldout_voice} == set(gd.identities)
    assert not ({it.identity for it in gd.test_voice} & set(gd.identities))


def test_tiny_run_logs_and_loads(gan_run):
    rows = Run.open(gan_run).read_log()
    assert rows[-1]["step"] == 6
    assert {"loss/d_real", "loss/d_fake", "loss/c_real", "loss/g_d", "loss/g_c"} <= set(rows[-1])
    model = load_run(gan_run)
    faces = model.faces(torch.randn(2, 64, 150))
    assert faces.shape == (2, 3, 64, 64) and faces.abs().max() <= 1


def test_resume_equals_uninterrupted(gan_world, gan_run, tmp_path):
    killed = tmp_path / "killed"
    train(gan_world, killed, overrides=TINY, seed=0, progress=False, stop_after=4)   # checkpoint at 3, dies at 4
    assert load_checkpoint(killed / "checkpoint.pt")["step"] == 3
    train(gan_world, killed, overrides=TINY, seed=0, progress=False)
    a, b = load_checkpoint(gan_run / "checkpoint.pt"), load_checkpoint(killed / "checkpoint.pt")
    assert a["step"] == b["step"] == 6
    for name in ("generator", "critics", "voice"):
        for k, v in a["models"][name].items():
            torch.testing.assert_close(b["models"][name][k], v, rtol=0, atol=0, msg=f"{name}.{k}")


def test_loaded_run_keeps_its_config(gan_run):
    from fakeworld import TINY as tiny
    from voiceface import config as cfglib

    model = load_run(gan_run)
    assert model.config == cfglib.load_config(GANConfig, None, tiny)
    assert model.data.endswith("manifest.csv") and model.seed == 0
