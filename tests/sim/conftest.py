"""Fixtures for the simulated-world tests: one tiny world per test session."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A tiny world (24 people) built once per test session, in this process."""
    from voiceface.sim import build_world

    root = tmp_path_factory.mktemp("sim") / "tiny"
    build_world(root, "tiny", seed=0, coupling=1.0, workers=1, progress=False)
    return root
