"""Shared fixtures: paths to the real samples in ../shared/data (tests skip with a reason when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VOICEFACE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Every test runs on one torch thread: two xdist workers share two cores, and the small tensors of the tests
    run fastest single-threaded. The previous setting is restored at the end of the session."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _shared(sub: str) -> Path:
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(f"real sample data not found at {p} (set VOICEFACE_SHARED_DATA or place ../shared/data)")
    return p


@pytest.fixture(scope="session")
def voxceleb1_samples() -> Path:
    return _shared("voxceleb1_samples")


@pytest.fixture(scope="session")
def librispeech() -> Path:
    return _shared("librispeech_test_other")


@pytest.fixture(scope="session")
def orl_faces() -> Path:
    return _shared("orl_faces")


@pytest.fixture(scope="session")
def eval_lists() -> Path:
    return _shared("voxceleb1_eval_lists")


LEARN_SEEDS = [int(s) for s in os.environ.get("VOICEFACE_LEARN_SEEDS", "0").split(",") if s.strip()]
"""Seeds of the "does it learn" tests: 0 by default; ``VOICEFACE_LEARN_SEEDS=0,1,2,3 ./run test -k learns -rP``
reruns each over several seeds and prints its measured metric and control (how their margins were chosen)."""


@pytest.fixture(params=LEARN_SEEDS, ids=lambda s: f"seed{s}")
def learn_seed(request) -> int:
    """The seed of one run of a learning test and of its control (``LEARN_SEEDS``)."""
    return request.param


@pytest.fixture(scope="session")
def learn_world(tmp_path_factory) -> Path:
    """A small simulated world for the "does it learn" tests (``tests/*/test_*_learns.py``), built once per test
    process (~15 s): 64 people split 40 / 12 / 12, three utterances and two photos each, no clips. The tiny preset's
    4 + 4 unseen identities are too few to tell a learned gender link from chance; 24 unseen identities are enough."""
    from voiceface.sim import build_world
    from voiceface.sim.presets import Preset

    preset = Preset("learn", identities=64, split=(40, 12, 12), utterances=3, sessions=1, duration_s=(2.0, 2.5),
                    snr_db=(25.0, 40.0), rt60_s=(0.0, 0.2), images=2, render_size=112, clips=0, clip_frames=(4, 4),
                    clip_size=64)
    root = tmp_path_factory.mktemp("learn_world")
    build_world(root, preset, seed=0, coupling=1.0, workers=1, progress=False)
    return root
