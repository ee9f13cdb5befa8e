"""GAN test fixtures: a small world (the simulated one when ``voiceface.sim.build_world`` exists, else a fake one)
and one tiny trained run shared by the tests of this folder."""
from __future__ import annotations

from pathlib import Path

import pytest
# pytest puts this folder (no __init__.py) on sys.path to import this conftest, so the helper beside it imports
from fakeworld import TINY, build_fake_world


@pytest.fixture(scope="session")
def gan_world(tmp_path_factory) -> Path:
    return build_fake_world(tmp_path_factory.mktemp("gan_world"))


@pytest.fixture(scope="session")
def gan_run(gan_world, tmp_path_factory) -> Path:
    from voiceface.methods.gan.train import train

    out = tmp_path_factory.mktemp("gan_run") / "run"
    return train(gan_world, out, overrides=TINY, seed=0, progress=False)
