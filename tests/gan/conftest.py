"""GAN test fixtures: a small world (the simulated one when ``voiceface.sim.build_world`` exists, else a fake one)
and one tiny trained run shared by the tests of this folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # noqa: E402  (fakeworld helper beside the tests)
from fakeworld import build_fake_world  # noqa: E402

TINY = ["steps=6", "batch_size=8", "log_every=2", "checkpoint_every=3", "encoder.pretrain_steps=4",
        "encoder.pretrain_batch=8", "model.gen_channels=[32,16,16,8,8]", "model.face_channels=[8,8,16,16,16]",
        "data.min_frames=50", "data.max_frames=120", "data.test_frames=200", "eval_noise_trials=4",
        "eval_durations=[1,2]", "gender_steps=3", "eval_train_probes=8"]


@pytest.fixture(scope="session")
def gan_world(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return build_fake_world(tmp_path_factory.mktemp("gan_world"))


@pytest.fixture(scope="session")
def gan_run(gan_world, tmp_path_factory) -> Path:
    from voiceface.methods.gan.train import train

    out = tmp_path_factory.mktemp("gan_run") / "run"
    return train(gan_world, out, overrides=TINY, seed=0, progress=False)
