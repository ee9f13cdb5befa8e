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
