"""SfV fixtures: a generated triplet set with a known voice-AM link (fast), and the tiny simulated world when the
simulation package can build one."""
from __future__ import annotations

import pytest

TINY = ["train.steps=16", "train.batch_size=8", "train.select_every=8", "train.checkpoint_every=8",
        "train.log_every=8", "select.repeats=2", "model.channels=[8,12,16,16]", "fit.steps=30",
        "fit.components=8", "data.crop_min_s=1.0", "data.crop_max_s=1.5", "data.segment_s=1.5"]
SYNTH = "synthetic:n_people=50,rec_s=2.0,recs=1"


@pytest.fixture(scope="session")
def tiny_overrides():
    return list(TINY)


@pytest.fixture(scope="session")
def synth_source():
    return SYNTH


